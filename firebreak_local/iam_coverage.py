"""What each function was seen doing on the local engine, held against what its template policy grants.

moto evaluates no IAM, so a call the code makes and the template does not grant passes every local test. A
`CallRecorder` (a runtime guard, it never answers) notes every AWS call a handler makes, as (principal, IAM action):
the principal is the function's own role, or the member role whose session signed the call. `uncovered` then holds
each call against the Allow statements of that principal's policies: the function's `Policies` in the resolved
template, a member role's inline policies as member.yaml deployed them.

What is evaluated: Effect, Action (wildcards included), Resource where the request names it plainly (DynamoDB
tables, the topic, state machines and executions, secrets, SSM parameters, IPSets, functions, IAM users and roles, the
role an AssumeRole asks for, the EC2 instances, interfaces, groups, volumes, snapshots and ACLs a call names, and the
group or snapshot a create call makes), and Condition (`firebreak_local.conditions`), on the keys each request
carries where the engine knows them: aws:RequestedRegion, ec2:Region, aws:PrincipalArn/Account/OrgID,
aws:ResourceAccount/OrgID (from the emulated organization), aws:ResourceTag/ and ec2:/iam:ResourceTag/ (the EC2
resource's or IAM user's or role's tags in moto), aws:RequestTag/ and aws:TagKeys (an EC2 request's tags),
ec2:CreateAction on the CreateTags a tag-on-create needs, s3:prefix, iam:PolicyARN and Security Hub's Workflow.Status
path. A grant that depends on a key the engine cannot know is reported as such, never taken as granted; an explicit
Deny whose condition holds refuses.

SDK operation names are IAM action names except for the documented exceptions in `OPERATION_ACTIONS` (the Service
Authorization Reference and each service's API reference list them); a call that needs no permission maps to none.
State machines' own calls are read from their definitions instead (`INTEGRATION_ACTIONS`): the engine runs Task
integrations inside moto's interpreter, where no handler is current.

`python -m firebreak_local.iam_coverage` runs the scenarios of `EVENTS`, each on a fresh engine, and fails (exit 1)
on a call not granted, on a granted action (of any function, machine, member role or the template's own roles) that
no recorded call used and docs/iam-unused-grants.toml does not justify, and on an entry of that table that justifies
no unused grant. A new playbook's grants are covered by scenarios it adds to `EVENTS`, or justified in the table.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import re
import socket
import sys
import threading
import time
import tomllib
import unittest.mock
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Any

from moto.ec2.models import ec2_backends
from moto.iam.exceptions import NotFoundException
from moto.iam.models import get_account_id_from, iam_backends
from moto.sts.models import sts_backends

from firebreak_local import runtime
from firebreak_local.conditions import Context, evaluate
from firebreak_local.engine import Approvals, Engine, Execution
from firebreak_local.events import read_event
from firebreak_local.iam_check import (
    EVERYTHING_ON,
    REGION,
    ROOT,
    as_list,
    expand,
    policy_statements,
    table,
)
from firebreak_local.iam_scenarios import (
    again,
    in_fleet,
    in_member_account,
    other_attacker,
    then_deny,
    then_sweep_expired,
    then_sync_feeds,
    with_console_password,
    with_provider_keys,
)
from firebreak_local.organization import Organization
from firebreak_local.template import Stack

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
    context: Context = Context()  # the condition keys the request carries, as far as the engine knows them


class CallRecorder:
    """A runtime guard that records every call a handler makes and lets each through.

    organization, when given, answers aws:PrincipalOrgID and aws:ResourceOrgID; without it they are unknown.
    """

    def __init__(self, organization: Organization | None = None) -> None:
        self.calls: Counter[Call] = Counter()
        self._organization = organization
        self._lock = threading.Lock()

    def __enter__(self) -> CallRecorder:
        runtime.add_guard(self)
        return self

    def __exit__(self, *exc: object) -> None:
        runtime.remove_guard(self)

    def _org_id(self, account: str) -> str | None:
        organization = self._organization
        if organization is None:
            return None
        joined = account == organization.management_account or organization.state(account) is not None
        return organization.id if joined else ""

    def __call__(self, event_name: str, request: Any) -> None:
        function = runtime.current_function()
        if function is None or not event_name.startswith("before-send."):
            return None
        assumed = _assumed_role(request)
        principal = assumed or function.name
        account = (assumed or function.arn).split(":")[4]
        calls = request_calls(event_name, request, principal, assumed or function.role_arn, account, self._org_id)
        with self._lock:
            self.calls.update(calls)
        return None


def _region(request: Any) -> str:
    host = urllib.parse.urlsplit(str(request.url)).hostname or ""
    # The Region is a label of its own wherever it stands (ec2.<region>..., <bucket>.s3.<region>...); global
    # endpoints (iam.amazonaws.com, sts.amazonaws.com, <bucket>.s3.amazonaws.com) carry us-east-1.
    return next((part for part in host.split(".") if _REGION_LABEL.fullmatch(part)), REGION)


_REGION_LABEL = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


def request_calls(
    event_name: str,
    request: Any,
    principal: str,
    principal_arn: str,
    account: str,
    org_id: Callable[[str], str | None] = lambda _: None,
) -> list[Call]:
    """The (action, resource, condition keys) authorisations one botocore request needs."""
    actions = iam_actions(event_name)
    if not actions:
        return []
    operation = event_name.split(".")[2]
    region = _region(request)
    parameters = _parameters(request)
    base: dict[str, Any] = {"aws:RequestedRegion": region, "aws:PrincipalAccount": account}
    absent: list[str] = []
    if principal_arn:
        base["aws:PrincipalArn"] = principal_arn
    principal_org = org_id(account)
    if principal_org:
        base["aws:PrincipalOrgID"] = principal_org
    elif principal_org == "":
        absent.append("aws:PrincipalOrgID")
    request_tags = _request_tags(actions[0], parameters)
    prefixes: list[str] = []
    if request_tags is not None:
        base |= {f"aws:RequestTag/{key}": value for key, value in request_tags.items()}
        if request_tags:
            base["aws:TagKeys"] = sorted(request_tags)
        else:
            absent.append("aws:TagKeys")
        prefixes.append("aws:RequestTag/")
    base |= _service_keys(actions[0], parameters, region)
    absent += [key for key in _SERVICE_KEYS.get(actions[0], ()) if key not in base]
    resources = request_resources(event_name, request, account)
    found: list[Call] = []
    for action in actions:
        # Only the call's own action acts on the named resource; what it also needs (a topic's key) does not.
        own = action.split(":")[0] == actions[0].split(":")[0]
        for resource in resources if own and resources else [""]:
            keys, known = dict(base), list(prefixes)
            resource_account = (
                resource.split(":")[4] if resource.count(":") >= 5 and resource.split(":")[4] else account
            )
            keys["aws:ResourceAccount"] = resource_account
            resource_org = org_id(resource_account)
            missing = list(absent)
            if resource_org:
                keys["aws:ResourceOrgID"] = resource_org
            elif resource_org == "":
                missing.append("aws:ResourceOrgID")
            tags = _resource_tags(resource, region, account)
            if tags is not None:
                # A service's own ResourceTag key (ec2:, iam:) is the global one under another name.
                service_key = f"{resource.split(':')[2]}:ResourceTag/"
                keys |= {f"{prefix}{k}": v for prefix in ("aws:ResourceTag/", service_key) for k, v in tags.items()}
                known += ["aws:ResourceTag/", service_key]
            context = Context.of(keys, tuple(missing), tuple(known))
            found.append(Call(principal, action, resource, context))
    created = _EC2_CREATES.get(operation) if actions[0].startswith("ec2:") else None
    if created and request_tags:
        # Tagging on create is authorised as ec2:CreateTags on the new resource, with ec2:CreateAction naming the
        # create call (EC2 User Guide, "Grant permission to tag Amazon EC2 resources during creation").
        keys = base | {"ec2:CreateAction": operation, "aws:ResourceAccount": account}
        arn = _ec2_arn(region, account, created, "*")
        found.append(Call(principal, "ec2:CreateTags", arn, Context.of(keys, tuple(absent), tuple(prefixes))))
    return found


# Condition keys Firebreak's statements use that the request carries by the service's own rules, set from the request.
_SERVICE_KEYS: dict[str, tuple[str, ...]] = {
    "s3:ListBucket": ("s3:prefix",),
    "securityhub:BatchUpdateFindings": ("securityhub:ASFFSyntaxPath/Workflow.Status",),
}


def _service_keys(action: str, parameters: Mapping[str, Any], region: str) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if action.startswith("ec2:"):
        keys["ec2:Region"] = region
    if action.startswith("iam:") and parameters.get("PolicyArn"):
        keys["iam:PolicyARN"] = parameters["PolicyArn"]
    if action == "s3:ListBucket" and parameters.get("prefix"):
        keys["s3:prefix"] = parameters["prefix"]
    if action == "securityhub:BatchUpdateFindings":
        status = (
            (parameters.get("Workflow") or {}).get("Status") if isinstance(parameters.get("Workflow"), dict) else None
        )
        if status:
            keys["securityhub:ASFFSyntaxPath/Workflow.Status"] = status
    return keys


def _request_tags(action: str, parameters: Mapping[str, Any]) -> dict[str, str] | None:
    """The tags an EC2 request sets (Tag.N, TagSpecification.N.Tag.M); None where the engine does not read them."""
    if not action.startswith("ec2:"):
        return None
    tags: dict[str, str] = {}
    for name, value in parameters.items():
        match = _TAG_KEY.fullmatch(name)
        if match:
            tags[str(value)] = str(parameters.get(f"{match.group(1)}.Value", ""))
    return tags


_TAG_KEY = re.compile(r"((?:TagSpecification\.\d+\.)?Tag\.\d+)\.Key")
_EC2_TYPES = {
    "i-": "instance",
    "eni-": "network-interface",
    "sg-": "security-group",
    "vol-": "volume",
    "snap-": "snapshot",
    "acl-": "network-acl",
    "vpc-": "vpc",
    "subnet-": "subnet",
}
_EC2_ID_PARAMETER = re.compile(
    r"(?:InstanceId|NetworkInterfaceId|GroupId|VolumeId|SnapshotId|NetworkAclId|VpcId|ResourceId|Resources?)(?:\.\d+)?"
)
# EC2 create calls whose new resource a statement can name (by type, its id not yet drawn).
_EC2_CREATES = {"CreateSecurityGroup": "security-group", "CreateSnapshot": "snapshot"}


def _ec2_arn(region: str, account: str, resource_type: str, resource_id: str) -> str:
    # Snapshots' ARNs carry no account (Service Authorization Reference, EC2 resource types).
    owner = "" if resource_type == "snapshot" else account
    return f"arn:aws:ec2:{region}:{owner}:{resource_type}/{resource_id}"


def _ec2_resources(action: str, parameters: Mapping[str, Any], region: str, account: str) -> list[str]:
    found = expand(action)
    if not found or not found[0].resource_types:
        return []  # an action without resource types (Describe*) is authorised on "*" alone
    arns = []
    for name, value in parameters.items():
        if _EC2_ID_PARAMETER.fullmatch(name):
            kind = next((t for prefix, t in _EC2_TYPES.items() if str(value).startswith(prefix)), None)
            if kind:
                arns.append(_ec2_arn(region, account, kind, str(value)))
    created = _EC2_CREATES.get(action.split(":", 1)[1])
    if created:
        arns.append(_ec2_arn(region, account, created, "*"))
    return sorted(set(arns))


def _resource_tags(resource: str, region: str, account: str) -> dict[str, str] | None:
    """The tags moto holds for an existing EC2 resource, IAM user or IAM role named by ARN; None for anything else."""
    parts = resource.split(":")
    if len(parts) < 6 or "/" not in parts[5] or parts[5].endswith("/*"):
        return None
    kind, name = parts[5].split("/", 1)
    if parts[2] == "ec2":
        return dict(ec2_backends[parts[4] or account][region].tags.get(name, {}))
    if parts[2] == "iam" and kind in ("role", "user"):
        iam = iam_backends[parts[4]]["global"]
        try:
            holder = iam.get_role(name) if kind == "role" else iam.get_user(name)
        except NotFoundException:
            return None
        tags = holder.tags or []  # moto holds None for a user created without tags
        pairs = tags.values() if isinstance(tags, dict) else tags
        return {str(tag["Key"]): str(tag["Value"]) for tag in pairs}
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
    region = _region(request)
    parameters = _parameters(request)
    if service == "ec2":
        return _ec2_resources(f"ec2:{operation}", parameters, region, account)
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


def allowed(
    statements: Iterable[Mapping[str, Any]], action: str, resource: str = "", context: Context | None = None
) -> bool:
    """Whether the statements allow the action on the resource ("" when unknown: any): an Allow names both and no
    Deny does. With a context, a statement counts only where its Condition holds (see `decide`); without one,
    Conditions are not looked at (for picking statements by what they name)."""
    statements = list(statements)
    if context is not None:
        return decide(statements, Call("", action, resource, context)).granted is True
    if any(s.get("Effect") == "Deny" and _names(s, action, resource) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _names(s, action, resource) for s in statements)


@dataclass(frozen=True)
class Decision:
    granted: bool | None  # None: it depends on condition keys the engine cannot know (in `why`)
    why: str = ""


def decide(statements: Iterable[Mapping[str, Any]], call: Call) -> Decision:
    """IAM's answer for one call: an explicit Deny whose condition holds refuses; else an Allow whose condition holds
    grants. Conditions are evaluated on the keys the call carries (`firebreak_local.conditions`)."""
    named = [s for s in statements if _names(s, call.action, call.resource)]
    verdicts = [(s.get("Effect"), evaluate(s.get("Condition"), call.context)) for s in named]
    if any(effect == "Deny" and v.holds for effect, v in verdicts):
        return Decision(False, "an explicit Deny applies")
    deny_unknown = sorted({k for effect, v in verdicts if effect == "Deny" and v.holds is None for k in v.unknown})
    allows = [v for effect, v in verdicts if effect == "Allow"]
    if any(v.holds for v in allows):
        if deny_unknown:
            return Decision(None, f"a Deny's condition on {', '.join(deny_unknown)}, which the engine cannot know")
        return Decision(True)
    unknown = sorted({k for v in allows if v.holds is None for k in v.unknown})
    if unknown:
        return Decision(None, f"its Allow's condition on {', '.join(unknown)}, which the engine cannot know")
    if allows:
        return Decision(False, "the condition of every statement that allows it is false")
    return Decision(False)


def uncovered(calls: Iterable[Call], policies: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[str]:
    """One line for each call its principal's policies do not allow, or whose action IAM does not know."""
    problems = []
    for call in sorted(set(calls), key=lambda c: (c.principal, c.action, c.resource)):
        on = f" on {call.resource}" if call.resource else ""
        if not expand(call.action):
            problems.append(f"{call.principal}: {call.action} is no IAM action (add it to OPERATION_ACTIONS)")
        elif call.principal not in policies:
            problems.append(f"{call.principal}: {call.action} made by a principal with no known policy")
        else:
            decision = decide(policies[call.principal], call)
            if decision.granted is False:
                why = f": {decision.why}" if decision.why else ""
                problems.append(f"{call.principal}: {call.action}{on} is not granted{why}")
    return sorted(set(problems))


