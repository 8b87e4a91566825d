"""What each function was seen doing on the local engine, held against what its template policy grants.

moto evaluates no IAM, so a call the code makes and the template does not grant passes every local test. A
`CallRecorder` (a runtime guard, it never answers) notes every AWS call a handler makes, as (principal, IAM action):
the principal is the function's own role, or the member role whose session signed the call. `uncovered` then holds
each call against the Allow statements of that principal's policies: the function's `Policies` in the resolved
template, a member role's inline policies as member.yaml deployed them.

What is evaluated: Effect, Action (wildcards included) and, where the request names it plainly (DynamoDB tables, the
topic, state machines and executions, secrets, SSM parameters, IPSets, functions, IAM users and roles, the role an
AssumeRole asks for), Resource; an explicit Deny refuses. Conditions are not evaluated (`make iam-check` holds their
keys against IAM's data).

SDK operation names are IAM action names except for the documented exceptions in `OPERATION_ACTIONS` (the Service
Authorization Reference and each service's API reference list them); a call that needs no permission maps to none.
State machines' own calls are read from their definitions instead (`INTEGRATION_ACTIONS`): the engine runs Task
integrations inside moto's interpreter, where no handler is current.

`python -m firebreak_local.iam_coverage` runs `EVENTS` and prints what is not granted (exit 1) and what no recorded
call used (listed only: many grants serve a Region, an option or a failure path these events do not take).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from moto.iam.models import get_account_id_from, iam_backends
from moto.sts.models import sts_backends

from firebreak_local import runtime
from firebreak_local.engine import Approvals, Engine
from firebreak_local.events import read_event
from firebreak_local.iam_check import ROOT, as_list, expand, policy_statements, security_stack, table
from firebreak_local.template import Stack, load_template

# botocore's hyphenated service id (the event name's second part) -> IAM's service prefix, where they differ.
SERVICE_PREFIXES = {
    "sfn": "states",
    "secrets-manager": "secretsmanager",
    "auto-scaling": "autoscaling",
    "elastic-load-balancing-v2": "elasticloadbalancing",
    "elastic-load-balancing": "elasticloadbalancing",
    "eventbridge": "events",
    "cloudwatch-logs": "logs",
}
# SDK operation -> the IAM actions it needs, where that is not `prefix:Operation`.
OPERATION_ACTIONS: dict[str, tuple[str, ...]] = {
    # S3: HEAD reads are authorised as the GET they stand for; a listing is ListBucket (S3 API reference).
    "s3:HeadObject": ("s3:GetObject",),
    "s3:HeadBucket": ("s3:ListBucket",),
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:ListObjects": ("s3:ListBucket",),
    # protect-bucket: a bucket's Block Public Access is the Bucket... action; deleting it is a Put (S3 API reference,
    # DeletePublicAccessBlock: "you must have the s3:PutBucketPublicAccessBlock permission").
    "s3:GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock",),
    "s3:PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "s3:DeletePublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    # Lambda's Invoke API is the InvokeFunction action.
    "lambda:Invoke": ("lambda:InvokeFunction",),
    # STS: GetCallerIdentity needs no permission ("No permissions are required", STS API reference).
    "sts:GetCallerIdentity": (),
    # DynamoDB transactions are authorised per item, by the item's own action (DynamoDB developer guide,
    # "Using IAM with DynamoDB transactions"); the recorder cannot see which, so it asks for the write actions.
    "dynamodb:TransactWriteItems": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
    "dynamodb:TransactGetItems": ("dynamodb:GetItem",),
    # The responder topic, Firebreak's only topic, is encrypted with ResponderTopicKey: a publisher needs the key's
    # GenerateDataKey and Decrypt too (SNS developer guide, "Encryption at rest": publishers to an encrypted topic).
    "sns:Publish": ("sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"),
}
_ACCESS_KEY = re.compile(r"Credential=([A-Z0-9]+)/")


def iam_actions(event_name: str) -> tuple[str, ...]:
    """The IAM actions the botocore call of this `before-send.<service>.<Operation>` event needs."""
    parts = event_name.split(".")
    if len(parts) < 3:
        return ()
    prefix = SERVICE_PREFIXES.get(parts[1], parts[1])
    operation = f"{prefix}:{parts[2]}"
    return OPERATION_ACTIONS.get(operation, (operation,))


@dataclass(frozen=True)
class Call:
    principal: str  # the function's name, or the ARN of the member role whose session made the call
    action: str
    resource: str = ""  # the ARN acted on, where the request names it plainly (see `request_resources`); else ""


class CallRecorder:
    """A runtime guard that records every call a handler makes and lets each through."""

    def __init__(self) -> None:
        self.calls: Counter[Call] = Counter()
        self._lock = threading.Lock()

    def __enter__(self) -> CallRecorder:
        runtime.add_guard(self)
        return self

    def __exit__(self, *exc: object) -> None:
        runtime.remove_guard(self)

    def __call__(self, event_name: str, request: Any) -> None:
        function = runtime.current_function()
        if function is None or not event_name.startswith("before-send."):
            return None
        assumed = _assumed_role(request)
        principal = assumed or function.name
        account = (assumed or function.arn).split(":")[4]
        actions = iam_actions(event_name)
        resources = request_resources(event_name, request, account) if actions else []
        with self._lock:
            for action in actions:
                # Only the call's own action acts on the named resource; what it also needs (a topic's key) does not.
                same_service = action.split(":")[0] == actions[0].split(":")[0]
                for resource in resources if same_service and resources else [""]:
                    self.calls[Call(principal, action, resource)] += 1
        return None


def _parameters(request: Any) -> dict[str, Any]:
    body = request.body or b""
    text = body.decode() if isinstance(body, bytes) else str(body)
    try:
        loaded = json.loads(text)
    except ValueError:
        return {key: values[0] for key, values in urllib.parse.parse_qs(text).items()}
    return loaded if isinstance(loaded, dict) else {}


def request_resources(event_name: str, request: Any, account: str) -> list[str]:
    """The ARNs a call acts on, for the services whose requests name them plainly; [] where not read."""
    service, operation = event_name.split(".")[1:3]
    host = urllib.parse.urlsplit(str(request.url)).hostname or ""
    region = host.split(".")[1] if host.count(".") >= 2 else ""
    parameters = _parameters(request)
    if service == "dynamodb" and isinstance(parameters.get("TableName"), str):
        return [f"arn:aws:dynamodb:{region}:{account}:table/{parameters['TableName']}"]
    if service == "sns" and operation == "Publish" and parameters.get("TopicArn"):
        return [str(parameters["TopicArn"])]
    if service == "sfn":
        arn = parameters.get("stateMachineArn") or parameters.get("executionArn")
        return [str(arn)] if arn else []
    if service == "secrets-manager" and str(parameters.get("SecretId", "")).startswith("arn:"):
        return [str(parameters["SecretId"])]
    if service == "wafv2" and parameters.get("Name") and parameters.get("Id") and operation.endswith("IPSet"):
        scope = "global" if parameters.get("Scope") == "CLOUDFRONT" else "regional"
        return [f"arn:aws:wafv2:{region}:{account}:{scope}/ipset/{parameters['Name']}/{parameters['Id']}"]
    if service == "lambda" and operation == "Invoke":
        name = urllib.parse.unquote(str(request.url).split("/functions/", 1)[-1].split("/", 1)[0])
        return [name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"]
    # contain-function: Lambda's other function APIs (concurrency, versions) name the function in the path too.
    if service == "lambda" and "/functions/" in str(request.url):
        name = urllib.parse.unquote(str(request.url).split("/functions/", 1)[-1].split("/", 1)[0].split("?", 1)[0])
        return [name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"]
    if service == "iam" and (parameters.get("UserName") or parameters.get("RoleName")):
        # IAM's own paths are not in the request; Firebreak's grants name users and roles with path wildcards.
        kind, name = (
            ("user", parameters["UserName"]) if parameters.get("UserName") else ("role", parameters["RoleName"])
        )
        return [f"arn:aws:iam::{account}:{kind}/{name}"]
    if service == "sts" and operation == "AssumeRole" and parameters.get("RoleArn"):
        return [str(parameters["RoleArn"])]
    if service == "ssm" and operation in ("GetParameter", "GetParameters"):
        names = as_list(parameters.get("Names") or parameters.get("Name"))
        return [f"arn:aws:ssm:{region}:{account}:parameter{'' if str(n).startswith('/') else '/'}{n}" for n in names]
    return []


def _assumed_role(request: Any) -> str | None:
    match = _ACCESS_KEY.search(str(request.headers.get("Authorization", "")))
    if match is None or not match.group(1).startswith("ASIA"):
        return None
    key = match.group(1)
    assumed = sts_backends[get_account_id_from(key)]["aws"].get_assumed_role_from_access_key(key)
    return str(assumed.role_arn) if assumed is not None else None


def function_policies(stack: Stack, names: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Function name -> its template statements, for the functions of names (logical id -> function name)."""
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names.values()}
    for logical_id, _, statement in policy_statements(stack):
        if logical_id in names:
            found[names[logical_id]].append(statement)
    return found


