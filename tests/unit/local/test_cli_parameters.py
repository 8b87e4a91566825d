"""`firebreak run --parameter-overrides` and samconfig.toml's overrides, as contracts/CLI.md and sam deploy say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.cli import main, stack_parameters
from tests.support import ROOT, TEMPLATE

BRUTE_FORCE = str(ROOT / "events/eventbridge/guardduty_ssh_brute_force.json")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory of its own (its samconfig.toml), whose template.yaml is the repository's."""
    (tmp_path / "template.yaml").symlink_to(TEMPLATE)
    return tmp_path


def samconfig(project: Path, overrides: str) -> None:
    (project / "samconfig.toml").write_text(
        f'version = 0.1\n[default.deploy.parameters]\nparameter_overrides = "{overrides}"\n'
    )


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main(["run", "--json", *args])
    return status, json.loads(capsys.readouterr().out)


def test_overrides_set_the_stack_for_this_run_with_event_files_after_them(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the stack's default mode is enforce
    # WHEN the brute force runs with ResponseMode=dry-run, the event file named after the overrides
    status, document = run_json(
        capsys,
        "--template",
        str(TEMPLATE),
        "--parameter-overrides",
        "ResponseMode=dry-run SeverityThreshold=8",
        BRUTE_FORCE,
    )

    # THEN the block is planned and nothing changed
    (result,) = document["results"]
    assert (status, result["event_file"], result["mode"], result["status"]) == (0, BRUTE_FORCE, "dry-run", "DRY_RUN")
    assert document["world"]["blocked_ips"] == []


def test_samconfig_default_environment_overrides_apply(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a samconfig.toml whose default environment makes block-ip a dry run
    samconfig(project, "BlockIpMode=dry-run")

    # WHEN the brute force runs with no override on the command line
    status, document = run_json(capsys, "--template", str(project / "template.yaml"), BRUTE_FORCE)

    # THEN samconfig's choice held
    (result,) = document["results"]
    assert (status, result["mode"], result["status"]) == (0, "dry-run", "DRY_RUN")


def test_mode_combines_with_overrides_and_a_playbook_mode_named_there_wins(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN --mode approval, which would make every playbook wait for a person
    # WHEN block-ip's own mode is set to enforce on the same command line
    status, document = run_json(
        capsys,
        BRUTE_FORCE,
        "--template",
        str(TEMPLATE),
        "--mode",
        "approval",
        "--parameter-overrides",
        "BlockIpMode=enforce",
    )

    # THEN block-ip acted at once
    (result,) = document["results"]
    assert (status, result["mode"], result["status"]) == (0, "enforce", "CONTAINED")
    assert document["world"]["blocked_ips"] == ["45.155.205.233/32"]


def test_layers_are_samconfig_then_mode_then_the_command_line(project: Path) -> None:
    # GIVEN samconfig sets the stack's mode, a playbook's mode and a threshold
    samconfig(project, "ResponseMode=enforce ContainInstanceMode=approval SeverityThreshold=5")

    # WHEN a run adds --mode dry-run and overrides the threshold and block-ip's mode
    overrides = stack_parameters(project / "template.yaml", "dry-run", ["SeverityThreshold=9", "BlockIpMode=enforce"])

    # THEN --mode replaces samconfig's modes, the command line wins over both, and each value's source is known
    assert overrides.values == {
        "ResponseMode": "dry-run",
        "ContainInstanceMode": "inherit",
        "RevokeCredentialsMode": "inherit",
        "ProtectBucketMode": "inherit",
        "ContainFunctionMode": "inherit",
        "ContainDatabaseMode": "inherit",
        "ContainTaskMode": "inherit",
        "BlockIpMode": "enforce",
        "SeverityThreshold": "9",
    }
    assert overrides.source(["ResponseMode"]) == "--mode"
    assert overrides.source(["SeverityThreshold"]) == "--parameter-overrides"


@pytest.mark.parametrize(
    ("args", "configured", "expected"),
    [
        (["--parameter-overrides", "Bogus=1"], None, "--parameter-overrides: Parameters: [Bogus] do not exist"),
        (["--parameter-overrides", "ResponseMode=yolo"], None, "Parameters.ResponseMode: 'yolo' is not one of"),
        (["--parameter-overrides", "NaclRuleRange=71"], None, "Parameters.NaclRuleRange: '71' does not match"),
        (["--parameter-overrides", "SeverityThreshold=11"], None, "SeverityThreshold: 11 is greater than MaxValue 10"),
        (["--parameter-overrides", "MaxAddressesPerIncident=many"], None, "'many' is not a number"),
        (
            ["--parameter-overrides", "SeverityThreshold="],
            None,
            "--parameter-overrides: SeverityThreshold= is not a valid",
        ),
        (["--mode", "dry-run", "--parameter-overrides", "ResponseMode=enforce"], None, "--mode dry-run contradicts"),
        ([], "LogRetentionDays=31", "samconfig.toml [default]: Parameters.LogRetentionDays: '31' is not one of"),
        ([], "Nope=1", "samconfig.toml [default]: Parameters: [Nope] do not exist"),
    ],
)
def test_a_refused_override_is_exit_2_with_one_line_and_nothing_run(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], configured: str | None, expected: str
) -> None:
    # GIVEN an override CloudFormation (or SAM CLI) would refuse, on the command line or in samconfig.toml
    if configured is not None:
        samconfig(project, configured)

    # WHEN a run is asked for with it
    status = main(["run", "--json", "--template", str(project / "template.yaml"), BRUTE_FORCE, *args])
    captured = capsys.readouterr()

    # THEN exit 2, one line on stderr naming where the value came from and why, no traceback, no report
    assert status == 2
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("firebreak: ") and expected in line
    assert "Traceback" not in captured.err


def test_mode_lets_every_playbook_of_the_template_inherit_it() -> None:
    # GIVEN the template's per-playbook mode parameters (contain-task's ContainTaskMode among them)
    from firebreak_local.cli import PLAYBOOK_MODE_PARAMETERS
    from firebreak_local.template import load_template

    parameters = load_template(TEMPLATE).raw["Parameters"]
    playbook_modes = {name for name in parameters if name.endswith("Mode") and name != "ResponseMode"}
    # THEN --mode resets each of them to inherit, so no samconfig playbook mode outlives a --mode dry-run
    assert set(PLAYBOOK_MODE_PARAMETERS) == playbook_modes