def undecided(calls: Iterable[Call], policies: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[str]:
    """One line for each call whose grant depends on a condition key the engine cannot know (reported, not assumed)."""
    lines = []
    for call in set(calls):
        if call.principal in policies and expand(call.action):
            decision = decide(policies[call.principal], call)
            if decision.granted is None:
                lines.append(f"{call.principal}: {call.action} depends on {decision.why}")
    return sorted(set(lines))


def role_label(principal: str) -> str:
    """How the justification table names a principal: a function or machine by logical id, a role by its name."""
    if principal.startswith("arn:"):
        return principal.rsplit("/", 1)[-1]
    return principal.removeprefix("firebreak-")


def grants(policies: Mapping[str, Iterable[Mapping[str, Any]]]) -> set[tuple[str, str]]:
    """(role, action as written) for every Allow of every principal."""
    return {
        (role_label(principal), str(action))
        for principal, statements in policies.items()
        for statement in statements
        if statement.get("Effect") == "Allow"
        for action in as_list(statement.get("Action"))
    }


def unused(calls: Iterable[Call], granted: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (role, action) grants (see `grants`) that no recorded call of that role used."""
    made: dict[str, set[str]] = {}
    for call in calls:
        made.setdefault(role_label(call.principal), set()).add(call.action.lower())
    return sorted(
        (role, pattern)
        for role, pattern in set(granted)
        if not any(fnmatchcase(action, pattern.lower()) for action in made.get(role, ()))
    )


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


def service_role_policies(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """The identity policies of the template's own roles and managed policies: AWS services (EventBridge,
    CloudFormation StackSets) and people use them, never Firebreak's code, so only the justification table covers
    them."""
    kinds = ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy")
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, label, statement in policy_statements(stack):
        if stack.resources[logical_id]["Type"] in kinds and not label.startswith("AssumeRolePolicyDocument"):
            found.setdefault(logical_id, []).append(statement)
    return found


# --- the coverage runs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One coverage run on a fresh engine: a finding (or none), the stack's parameters, and what else happens.

    prepare seeds the accounts before the finding runs and returns the event to deliver; then runs after it (answers
    an approval, runs a schedule), before the incident is released.
    """

    event: str = ""  # events/<name>.json, delivered to the rule it matches
    overrides: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[Engine, dict[str, Any]], dict[str, Any]] | None = None
    then: Callable[[Engine, Execution | None], None] | None = None
    approvals: Approvals = Approvals.REPORT
    release: bool = True