def function_names(stack: Stack, physical_name: str = "firebreak-{}") -> dict[str, str]:
    """Logical id -> function name, as the engine names functions."""
    return {
        logical_id: str(stack.properties(logical_id).get("FunctionName") or physical_name.format(logical_id))
        for logical_id in stack.resources_of_type("AWS::Serverless::Function")
    }


def member_role_policies(role_arns: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Role ARN -> the statements of its inline policies, as moto's IAM holds them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for arn in role_arns:
        account = arn.split(":")[4]
        role = next((r for r in iam_backends[account]["aws"].roles.values() if r.arn == arn), None)
        documents = [] if role is None else [_document(text) for text in role.policies.values()]
        found[arn] = [s for document in documents for s in as_list(document.get("Statement")) if isinstance(s, dict)]
    return found


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    for candidate in (str(text), urllib.parse.unquote(str(text))):
        try:
            loaded = json.loads(candidate)
        except ValueError:
            continue
        return dict(loaded)
    return {}


def _names(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if not any(fnmatchcase(action.lower(), str(pattern).lower()) for pattern in as_list(statement.get("Action"))):
        return False
    return not resource or any(fnmatchcase(resource, str(p)) for p in as_list(statement.get("Resource", "*")))


def allowed(statements: Iterable[Mapping[str, Any]], action: str, resource: str = "") -> bool:
    """Whether the statements allow the action on the resource ("" when unknown: any): an Allow names both and no
    Deny does. Conditions are not evaluated."""
    statements = list(statements)
    if any(s.get("Effect") == "Deny" and _names(s, action, resource) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _names(s, action, resource) for s in statements)


def uncovered(calls: Iterable[Call], policies: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[str]:
    """One line for each call its principal's policies do not allow, or whose action IAM does not know."""
    problems = []
    for call in sorted(set(calls), key=lambda c: (c.principal, c.action, c.resource)):
        on = f" on {call.resource}" if call.resource else ""
        if not expand(call.action):
            problems.append(f"{call.principal}: {call.action} is no IAM action (add it to OPERATION_ACTIONS)")
        elif call.principal not in policies:
            problems.append(f"{call.principal}: {call.action} made by a principal with no known policy")
        elif not allowed(policies[call.principal], call.action, call.resource):
            problems.append(f"{call.principal}: {call.action}{on} is not granted")
    return problems


def unused(calls: Iterable[Call], policies: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[str]:
    """One line for each Allow action of a principal seen calling that no recorded call of it used."""
    made: dict[str, set[str]] = {}
    for call in calls:
        made.setdefault(call.principal, set()).add(call.action.lower())
    lines = []
    for principal in sorted(made):
        for statement in policies.get(principal, ()):
            if statement.get("Effect") != "Allow":
                continue
            for pattern in (str(a) for a in as_list(statement.get("Action"))):
                if not any(fnmatchcase(action, pattern.lower()) for action in made[principal]):
                    lines.append(f"{principal}: {pattern}")
    return sorted(set(lines))


# A Task state's service integration -> the IAM actions its state machine's role needs for it (Step Functions
# developer guide, "How Step Functions generates IAM policies for integrated services"). startExecution.sync has
# Step Functions poll and stop the child, and manage the managed rule StepFunctionsGetEventsForStepFunctionsExecution.
INTEGRATION_ACTIONS: dict[str, tuple[str, ...]] = {
    "dynamodb:putItem": ("dynamodb:PutItem",),
    "dynamodb:updateItem": ("dynamodb:UpdateItem",),
    "dynamodb:getItem": ("dynamodb:GetItem",),
    "lambda:invoke": ("lambda:InvokeFunction",),
    "lambda:invoke.waitForTaskToken": ("lambda:InvokeFunction",),
    "sns:publish": ("sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"),
    "states:startExecution": ("states:StartExecution",),
    "states:startExecution.sync:2": (
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    ),
}


def _task_resources(definition: Any) -> Iterable[str]:
    if isinstance(definition, dict):
        if definition.get("Type") == "Task" and isinstance(definition.get("Resource"), str):
            yield definition["Resource"]
        for value in definition.values():
            yield from _task_resources(value)
    elif isinstance(definition, list):
        for value in definition:
            yield from _task_resources(value)


def state_machine_calls(stack: Stack, root: Path = ROOT) -> Counter[Call]:
    """(state machine, IAM action) for every Task integration of every state machine's definition."""
    calls: Counter[Call] = Counter()
    for logical_id in stack.resources_of_type("AWS::Serverless::StateMachine"):
        uri = stack.properties(logical_id).get("DefinitionUri")
        definition = json.loads((root / str(uri)).read_text(encoding="utf-8")) if uri else {}
        for resource in _task_resources(definition):
            integration = resource.removeprefix("arn:aws:states:::")
            if integration == resource:
                continue  # a Lambda ARN or a substitution: the Lambda task form, granted like lambda:invoke
            for action in INTEGRATION_ACTIONS.get(integration, (f"unmapped-integration:{integration}",)):
                calls[Call(logical_id, action)] += 1
    return calls


def state_machine_policies(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    machines = stack.resources_of_type("AWS::Serverless::StateMachine")
    found: dict[str, list[dict[str, Any]]] = {logical_id: [] for logical_id in machines}
    for logical_id, _, statement in policy_statements(stack):
        if logical_id in found:
            found[logical_id].append(statement)
    return found


# One finding per playbook family, and one acting in a member account through the member roles; each is released.
EVENTS = {
    "block-ip": "eventbridge/guardduty_ssh_brute_force",
    "contain-instance": "eventbridge/guardduty_c2_outbound",
    "revoke-credentials": "eventbridge/guardduty_iam_user_key_compromised",
    "member-account": "eventbridge/guardduty_member_c2_outbound",
    "protect-bucket": "eventbridge/guardduty_s3_bucket_anonymous_access_granted",
    "protect-bucket (malicious object)": "eventbridge/guardduty_s3_malicious_file",
    "protect-bucket (member account)": "eventbridge/guardduty_member_s3_malicious_ip_caller",
    "contain-function": "eventbridge/guardduty_lambda_crypto_mining",
    "contain-function (member)": "eventbridge/guardduty_member_lambda_c2_activity",
    "contain-database": "eventbridge/guardduty_rds_login_attempt",
    "contain-database-instance": "eventbridge/guardduty_rds_successful_brute_force",
}
EVENTS["contain-task"] = "eventbridge/guardduty_runtime_ecs_c2_fargate"


def principal_policies(engine: Engine, calls: Iterable[Call]) -> dict[str, list[dict[str, Any]]]:
    """Every function's template statements, and those of each member role seen in calls."""
    roles = {call.principal for call in calls if call.principal.startswith("arn:")}
    names = function_names(engine.stack)
    return function_policies(engine.stack, names) | member_role_policies(roles)


@dataclass(frozen=True)
class Run:
    event: str
    status: str
    released: str  # the release's status, or "" when the run made no incident to release
    calls: Counter[Call]
    policies: dict[str, list[dict[str, Any]]]


def run_event(engine: Engine, event_name: str, root: Path = ROOT) -> Run:
    """One finding run on the engine and released, with every call its handlers made."""
    event = read_event(str(root / "events" / f"{event_name}.json"))
    with CallRecorder() as recorder:
        rule = engine.matching_rule(event)
        if rule is None:
            raise ValueError(f"{event_name}: no rule matches it")
        # Approved as soon as asked: a playbook that waits by default (contain-database) must show its grants too.
        execution = engine.start(rule, event, Approvals.APPROVE)
        report = execution.output if isinstance(execution.output, dict) else {}
        released = ""
        if report.get("incident_id"):
            release = engine.release(report["incident_id"])
            released = str((release.output or {}).get("status")) if isinstance(release.output, dict) else "FAILED"
    policies = principal_policies(engine, recorder.calls)
    return Run(event_name, str(report.get("status")), released, recorder.calls, policies)


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    calls: Counter[Call] = Counter()
    policies: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for name in EVENTS.values():
        # The handlers log to stdout, as in Lambda; here only the table should reach it.
        with contextlib.redirect_stdout(io.StringIO()), Engine(ROOT / "template.yaml") as engine:
            run = run_event(engine, name)
        # Each engine names its resources afresh (IPSet ids), so a run's calls are held against its own policies.
        problems += uncovered(run.calls, run.policies)
        calls += run.calls
        policies |= run.policies
        roles = len({c.principal for c in run.calls})
        print(f"{name}: {run.status}, released {run.released}: {sum(run.calls.values())} calls by {roles} roles")
    stack = security_stack(load_template(ROOT / "template.yaml"), {})
    machine_calls = state_machine_calls(stack)
    problems += uncovered(machine_calls, state_machine_policies(stack))
    policies |= state_machine_policies(stack)
    calls += machine_calls
    print(f"state machines: {len(set(machine_calls))} (machine, action) pairs their Task states need")
    problems = sorted(set(problems))
    spare = unused(calls, policies)
    if spare:
        # Not failed on yet: a grant only another event uses (a Region, an option, a failure path) shows here too.
        print(f"{len(spare)} granted actions no recorded call used (not failed on):")
        print(table([line.split(": ", 1) for line in spare], ("role", "action")))
    if problems:
        print(table([line.split(": ", 1) for line in problems], ("role", "call")))
        print(f"{len(problems)} calls not granted")
        return 1
    print(f"every one of {len(set(calls))} recorded (role, action, resource) calls is granted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
