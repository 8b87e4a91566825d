"""Template contract of the approval path and the optional Security Hub automation rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.engine import Engine
from firebreak_local.template import Template, load_template

ROOT = Path(__file__).parents[2]
MODES = ["enforce", "approval", "dry-run"]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def properties(template: Template, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template.resources[logical_id]["Properties"]
    return props


def statements(template: Template, logical_id: str) -> list[dict[str, Any]]:
    """Every statement, both branches of a conditional (Fn::If) one included."""
    found = []
    for policy in properties(template, logical_id).get("Policies", []):
        if not isinstance(policy, dict):
            continue
        for statement in policy.get("Statement", []):
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            found += [branch for branch in branches if isinstance(branch, dict) and "Action" in branch]
    return found


def test_every_mode_parameter_offers_approval(template: Template) -> None:
    # GIVEN the stack-wide and per-playbook mode parameters
    parameters = template.body["Parameters"]
    # THEN the stack offers enforce, approval and dry-run, and each playbook can also inherit it
    assert parameters["ResponseMode"]["AllowedValues"] == MODES
    for name in ("BlockIpMode", "ContainInstanceMode", "RevokeCredentialsMode", "ContainFunctionMode"):
        assert parameters[name]["AllowedValues"] == ["inherit", *MODES]
        assert parameters[name]["Default"] == "inherit"


def test_approval_defaults_are_an_hour_and_deny(template: Template) -> None:
    parameters = template.body["Parameters"]
    assert (parameters["ApprovalTimeoutMinutes"]["Default"], parameters["ApprovalTimeoutAction"]["Default"]) == (
        60,
        "deny",
    )
    assert parameters["ApprovalTimeoutAction"]["AllowedValues"] == ["deny", "approve"]


def test_entry_machine_outlasts_the_longest_approval_window(template: Template) -> None:
    # GIVEN the longest window the parameter allows
    definition = json.loads((ROOT / "statemachines" / "respond_to_finding.asl.json").read_text())
    longest = template.body["Parameters"]["ApprovalTimeoutMinutes"]["MaxValue"] * 60
    # THEN the machine's own timeout leaves room for the wait, its 60 s backstop and the response after it
    assert definition["TimeoutSeconds"] >= longest + 60 + 900


def test_answer_url_requires_iam_authentication(template: Template) -> None:
    # GIVEN the answer function  THEN its URL is never public: callers sign with SigV4
    assert properties(template, "AnswerApprovalFunction")["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}


def test_only_the_answer_function_can_resume_executions(template: Template) -> None:
    # GIVEN every IAM statement of every function
    granting = {
        logical_id
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for statement in statements(template, logical_id)
        if any(str(action).startswith("states:SendTask") for action in statement["Action"])
    }
    # THEN only the answer function may send task results; IAM authorises them only on "*" (no resource types),
    # and the single-use task token, which only this function reads, is what picks the execution
    assert granting == {"AnswerApprovalFunction"}
    (statement,) = [
        s for s in statements(template, "AnswerApprovalFunction") if "states:SendTaskSuccess" in s["Action"]
    ]
    assert sorted(statement["Action"]) == ["states:SendTaskFailure", "states:SendTaskSuccess"]
    assert statement["Resource"] == "*"


def test_pending_approvals_expire_and_the_signing_key_is_generated(template: Template) -> None:
    # THEN pending task tokens do not outlive their window, and nobody writes the signing key by hand
    assert properties(template, "ApprovalTable")["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    assert "GenerateSecretString" in properties(template, "ApprovalSigningSecret")
    assert "SecretString" not in properties(template, "ApprovalSigningSecret")


def test_automation_rules_are_optional_and_off_by_default(template: Template) -> None:
    # GIVEN the automation rules
    rules = {k: r for k, r in template.resources.items() if r["Type"] == "AWS::SecurityHub::AutomationRule"}
    # THEN there is one suppressing exempt resources and one raising critical ones, both behind the parameter
    assert set(rules) == {"SuppressExemptAutomationRule", "RaiseCriticalAutomationRule"}
    assert {rule["Condition"] for rule in rules.values()} == {"CreatesAutomationRules"}
    assert template.body["Parameters"]["CreateAutomationRules"]["Default"] == "false"
    assert template.body["Conditions"]["CreatesAutomationRules"] == {
        "Fn::And": [{"Condition": "UsesSecurityHub"}, {"Fn::Equals": [{"Ref": "CreateAutomationRules"}, "true"]}]
    }
    suppress = rules["SuppressExemptAutomationRule"]["Properties"]
    assert {tag["Key"] for tag in suppress["Criteria"]["ResourceTags"]} == {"firebreak:exempt"}
    assert suppress["Actions"][0]["FindingFieldsUpdate"]["Workflow"] == {"Status": "SUPPRESSED"}
    raise_ = rules["RaiseCriticalAutomationRule"]["Properties"]
    assert raise_["Actions"][0]["FindingFieldsUpdate"]["Severity"] == {"Label": "CRITICAL"}


def test_engine_provisions_the_stack_with_automation_rules_on() -> None:
    # GIVEN the automation rules switched on, with Security Hub (the engine does not emulate Security Hub rules)
    saved = dict(os.environ)
    try:
        # WHEN the stack is provisioned locally
        with Engine(ROOT / "template.yaml", {"CreateAutomationRules": "true", "SecurityHubEnabled": "true"}) as engine:
            # THEN it comes up, with the rules present as placeholders
            assert {"SuppressExemptAutomationRule", "RaiseCriticalAutomationRule"} <= set(engine.resources)
    finally:
        os.environ.clear()
        os.environ.update(saved)