def _as_scenario(scenario: str | Scenario) -> Scenario:
    return Scenario(event=scenario) if isinstance(scenario, str) else scenario


OTHER_REGIONS = f"{REGION},eu-west-1"
# Member findings reach the stack from a Region it answers: eu-west-1 is one of ResponseRegions, as the member roles'
# aws:RequestedRegion conditions then allow.
MEMBER = {"ResponseRegions": OTHER_REGIONS}
DETECTOR = "12abc34d567e8fa901bc2d34e56789f0"
# A Low finding that turned access logging off runs only when named; the task is stopped once isolated.
LOGGING = {"AlwaysRespondTypes": "Stealth:S3/ServerAccessLoggingDisabled"}
STOP_TASK = {"StopTaskAfterIsolation": "true"}
# What runs to exercise the grants: one finding per playbook family, each option's path, the member account's roles,
# and the schedules' runs; each incident is released. A new playbook adds the scenarios that use its grants here (a
# plain event name, or a Scenario); a grant no local run can reach goes to docs/iam-unused-grants.toml with why.
EVENTS: dict[str, str | Scenario] = {
    "block-ip": "eventbridge/guardduty_ssh_brute_force",
    "contain-instance": "eventbridge/guardduty_c2_outbound",
    "revoke-credentials": "eventbridge/guardduty_iam_user_key_compromised",
    "member-account": Scenario("eventbridge/guardduty_member_c2_outbound", MEMBER),
    "everything-on": Scenario("eventbridge/guardduty_ssh_brute_force", {**EVERYTHING_ON, "NotifyOnStart": "true"}),
    "security-hub-action": Scenario("eventbridge/securityhub_custom_action", EVERYTHING_ON),
    "fleet": Scenario("eventbridge/guardduty_c2_outbound", {"RevokeInstanceRoleSessions": "true"}, prepare=in_fleet),
    "member-fleet": Scenario(
        "eventbridge/guardduty_member_c2_outbound", {**MEMBER, "RevokeInstanceRoleSessions": "true"}, prepare=in_fleet
    ),
    "console-password": Scenario(
        "eventbridge/guardduty_iam_user_key_compromised", {"DeleteLoginProfile": "true"}, with_console_password
    ),
    "member-credentials": Scenario(
        "eventbridge/guardduty_member_iam_user_key_compromised",
        {**MEMBER, "DeleteLoginProfile": "true"},
        with_console_password,
    ),
    "role-sessions": "eventbridge/guardduty_access_key_malicious_ip",
    "member-role-sessions": Scenario("eventbridge/guardduty_access_key_malicious_ip", MEMBER, in_member_account),
    "network-acl": Scenario("eventbridge/guardduty_ssh_brute_force", {"NaclBlocking": "true"}),
    "member-network-acl": Scenario("eventbridge/guardduty_member_ssh_brute_force", {**MEMBER, "NaclBlocking": "true"}),
    "sweep": Scenario(
        "eventbridge/guardduty_ssh_brute_force",
        {**MEMBER, "NaclBlocking": "true"},
        then=then_sweep_expired,
        release=False,
    ),
    "enrichment": Scenario(
        "eventbridge/guardduty_ssh_brute_force", {"ShareAddressesWithThirdParties": "true"}, with_provider_keys
    ),
    "approval": Scenario("eventbridge/guardduty_ssh_brute_force_approval_required", approvals=Approvals.APPROVE),
    "approval-denied": Scenario(
        "eventbridge/guardduty_ssh_brute_force_approval_required", then=then_deny, release=False
    ),
    "circuit-breaker": Scenario(
        "eventbridge/guardduty_ssh_brute_force",
        {"MaxBlockedAddressesPerHour": "1"},
        then=again("eventbridge/guardduty_ssh_brute_force", other_attacker, release=False),
    ),
    # A second incident on what the first already changed: its release puts the first one's state back.
    "network-acl-full": Scenario(
        "eventbridge/guardduty_ssh_brute_force",
        {"NaclBlocking": "true", "NaclRuleRange": "71-71"},
        then=again("eventbridge/guardduty_ssh_brute_force", other_attacker),
    ),
    "member-network-acl-full": Scenario(
        "eventbridge/guardduty_member_ssh_brute_force",
        {**MEMBER, "NaclBlocking": "true", "NaclRuleRange": "71-71"},
        then=again("eventbridge/guardduty_member_ssh_brute_force", other_attacker),
    ),
    "contained-twice": Scenario("eventbridge/guardduty_c2_outbound", then=again("eventbridge/guardduty_c2_outbound")),
    "member-contained-twice": Scenario(
        "eventbridge/guardduty_member_c2_outbound", MEMBER, then=again("eventbridge/guardduty_member_c2_outbound")
    ),
    "revoked-twice": Scenario(
        "eventbridge/guardduty_iam_user_key_compromised", then=again("eventbridge/guardduty_iam_user_key_compromised")
    ),
    "member-revoked-twice": Scenario(
        "eventbridge/guardduty_member_iam_user_key_compromised",
        MEMBER,
        then=again("eventbridge/guardduty_member_iam_user_key_compromised"),
    ),
    "feeds": Scenario(overrides={"ThreatIntelSetDetectorId": DETECTOR}, then=then_sync_feeds),
    "protect-bucket": "eventbridge/guardduty_s3_bucket_anonymous_access_granted",
    "protect-bucket (malicious object)": "eventbridge/guardduty_s3_malicious_file",
    "protect-bucket (member account)": Scenario("eventbridge/guardduty_member_s3_malicious_ip_caller", MEMBER),
    "contain-function": "eventbridge/guardduty_lambda_crypto_mining",
    "contain-function (member)": Scenario("eventbridge/guardduty_member_lambda_c2_activity", MEMBER),
    # contain-database waits for a person by default: approved as soon as asked, so its grants show too.
    "contain-database": Scenario("eventbridge/guardduty_rds_login_attempt", approvals=Approvals.APPROVE),
    "protect-bucket (access logging)": Scenario("eventbridge/guardduty_s3_server_access_logging_disabled", LOGGING),
    "protect-bucket (member access logging)": Scenario(
        "eventbridge/guardduty_s3_server_access_logging_disabled", {**MEMBER, **LOGGING}, in_member_account
    ),
    "contain-task": Scenario("eventbridge/guardduty_runtime_ecs_c2_fargate", STOP_TASK),
    "contain-task (member)": Scenario(
        "eventbridge/guardduty_runtime_ecs_c2_fargate", {**MEMBER, **STOP_TASK}, in_member_account
    ),
    "contain-database (member)": Scenario(
        "eventbridge/guardduty_rds_login_attempt", MEMBER, in_member_account, approvals=Approvals.APPROVE
    ),
    "contain-database-instance (member)": Scenario(
        "eventbridge/guardduty_rds_successful_brute_force", MEMBER, in_member_account, approvals=Approvals.APPROVE
    ),
    "contain-database-instance": Scenario(
        "eventbridge/guardduty_rds_successful_brute_force", approvals=Approvals.APPROVE
    ),
}


