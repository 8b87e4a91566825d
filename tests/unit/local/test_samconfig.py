"""Parameter overrides read as `sam deploy` reads them, and the repository's samconfig.toml read that way."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from firebreak_local import samconfig
from firebreak_local.template import load_template
from tests.support import ROOT, TEMPLATE


# Each expected value is what SAM CLI's CfnParameterOverridesType.convert returns for the same input.
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("A=1 B=2", {"A": "1", "B": "2"}),
        ("Name=\"a b\" Other='c d'", {"Name": "a b", "Other": "c d"}),
        ("ParameterKey=K,ParameterValue=V ParameterKey=K2,ParameterValue=V2", {"K": "V", "K2": "V2"}),
        (("A=1", "B=x,y"), {"A": "1", "B": "x,y"}),
        (["A=1", {"B": ["x", " y", ""], "C": None, "D": 3}], {"A": "1", "B": "x,y", "C": "", "D": "3"}),
        ({"E": True}, {"E": "True"}),
        ("A=a\\ b", {"A": "a b"}),
        ('X="say \\"hi\\""', {"X": 'say "hi"'}),
        ("A=\"\" B=''", {"A": "", "B": ""}),
        ("A=1 trailing words", {"A": "1"}),
        ([["A=1"], ("B=2",), "A=3"], {"A": "3", "B": "2"}),
        ("", {}),
        (None, {}),
    ],
)
def test_overrides_parse_as_sam_cli_parses_them(given: Any, expected: dict[str, str]) -> None:
    assert samconfig.parse(given) == expected


@pytest.mark.parametrize("given", ["A=", "no pairs here", ["A=1", 3.5]])
def test_overrides_sam_cli_cannot_read_are_refused(given: Any) -> None:
    with pytest.raises(samconfig.OverridesError):
        samconfig.parse(given)


def test_file_references_are_read_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    # GIVEN a TOML file that includes a YAML file beside it, and a JSON file that includes itself
    (tmp_path / "base.toml").write_text('A = "1"\n"$include" = "file://more.yaml"\n')
    (tmp_path / "more.yaml").write_text("B: [x, y]\nA: '2'\n")
    (tmp_path / "loop.json").write_text('{"$include": "file://loop.json"}')

    # WHEN / THEN the include is read where it lies, and the loop is refused
    assert samconfig.parse(f"file://{tmp_path / 'base.toml'}") == {"A": "2", "B": "x,y"}
    with pytest.raises(samconfig.OverridesError, match="Infinite recursion"):
        samconfig.parse(f"file://{tmp_path / 'loop.json'}")
    with pytest.raises(samconfig.OverridesError, match="was not found"):
        samconfig.parse(f"file://{tmp_path / 'missing.toml'}")


def test_default_environment_reads_deploy_over_global_parameters(tmp_path: Path) -> None:
    # GIVEN overrides in the default environment's global and deploy sections, and in another environment
    (tmp_path / "samconfig.toml").write_text(
        textwrap.dedent(
            """
            version = 0.1
            [default.global.parameters]
            parameter_overrides = "A=global"
            [default.deploy.parameters]
            parameter_overrides = ["B=deploy", "C='two words'"]
            [prod.deploy.parameters]
            parameter_overrides = "D=prod"
            """
        )
    )

    # WHEN / THEN the deploy section's value replaces the global one, as SAM CLI merges them, and prod is not read
    assert samconfig.default_overrides(tmp_path) == {"B": "deploy", "C": "two words"}


def test_no_samconfig_or_no_overrides_is_empty(tmp_path: Path) -> None:
    assert samconfig.default_overrides(tmp_path) == {}
    (tmp_path / "samconfig.toml").write_text("version = 0.1\n[default.deploy.parameters]\nresolve_s3 = true\n")
    assert samconfig.default_overrides(tmp_path) == {}


def test_samconfig_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text("[default\n")
    with pytest.raises(samconfig.OverridesError, match="samconfig.toml: cannot read"):
        samconfig.default_overrides(tmp_path)


def _repository_config() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def test_repository_samconfig_keeps_its_version_and_sections() -> None:
    config = _repository_config()
    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"]["stack_name"] == "firebreak"
    assert config["default"]["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM"
    assert config["prod"]["global"]["parameters"]["stack_name"] != "firebreak"


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_repository_samconfig_overrides_are_parameters_the_template_accepts(environment: str) -> None:
    # GIVEN an environment of samconfig.toml, as `sam deploy --config-env` reads it
    sections = _repository_config()[environment]
    merged = {**sections["global"]["parameters"], **sections["deploy"]["parameters"]}

    # WHEN its overrides are parsed as SAM CLI parses them
    overrides = samconfig.parse(merged.get("parameter_overrides"))

    # THEN template.yaml declares every one and accepts its value; prod makes a real production choice
    load_template(TEMPLATE).parameters(overrides)
    if environment == "prod":
        assert overrides["ResponseMode"] == "enforce"
        assert len(overrides) >= 3
