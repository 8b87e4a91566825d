"""Parameters as a deployer meets them: `sam deploy --guided` and the console's parameter groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import Template, load_template

ROOT = Path(__file__).parents[2]

# What no default can decide for a deployer: how much Firebreak may do on its own, who hears about it, whether
# Security Hub exists here (a wrong true fails the whole stack), and which addresses are theirs.
MUST_DECIDE = ("ResponseMode", "NotificationEmail", "SecurityHubEnabled", "AllowListCidrs")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def interface(template: Template) -> dict[str, Any]:
    metadata: dict[str, Any] = template.raw["Metadata"]["AWS::CloudFormation::Interface"]
    return metadata


def test_every_parameter_is_in_exactly_one_group(template: Template) -> None:
    # GIVEN the template's parameters and its parameter groups
    declared = list(template.raw["Parameters"])
    grouped = [name for group in interface(template)["ParameterGroups"] for name in group["Parameters"]]

    # THEN each parameter is grouped once, and every grouped name is a parameter
    assert sorted(grouped) == sorted(declared)
    assert len(grouped) == len(set(grouped))


def test_the_top_group_holds_the_parameters_a_deployer_must_decide(template: Template) -> None:
    # GIVEN the first parameter group
    top = interface(template)["ParameterGroups"][0]

    # THEN it holds exactly the must-decide parameters, in the order the template declares them
    assert tuple(top["Parameters"]) == MUST_DECIDE


def test_sam_deploy_guided_asks_the_must_decide_parameters_first(template: Template) -> None:
    # GIVEN sam deploy --guided, which prompts in the order of the template's Parameters, not of the groups
    first = tuple(template.raw["Parameters"])[: len(MUST_DECIDE)]

    # THEN the must-decide parameters are its first questions
    assert first == MUST_DECIDE


def test_every_parameter_has_a_default_so_guided_deploy_can_accept_it(template: Template) -> None:
    # GIVEN every parameter
    parameters: dict[str, dict[str, Any]] = template.raw["Parameters"]

    # THEN each has a Default and a Description: Enter keeps a safe value, and the console says what it is
    assert [name for name, p in parameters.items() if "Default" not in p] == []
    assert [name for name, p in parameters.items() if not p.get("Description")] == []


def test_every_parameter_has_a_label_and_every_label_a_parameter(template: Template) -> None:
    # GIVEN the parameter labels
    labels: dict[str, dict[str, str]] = interface(template)["ParameterLabels"]

    # THEN they name exactly the parameters, each with a non-empty default text
    assert sorted(labels) == sorted(template.raw["Parameters"])
    assert [name for name, label in labels.items() if not label.get("default")] == []


def test_circuit_breaker_budgets_share_a_group(template: Template) -> None:
    # GIVEN the group holding the workload budget
    groups = interface(template)["ParameterGroups"]
    holding = [g["Label"]["default"] for g in groups if "MaxContainmentsPerHour" in g["Parameters"]]

    # THEN an address budget, where the template has one, sits beside it
    if "MaxBlockedAddressesPerHour" in template.raw["Parameters"]:
        assert holding == [g["Label"]["default"] for g in groups if "MaxBlockedAddressesPerHour" in g["Parameters"]]
    assert len(holding) == 1