def principal_policies(engine: Engine, calls: Iterable[Call]) -> dict[str, list[dict[str, Any]]]:
    """Every function's template statements, and those of every member role deployed or seen in calls."""
    roles = {call.principal for call in calls if call.principal.startswith("arn:")}
    roles |= {
        role if role.startswith("arn:") else f"arn:aws:iam::{account}:role/{role}"
        for account in engine.member_accounts()
        for role in engine.member_roles(account)
    }
    names = function_names(engine.stack)
    return function_policies(engine.stack, names) | member_role_policies(roles)


@dataclass(frozen=True)
class Run:
    event: str
    status: str
    released: str  # the release's status, or "" when the run made no incident to release
    calls: Counter[Call]
    policies: dict[str, list[dict[str, Any]]]


def run_event(engine: Engine, scenario: str | Scenario, root: Path = ROOT) -> Run:
    """One scenario run on the engine (its overrides are the engine's) and released, with every call its handlers
    made, and its state machines' Task integrations."""
    scenario = _as_scenario(scenario)
    with CallRecorder(engine.organization) as recorder:
        report: dict[str, Any] = {}
        execution: Execution | None = None
        if scenario.event:
            event = read_event(str(root / "events" / f"{scenario.event}.json"))
            if scenario.prepare is not None:
                event = scenario.prepare(engine, event)
            rule = engine.matching_rule(event)
            if rule is None:
                raise ValueError(f"{scenario.event}: no rule matches it")
            execution = engine.start(rule, event, scenario.approvals)
            report = execution.output if isinstance(execution.output, dict) else json.loads(execution.cause or "{}")
        if scenario.then is not None:
            scenario.then(engine, execution)
        released = ""
        if scenario.release and report.get("incident_id"):
            release = engine.release(report["incident_id"])
            released = str((release.output or {}).get("status")) if isinstance(release.output, dict) else "FAILED"
    calls = recorder.calls + state_machine_calls(engine.stack, root)
    policies = principal_policies(engine, calls) | state_machine_policies(engine.stack)
    policies |= service_role_policies(engine.stack)
    return Run(scenario.event or "(no finding)", str(report.get("status") or "no incident"), released, calls, policies)


