"""`firebreak run` as contracts/CLI.md says: one schema-valid JSON document, exit statuses, one line per bad file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from firebreak_local.cli import main
from tests.support import ROOT

SCHEMA = json.loads((ROOT / "contracts" / "run-report.schema.json").read_text())
SHARED_CONTRACTS = ROOT.parent / "shared" / "docs" / "contracts"
BRUTE_FORCE = "events/eventbridge/guardduty_ssh_brute_force.json"
APPROVAL_REQUIRED = "events/eventbridge/guardduty_ssh_brute_force_approval_required.json"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    status = main(["run", "--json", *args])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


@pytest.mark.skipif(not SHARED_CONTRACTS.is_dir(), reason="the shared contracts are not beside this clone")
@pytest.mark.parametrize("name", ["CLI.md", "run-report.schema.json"])
def test_repo_copy_of_the_contract_matches_the_shared_one(name: str) -> None:
    # GIVEN the contract other tools check against
    # THEN the copy the tests use is the same text
    assert (ROOT / "contracts" / name).read_text() == (SHARED_CONTRACTS / name).read_text()


def test_json_report_is_the_only_thing_on_stdout_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the demo's events, duplicate, ignored, sample and malformed included
    files = [
        BRUTE_FORCE,
        "events/eventbridge/guardduty_ssh_brute_force_redelivered.json",
        "events/eventbridge/guardduty_port_probe_low.json",
        "events/eventbridge/guardduty_sample_rdp_brute_force.json",
        "events/eventbridge/guardduty_malformed.json",
    ]

    # WHEN they run with --json
    status, document, _ = run_json(capsys, *files)

    # THEN stdout is one document valid against the contract, with one result per file in order
    jsonschema.validate(document, SCHEMA)
    assert status == 0
    assert [r["event_file"] for r in document["results"]] == files
    assert [r["status"] for r in document["results"]] == ["CONTAINED", "DUPLICATE", "IGNORED", "DRY_RUN", "REJECTED"]
    assert document["world"]["blocked_ips"] == ["45.155.205.233/32"]
    assert document["world"]["incidents"] == 3
    assert len(document["world"]["notifications"]) == 3


def test_ignored_event_starts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a low-severity port probe, below the threshold and not an always-respond type
    status, document, _ = run_json(capsys, "events/eventbridge/guardduty_port_probe_low.json")

    # THEN no rule matched and no execution ran
    (result,) = document["results"]
    assert status == 0
    assert (result["triggered"], result["status"], result["execution_arn"]) == (False, "IGNORED", None)
    assert document["world"]["incidents"] == 0


def test_security_hub_copy_of_a_guardduty_finding_is_not_processed_twice(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN GuardDuty's SSH brute force, then the copy Security Hub imports of that same finding
    copy = "events/eventbridge/securityhub_guardduty_copy.json"

    # WHEN both run through the stack
    status, document, _ = run_json(capsys, BRUTE_FORCE, copy)

    # THEN the native finding is contained and the copy starts nothing: one incident, one block, one message
    assert status == 0
    assert [(r["triggered"], r["status"]) for r in document["results"]] == [(True, "CONTAINED"), (False, "IGNORED")]
    assert document["world"]["incidents"] == 1
    assert document["world"]["blocked_ips"] == ["45.155.205.233/32"]
    assert len(document["world"]["notifications"]) == 1


def test_mode_override_plans_instead_of_blocking(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the stack's default mode is enforce
    # WHEN the brute force runs with --mode dry-run
    status, document, _ = run_json(capsys, "--mode", "dry-run", BRUTE_FORCE)

    # THEN the block is planned and the world is unchanged
    (result,) = document["results"]
    assert (status, result["mode"], result["status"]) == (0, "dry-run", "DRY_RUN")
    assert document["world"]["blocked_ips"] == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ('{"hello": "world"}', "not an EventBridge event"),
        ('["a list"]', "not an EventBridge event"),
    ],
)
def test_unusable_file_gives_one_line_and_exit_2_while_the_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    # GIVEN one unusable file among good ones
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)

    # WHEN they run
    status, document, err = run_json(capsys, str(bad), BRUTE_FORCE)

    # THEN exit 2, exactly one stderr line naming the file and the problem, no traceback, the good file processed
    lines = [line for line in err.splitlines() if line.startswith("firebreak:")]
    assert status == 2
    assert len(lines) == 1
    assert str(bad) in lines[0] and problem in lines[0]
    assert "Traceback" not in err
    assert [r["status"] for r in document["results"]] == ["CONTAINED"]


def test_readable_output_shows_the_timeline_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the brute force runs without --json
    status = main(["run", BRUTE_FORCE])
    out = capsys.readouterr().out

    # THEN the timeline names the states and the action, and the summary the block list
    assert status == 0
    assert "Parse Finding > Open Incident" in out
    assert "block_ip" in out and "45.155.205.233/32" in out
    assert "WAF block list: 45.155.205.233/32" in out


def test_release_reports_released_and_an_empty_block_list(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the brute force, which blocks its attacker
    # WHEN it runs with --json --release
    status, document, _ = run_json(capsys, "--release", BRUTE_FORCE)

    # THEN the report is valid, the incident is RELEASED after the release machine's states, and nothing is blocked
    jsonschema.validate(document, SCHEMA)
    (result,) = document["results"]
    assert status == 0
    assert result["status"] == "RELEASED"
    assert result["states"][-4:] == ["Release Actions", "Record Release", "Notify Release", "Release Complete"]
    assert {"type": "block_ip", "target": "45.155.205.233/32", "outcome": "released"}.items() <= next(
        a for a in result["actions"] if a["outcome"] == "released" and a["type"] == "block_ip"
    ).items()
    assert document["world"]["blocked_ips"] == []
    assert [e["status"] for e in document["world"]["incident_events"]] == ["OPEN", "CONTAINED", "RELEASED"]


def test_release_runs_once_per_incident_and_leaves_other_results_alone(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a finding, its redelivery, an ignored event and a rejected one
    files = [
        BRUTE_FORCE,
        "events/eventbridge/guardduty_ssh_brute_force_redelivered.json",
        "events/eventbridge/guardduty_port_probe_low.json",
        "events/eventbridge/guardduty_malformed.json",
    ]

    # WHEN they run with --release
    status, document, _ = run_json(capsys, "--release", *files)

    # THEN only the incident's opening result is released; the others keep their status
    jsonschema.validate(document, SCHEMA)
    assert status == 0
    assert [r["status"] for r in document["results"]] == ["RELEASED", "DUPLICATE", "IGNORED", "REJECTED"]
    assert document["world"]["blocked_ips"] == []


def test_report_dir_gets_one_markdown_report_per_incident(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the brute force runs with --report-dir
    status = main(["run", "--report-dir", str(tmp_path), BRUTE_FORCE])
    capsys.readouterr()

    # THEN one report, named by the incident id, tells the status, the block and its before and after state
    (report,) = tmp_path.glob("fb-*.md")
    text = report.read_text()
    assert status == 0
    assert text.startswith(f"# Firebreak incident {report.stem}: CONTAINED")
    assert "| block_ip | 45.155.205.233/32 | applied |" in text
    assert '"present": false' in text and '"present": true' in text
    assert "i-0a1b2c3d4e5f60001" in text, "the report names resources by the finding's ids"


def test_approval_required_finding_is_reported_awaiting_approval_without_approve(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a brute force against an instance tagged firebreak:approval=required
    # WHEN it runs without --approve
    status, document, _ = run_json(capsys, APPROVAL_REQUIRED)

    # THEN the report is valid, the incident waits for approval, the request was sent and nothing was blocked
    jsonschema.validate(document, SCHEMA)
    (result,) = document["results"]
    assert (status, result["status"], result["mode"]) == (0, "AWAITING_APPROVAL", "approval")
    assert [(a["type"], a["outcome"]) for a in result["actions"]] == [("block_ip", "awaiting_approval")]
    assert result["states"][-1] == "Wait For Approval"
    assert document["world"]["blocked_ips"] == []
    assert [n["subject"] for n in document["world"]["notifications"]] == [
        "Firebreak AWAITING_APPROVAL: UnauthorizedAccess:EC2/SSHBruteForce"
    ]


def test_approve_answers_every_request_and_the_playbook_acts(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the stack in approval mode and two findings that both wait
    # WHEN they run with --approve
    status, document, _ = run_json(capsys, "--mode", "approval", "--approve", BRUTE_FORCE, APPROVAL_REQUIRED)

    # THEN each was approved through the answer function and contained
    jsonschema.validate(document, SCHEMA)
    assert status == 0
    assert [r["status"] for r in document["results"]] == ["CONTAINED", "CONTAINED"]
    assert all("Wait For Approval" in r["states"] for r in document["results"])
    assert document["world"]["blocked_ips"] == ["103.151.103.15/32", "45.155.205.233/32"]


def test_the_command_exits_with_mains_code_and_everything_written() -> None:
    # GIVEN the `firebreak` command as the console script runs it (it leaves without the interpreter's teardown)
    command = [sys.executable, "-m", "firebreak_local.cli", "run", "--json", BRUTE_FORCE]

    # WHEN it runs an event, and when it is given an option it does not know
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    refused = subprocess.run([*command[:4], "--nope"], capture_output=True, text=True, cwd=ROOT, check=False)

    # THEN the report is whole on stdout with exit 0, and the usage error exits 2 with argparse's message
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["status"] == "CONTAINED"
    assert refused.returncode == 2
    assert "unrecognized arguments: --nope" in refused.stderr
