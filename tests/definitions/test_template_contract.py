"""Template contract: function folders, IAM without wildcard actions, state machine settings, the GuardDuty rule."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[2]
FUNCTIONS = ROOT / "functions"
SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def stack(template: Template) -> Stack:
    # Physical names do not matter here: a Ref is the logical id and a GetAtt is "LogicalId.Attribute".
    return Stack(template, ref=lambda logical_id: logical_id, get_att=lambda a, b: f"{a}.{b}")


def of_type(template: Template, type_name: str) -> dict[str, dict[str, Any]]:
    return {logical_id: r for logical_id, r in template.resources.items() if r["Type"] == type_name}


def snake_case(pascal: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", pascal).lower()


def defines_lambda_handler(app: Path) -> bool:
    module = ast.parse(app.read_text(encoding="utf-8"), filename=str(app))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "lambda_handler"
        for node in module.body
    )


def policy_statements(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, statement) for every IAM statement in a value tree: policy documents, SAM Policies, key policies."""
    if isinstance(value, dict):
        statements = value.get("Statement")
        if isinstance(statements, dict):
            statements = [statements]
        if isinstance(statements, list):
            for index, statement in enumerate(statements):
                # An IAM statement has an Effect; WAF rules also nest a "Statement", without one.
                if isinstance(statement, dict) and "Effect" in statement:
                    yield f"{path}.Statement[{index}]", statement
        for key, item in value.items():
            if key != "Statement":
                yield from policy_statements(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from policy_statements(item, f"{path}[{index}]")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def is_key_administration(resource: dict[str, Any], path: str, statement: dict[str, Any], stack: Stack) -> bool:
    """The account root's kms:* on a KMS key's own policy: the standard statement that keeps the key manageable.

    A key policy is the only policy of a KMS key; without this statement IAM cannot grant anyone access to the key
    and the key becomes unmanageable. It names the key only (Resource "*" means "this key" in a key policy) and
    delegates to IAM in the same account, so it is allowed here and nowhere else.
    """
    principal = stack.resolve(statement.get("Principal"))
    return (
        resource["Type"] == "AWS::KMS::Key"
        and ".Properties.KeyPolicy.Statement[" in path
        and statement.get("Effect") == "Allow"
        and as_list(stack.resolve(statement.get("Action"))) == ["kms:*"]
        and principal == {"AWS": f"arn:aws:iam::{stack.account_id}:root"}
    )


def numeric_conditions(pattern: Any, field: str) -> Iterator[list[Any]]:
    """The operands of every {"numeric": [...]} condition on `field`, at any depth of an event pattern."""
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            if key == field and isinstance(value, list):
                for condition in value:
                    if isinstance(condition, dict) and "numeric" in condition:
                        yield condition["numeric"]
            else:
                yield from numeric_conditions(value, field)
    elif isinstance(pattern, list):
        for item in pattern:
            yield from numeric_conditions(item, field)


# --- Functions ----------------------------------------------------------------------------------------------------


def test_every_function_lives_in_its_snake_case_folder_with_a_lambda_handler(template: Template) -> None:
    # GIVEN every AWS::Serverless::Function
    functions = of_type(template, "AWS::Serverless::Function")
    assert functions, "template.yaml declares no AWS::Serverless::Function"
    # WHEN its CodeUri and handler module are checked
    problems = []
    for logical_id, resource in functions.items():
        properties = resource.get("Properties", {})
        if not logical_id.endswith("Function"):
            problems.append(f"{logical_id}: logical id does not end in Function")
            continue
        expected = f"functions/{snake_case(logical_id.removesuffix('Function'))}/"
        code_uri = properties.get("CodeUri")
        app = ROOT / expected / "app.py"
        if code_uri != expected:
            problems.append(f"{logical_id}: CodeUri {code_uri!r}, expected {expected!r}")
        elif not app.is_file():
            problems.append(f"{logical_id}: no {expected}app.py")
        elif not defines_lambda_handler(app):
            problems.append(f"{logical_id}: {expected}app.py defines no module-level lambda_handler")
        if properties.get("Handler") != "app.lambda_handler":
            problems.append(f"{logical_id}: Handler {properties.get('Handler')!r}, expected 'app.lambda_handler'")
    # THEN each is functions/<snake_case of the id minus Function>/app.py:lambda_handler
    assert not problems, problems


def test_every_function_folder_is_used_by_exactly_one_function(template: Template) -> None:
    # GIVEN the folders under functions/ and the CodeUri of every function
    folders = sorted(p.name for p in FUNCTIONS.iterdir() if p.is_dir() and p.name != "__pycache__")
    code_uris = [
        str(r.get("Properties", {}).get("CodeUri", "")).rstrip("/")
        for r in of_type(template, "AWS::Serverless::Function").values()
    ]
    # WHEN each folder's users are counted
    users = {folder: code_uris.count(f"functions/{folder}") for folder in folders}
    # THEN no folder is orphaned or shared
    assert folders, "functions/ has no function folders"
    assert all(count == 1 for count in users.values()), f"functions/<folder> -> number of functions: {users}"


def test_globals_set_python_313_on_arm64_and_no_function_overrides_them(template: Template) -> None:
    # GIVEN the template as written (before Globals are merged)
    function_globals = (template.raw.get("Globals") or {}).get("Function") or {}
    functions = {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in template.raw["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # WHEN Globals.Function and each function's own properties are read
    overrides = [
        f"{logical_id}.{key}" for logical_id, p in functions.items() for key in ("Runtime", "Architectures") if key in p
    ]
    # THEN the runtime and architecture are set once, globally
    assert function_globals.get("Runtime") == "python3.13", (
        f"Globals.Function.Runtime is {function_globals.get('Runtime')!r}"
    )
    assert function_globals.get("Architectures") == ["arm64"], (
        f"Globals.Function.Architectures is {function_globals.get('Architectures')!r}"
    )
    assert not overrides, f"functions overriding the Globals: {overrides}"


# --- IAM ----------------------------------------------------------------------------------------------------------


def test_no_policy_statement_allows_every_action_of_a_service(template: Template, stack: Stack) -> None:
    # GIVEN every IAM statement of every resource: function and state machine Policies, policy documents, key policies
    statements = [
        (logical_id, resource, path, statement)
        for logical_id, resource in template.resources.items()
        for path, statement in policy_statements(resource, f"Resources.{logical_id}")
    ]
    assert statements, "no IAM statement found: the scan is broken"
    # WHEN their actions are resolved
    wildcards = [
        f"{path}: {action}"
        for _, resource, path, statement in statements
        if not is_key_administration(resource, path, statement, stack)
        for field in ("Action", "NotAction")
        for action in as_list(stack.resolve(statement.get(field)))
        if isinstance(action, str) and (action == "*" or SERVICE_WILDCARD.match(action))
    ]
    # THEN none is "*" or "<service>:*", but for the account root administering a KMS key through its key policy
    assert not wildcards, f"wildcard actions: {wildcards}"


# --- State machines -----------------------------------------------------------------------------------------------


def test_every_state_machine_is_standard_traced_and_logs_to_a_retained_log_group(
    template: Template, stack: Stack
) -> None:
    # GIVEN every AWS::Serverless::StateMachine (Globals merged)
    machines = of_type(template, "AWS::Serverless::StateMachine")
    assert machines, "template.yaml declares no AWS::Serverless::StateMachine"
    problems = []
    for logical_id in machines:
        # WHEN its type, tracing and logging are resolved
        properties = stack.properties(logical_id)
        logging = properties.get("Logging") or {}
        destinations = logging.get("Destinations") or []
        log_groups = [
            str((destination.get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn", "")).removesuffix(".Arn")
            for destination in destinations
        ]
        if properties.get("Type") != "STANDARD":
            problems.append(f"{logical_id}: Type is {properties.get('Type')!r}, not STANDARD")
        if (properties.get("Tracing") or {}).get("Enabled") is not True:
            problems.append(f"{logical_id}: Tracing.Enabled is not true")
        if logging.get("Level", "OFF") == "OFF":
            problems.append(f"{logical_id}: Logging.Level is OFF or missing")
        if not log_groups:
            problems.append(f"{logical_id}: Logging has no CloudWatchLogsLogGroup destination")
        for log_group in log_groups:
            resource = template.resources.get(log_group, {})
            if resource.get("Type") != "AWS::Logs::LogGroup":
                problems.append(f"{logical_id}: logs to {log_group!r}, not a GetAtt of an AWS::Logs::LogGroup here")
            elif (resource.get("Properties") or {}).get("RetentionInDays") is None:
                problems.append(f"{logical_id}: log group {log_group} has no RetentionInDays")
    # THEN each is STANDARD, traced, and logs to a log group of this stack that expires its logs
    assert not problems, problems


def test_guardduty_rule_compares_severity_numerically_with_the_threshold_default(
    template: Template, stack: Stack
) -> None:
    # GIVEN the EventBridge rules that state machines declare as events
    patterns = {
        f"{logical_id}.Events.{name}": event["Properties"]["Pattern"]
        for logical_id in of_type(template, "AWS::Serverless::StateMachine")
        for name, event in (stack.properties(logical_id).get("Events") or {}).items()
        if event.get("Type") == "EventBridgeRule"
    }
    # WHEN the GuardDuty one, a JSON string built with !Sub, is resolved and parsed
    parsed = {where: json.loads(p) if isinstance(p, str) else p for where, p in patterns.items()}
    guardduty = {where: p for where, p in parsed.items() if "aws.guardduty" in as_list(p.get("source"))}
    assert len(guardduty) == 1, f"GuardDuty rules among the state machine events: {sorted(guardduty) or 'none'}"
    [(where, pattern)] = guardduty.items()
    severity = list(numeric_conditions(pattern, "severity"))
    default = template.body["Parameters"]["SeverityThreshold"]["Default"]
    # THEN severity is compared with numeric >= and the default threshold as a JSON number, not a string
    assert isinstance(default, int | float) and not isinstance(default, bool), f"SeverityThreshold default {default!r}"
    assert severity, f"{where}: no numeric condition on severity in {pattern}"
    for operands in severity:
        assert len(operands) == 2 and operands[0] == ">=", f"{where}: severity numeric {operands!r}, expected ['>=', n]"
        threshold = operands[1]
        assert isinstance(threshold, int | float) and not isinstance(threshold, bool), (
            f"{where}: severity threshold {threshold!r} is not a JSON number"
        )
        assert threshold == default, f"{where}: severity threshold {threshold!r}, SeverityThreshold default {default!r}"