@contextlib.contextmanager
def _pools_carry_the_handler() -> Iterator[None]:
    """Work a handler hands to a thread pool (enrichment asks its providers at once) runs as that handler, so its
    calls are recorded as the function's; the engine leaves threads a handler starts unattributed."""
    original = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return original(self, contextvars.copy_context().run, fn, *args, **kwargs)

    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ThreadPoolExecutor.submit = original  # type: ignore[method-assign]


def _no_resolver(address: str) -> tuple[str, list[str], list[str]]:
    raise socket.herror(1, "Unknown host")  # the coverage run asks no DNS server


def run_scenario(scenario: str | Scenario, root: Path = ROOT) -> Run:
    """run_event on a fresh engine with the scenario's parameter overrides."""
    scenario = _as_scenario(scenario)
    with contextlib.ExitStack() as stack:
        # The handlers log to stdout, as in Lambda; here only the table should reach it.
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(_pools_carry_the_handler())
        stack.enter_context(unittest.mock.patch.object(socket, "gethostbyaddr", _no_resolver))
        engine = stack.enter_context(Engine(root / "template.yaml", scenario.overrides))
        return run_event(engine, scenario, root)


# --- unused grants and their justifications -----------------------------------------------------------------------

JUSTIFIED = ROOT / "docs" / "iam-unused-grants.toml"
# region: only another Region reaches it; option: a parameter value no run sets; failure-path: only when AWS refuses
# or fails; state: only when the account already holds something no run sets up; moto-gap: moto cannot answer it;
# not-code: an AWS service or a person uses it, never Firebreak's code.
REASONS = frozenset({"region", "option", "failure-path", "state", "moto-gap", "not-code"})


@dataclass(frozen=True)
class Justification:
    """Why no local run uses a grant: roles (an fnmatch pattern over role labels), an action (a pattern over actions
    as the policies write them), the kind of reason (REASONS) and the reason itself."""

    roles: str
    action: str
    reason: str
    why: str

    def covers(self, role: str, action: str) -> bool:
        """Whether it justifies that grant: roles and action as fnmatch patterns, case aside."""
        return fnmatchcase(role.lower(), self.roles.lower()) and fnmatchcase(action.lower(), self.action.lower())


def justifications(path: Path = JUSTIFIED) -> list[Justification]:
    """The table's entries, one per (roles, action); ValueError on an entry without a known reason or a why."""
    found = []
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("grant", []):
        if entry.get("reason") not in REASONS or not str(entry.get("why", "")).strip():
            raise ValueError(f"{path.name}: {entry.get('roles')}: needs a reason of {sorted(REASONS)} and a why")
        found += [Justification(entry["roles"], a, entry["reason"], entry["why"]) for a in as_list(entry["actions"])]
    return found


def unjustified(spare: Iterable[tuple[str, str]], justified: Iterable[Justification]) -> list[tuple[str, str]]:
    justified = list(justified)
    return [(role, action) for role, action in spare if not any(j.covers(role, action) for j in justified)]


def stale(spare: Iterable[tuple[str, str]], justified: Iterable[Justification]) -> list[Justification]:
    """Entries that justify no unused grant: the grant is used now, or gone."""
    spare = list(spare)
    return [j for j in justified if not any(j.covers(role, action) for role, action in spare)]


def per_role(
    calls: Iterable[Call], granted: Iterable[tuple[str, str]], spare: Iterable[tuple[str, str]]
) -> list[tuple[str, str, str, str, str]]:
    """Per role: its distinct recorded calls, its grants, how many of them were used, and how many not."""
    made = Counter(role_label(p) for p, _, _ in {(c.principal, c.action, c.resource) for c in calls})
    grants_of, spare_of = Counter(role for role, _ in granted), Counter(role for role, _ in spare)
    return [
        (role, str(made[role]), str(grants_of[role]), str(grants_of[role] - spare_of[role]), str(spare_of[role]))
        for role in sorted(set(made) | set(grants_of))
    ]


def check(runs: Iterable[Run], justified: Sequence[Justification], out: IO[str]) -> int:
    """Print what the runs show and return how many failures: calls not granted, unused grants the table does not
    justify, and entries of the table that justify no unused grant."""
    runs = list(runs)
    calls: Counter[Call] = Counter()
    every_grant: set[tuple[str, str]] = set()
    problems: set[str] = set()
    depends: set[str] = set()
    for run in runs:
        # Each engine names its resources afresh (IPSet ids), so a run's calls are held against its own policies.
        problems |= set(uncovered(run.calls, run.policies))
        depends |= set(undecided(run.calls, run.policies))
        calls += run.calls
        every_grant |= grants(run.policies)
    spare = unused(calls, every_grant)
    distinct = len({(c.principal, c.action, c.resource) for c in calls})
    print(
        f"{distinct} recorded (role, action, resource) calls; {len(every_grant)} grants: "
        f"{len(every_grant) - len(spare)} used, {len(spare)} unused",
        file=out,
    )
    print(table(per_role(calls, every_grant, spare), ("role", "calls", "grants", "used", "unused")), file=out)
    if depends:
        print(f"{len(depends)} calls granted only under condition keys the engine cannot know:", file=out)
        print(table([line.split(": ", 1) for line in sorted(depends)], ("role", "call")), file=out)
    failures = 0
    missing = unjustified(spare, justified)
    if missing:
        print(f"{len(missing)} granted actions no recorded call used and {JUSTIFIED.name} does not justify:", file=out)
        print(table(missing, ("role", "action")), file=out)
        failures += len(missing)
    old = stale(spare, justified)
    if old:
        print(f"{len(old)} entries of {JUSTIFIED.name} that justify no unused grant (used now, or gone):", file=out)
        print(table([(j.roles, j.action) for j in old], ("roles", "action")), file=out)
        failures += len(old)
    if problems:
        print(table([line.split(": ", 1) for line in sorted(problems)], ("role", "call")), file=out)
        print(f"{len(problems)} calls not granted", file=out)
        failures += len(problems)
    if not failures:
        print(
            f"every one of {distinct} recorded calls is granted; of {len(every_grant)} grants "
            f"{len(every_grant) - len(spare)} are used and {len(spare)} justified in {JUSTIFIED.name}",
            file=out,
        )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    started = time.perf_counter()
    runs = []
    for name, scenario in EVENTS.items():
        run = run_scenario(scenario)
        runs.append(run)
        roles = len({c.principal for c in run.calls})
        released = f", released {run.released}" if run.released else ""
        print(f"{name}: {run.event}: {run.status}{released}: {sum(run.calls.values())} calls by {roles} roles")
    print(f"{len(runs)} scenarios in {time.perf_counter() - started:.0f} s")
    return 1 if check(runs, justifications(), sys.stdout) else 0


if __name__ == "__main__":
    sys.exit(main())
