"""member.yaml against template.yaml: fixed role names, one trust each, the StackSet's wiring, the same permissions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from firebreak.core.members import MEMBER_ROLES
from firebreak_local import iam_check
from firebreak_local.iam_check import MEMBER_ACCOUNT, REGION, SECURITY_ACCOUNT, STACK_NAME
from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[2]
ORGANIZATION = {"OrganizationId": "o-abcdefghij", "OrganizationUnitIds": "ou-ab12-abcdefgh,ou-ab12-ijklmnop"}
# What a member account holds; the shared state (tables, topic, WAF, machines, keys, secrets) stays in the security one.
WORKLOAD_SERVICES = frozenset(
    {"ec2", "iam", "autoscaling", "elasticloadbalancing", "securityhub", "s3", "lambda", "rds", "ecs"}
)
REGION_KEYS = ("aws:RequestedRegion", "ec2:Region")
SCENARIOS = {
    "one-region": {},
    "two-regions": {"ResponseRegions": f"{REGION},eu-west-1"},
    "instance-role-sessions": {"RevokeInstanceRoleSessions": "true"},
}


def function_id(folder: str) -> str:
    return "".join(part.title() for part in folder.split("_")) + "Function"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def member() -> Template:
    return load_template(ROOT / "member.yaml")


def role_arn(logical_id: str) -> str:
    """The ARN the check's stacks give a SAM-generated function role."""
    return f"arn:aws:iam::{SECURITY_ACCOUNT}:role/{STACK_NAME}-{logical_id}"


def security_stack(template: Template, overrides: Mapping[str, str] | None = None) -> Stack:
    return iam_check.security_stack(template, overrides or {})


def stack_set_parameters(stack: Stack) -> dict[str, str]:
    """What the member-role StackSet passes to member.yaml, resolved in the security stack."""
    parameters = stack.properties("MemberRolesStackSet")["Parameters"]
    return {parameter["ParameterKey"]: parameter["ParameterValue"] for parameter in parameters}


member_stack = iam_check.member_stack


def member_roles(stack: Stack) -> dict[str, dict[str, Any]]:
    """Role name -> resolved properties of every member role."""
    roles = (stack.properties(logical_id) for logical_id in stack.resources_of_type("AWS::IAM::Role"))
    return {properties["RoleName"]: properties for properties in roles}


def function_statements(stack: Stack, function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in stack.properties(function).get("Policies") or ():
        if isinstance(policy, dict):
            found += [s for s in as_list(policy.get("Statement") or []) if isinstance(s, dict)]
    return found


def role_statements(role: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role.get("Policies") or () for s in as_list(policy["PolicyDocument"]["Statement"])]


def services(statement: Mapping[str, Any]) -> set[str]:
    return {action.split(":", 1)[0] for action in as_list(statement["Action"])}


def pins_a_region(statement: Mapping[str, Any]) -> bool:
    conditions = statement.get("Condition") or {}
    by_condition = any(key in REGION_KEYS for operands in conditions.values() for key in operands)
    by_arn = any(f":{REGION}:" in str(resource) for resource in as_list(statement["Resource"]))
    return by_condition or by_arn


def region_condition(statement: Mapping[str, Any]) -> Any:
    values = [
        v for operands in (statement.get("Condition") or {}).values() for k, v in operands.items() if k in REGION_KEYS
    ]
    return values[0] if len(values) == 1 else values or None


def canonical(statement: Mapping[str, Any], account: str, own_roles: str) -> str:
    """A statement without its Region: the account's ARNs, Regions and Firebreak's own roles written one way."""

    def resource(arn: str) -> str:
        arn = arn.replace(f":{REGION}:", ":*:").replace(f":{account}:", ":<account>:")
        arn = arn.replace(f":role/{own_roles}", ":role/<firebreak's own roles>")
        # contain-function: the stack's own functions, which no member account holds, written the same way.
        return arn.replace(f":function:{own_roles}", ":function:<firebreak's own functions>")

    conditions = {
        operator: {key: _own(value, account) for key, value in operands.items() if key not in REGION_KEYS}
        for operator, operands in (statement.get("Condition") or {}).items()
    }
    return json.dumps(
        {
            "Effect": statement["Effect"],
            "Action": sorted(as_list(statement["Action"])),
            "Resource": sorted(resource(str(r)) for r in as_list(statement["Resource"])),
            "Condition": {operator: operands for operator, operands in conditions.items() if operands},
        },
        sort_keys=True,
    )


def _own(value: Any, account: str) -> Any:
    """A condition value with the account written one way (aws:ResourceAccount where ARNs name no account)."""
    return "<account>" if value == account else value


def raw_policy_items(template: Template, function: str) -> Iterator[Any]:
    yield from template.resources[function]["Properties"].get("Policies") or ()


# --- Names and trust ------------------------------------------------------------------------------------------------


def test_member_roles_have_the_fixed_names_of_core_members(member: Template) -> None:
    # GIVEN every role member.yaml declares
    names = [r["Properties"]["RoleName"] for r in member.resources.values() if r["Type"] == "AWS::IAM::Role"]
    # THEN they are exactly the names the security account computes, one per acting function
    assert sorted(names) == sorted(MEMBER_ROLES.values())


@pytest.mark.parametrize("folder", sorted(MEMBER_ROLES))
def test_every_member_role_trusts_only_its_functions_role_within_the_organization(
    template: Template, member: Template, folder: str
) -> None:
    # GIVEN the member role of one function, as the StackSet deploys it into a member account
    security = security_stack(template, ORGANIZATION)
    role = member_roles(member_stack(member, security))[MEMBER_ROLES[folder]]

    # THEN one statement lets the security account assume it, only as that function's role, only from the
    # organization: a condition on the role's ARN, not a role-ARN principal, which breaks when the role is recreated
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{SECURITY_ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": role_arn(f"{function_id(folder)}Role")},
                "StringEquals": {"aws:PrincipalOrgID": ORGANIZATION["OrganizationId"]},
            },
        }
    ]
    assert member.raw["Parameters"][f"{function_id(folder)}RoleArn"]["Type"] == "String"


def test_the_stackset_passes_each_functions_role_and_every_parameter_member_yaml_needs(
    template: Template, member: Template
) -> None:
    # GIVEN the member-role StackSet as written
    stack_set = template.resources["MemberRolesStackSet"]
    properties = stack_set["Properties"]
    passed = {p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]}
    # THEN each function's SAM role ARN goes to its parameter, with the organization and the Regions
    for folder in MEMBER_ROLES:
        assert passed[f"{function_id(folder)}RoleArn"] == {"Fn::GetAtt": [f"{function_id(folder)}Role", "Arn"]}
    assert passed["OrganizationId"] == {"Ref": "OrganizationId"}
    assert passed["ResponseRegions"] == {"Fn::Join": [",", {"Ref": "ResponseRegions"}]}
    declared = member.raw["Parameters"]
    required = {name for name, spec in declared.items() if "Default" not in spec}
    assert required <= set(passed) <= set(declared)
    # AND it is service-managed from the delegated administrator, follows new accounts, in this Region only
    assert stack_set["Condition"] == "HasOrganization"
    assert properties["PermissionModel"] == "SERVICE_MANAGED"
    assert properties["CallAs"] == "DELEGATED_ADMIN"
    assert properties["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert properties["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert properties["TemplateURL"] == "member.yaml"
    assert properties["StackInstancesGroup"] == [
        {
            "DeploymentTargets": {"OrganizationalUnitIds": {"Ref": "OrganizationUnitIds"}},
            "Regions": [{"Ref": "AWS::Region"}],
        }
    ]


# --- Permissions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("folder", sorted(MEMBER_ROLES))
def test_each_member_role_allows_what_its_function_does_in_its_own_account_today(
    template: Template, member: Template, folder: str, scenario: str
) -> None:
    # GIVEN the security stack in an organization, and member.yaml as its StackSet deploys it
    security = security_stack(template, {**ORGANIZATION, **SCENARIOS[scenario]})
    role = member_roles(member_stack(member, security))[MEMBER_ROLES[folder]]
    # WHEN the function's workload statements (not its shared state, not the AssumeRole) and the role's are compared
    statements = function_statements(security, function_id(folder))
    mixed = [s for s in statements if services(s) & WORKLOAD_SERVICES and not services(s) <= WORKLOAD_SERVICES]
    assert not mixed, f"statements mixing workload and shared-state actions: {mixed}"
    workload = [s for s in statements if services(s) <= WORKLOAD_SERVICES]
    granted = role_statements(role)
    assert workload, f"{function_id(folder)} has no workload statement"
    # THEN they are the same statements, the ARNs in the member account and the stack's roles its member roles
    today = sorted(canonical(s, SECURITY_ACCOUNT, f"{STACK_NAME}-*") for s in workload)
    assert sorted(canonical(s, MEMBER_ACCOUNT, "firebreak-member-*") for s in granted) == today
    # AND what is held to the stack's Region today is held to the ResponseRegions, and nothing else to a Region
    regions = security.resolve({"Fn::If": ["HasResponseRegions", {"Ref": "ResponseRegions"}, REGION]})
    pinned = {canonical(s, SECURITY_ACCOUNT, f"{STACK_NAME}-*") for s in workload if pins_a_region(s)}
    for statement in granted:
        held = region_condition(statement)
        if canonical(statement, MEMBER_ACCOUNT, "firebreak-member-*") in pinned:
            assert held == regions, statement
        else:
            assert held is None, statement


def test_no_member_role_grants_a_wildcard_action_or_touches_shared_state(template: Template, member: Template) -> None:
    # GIVEN every member statement, the optional instance-role one included
    security = security_stack(template, {**ORGANIZATION, "RevokeInstanceRoleSessions": "true"})
    statements = [s for role in member_roles(member_stack(member, security)).values() for s in role_statements(role)]
    assert len(member_roles(member_stack(member, security))) == len(MEMBER_ROLES)
    # THEN no action is "*" or "<service>:*", none is a NotAction, and each is of a workload service
    actions = [action for s in statements for action in as_list(s["Action"])]
    assert not [a for a in actions if a == "*" or re.fullmatch(r"[a-z0-9-]+:\*", a)]
    assert not [s for s in statements if "NotAction" in s or "NotResource" in s]
    assert {action.split(":", 1)[0] for action in actions} <= WORKLOAD_SERVICES
    # AND every Resource names the member account (or a service that has no account in its ARN)
    arns = [str(r) for s in statements for r in as_list(s["Resource"]) if r != "*"]
    assert all(f":{MEMBER_ACCOUNT}:" in arn or ":ec2:*::snapshot/" in arn or ":s3:::" in arn for arn in arns), arns
    # AND an S3 ARN, which names no account, is held to the member account by aws:ResourceAccount
    s3 = [s for s in statements if any(":s3:::" in str(r) for r in as_list(s["Resource"]))]
    assert all(s["Condition"]["StringEquals"]["aws:ResourceAccount"] == MEMBER_ACCOUNT for s in s3), s3


# --- Defaults and organization mode of template.yaml ----------------------------------------------------------------


def test_defaults_keep_one_account_and_one_region(template: Template) -> None:
    # GIVEN the security stack with every default
    stack = security_stack(template)
    # THEN there is no StackSet, no forwarder, no Firewall Manager policy
    for kind in ("AWS::CloudFormation::StackSet", "AWS::FMS::Policy", "AWS::IAM::Role", "AWS::IAM::Policy"):
        assert not stack.resources_of_type(kind), kind
    # AND no function may assume a role or read the organization, and none is held to another Region
    for function in stack.resources_of_type("AWS::Serverless::Function"):
        for statement in function_statements(stack, function):
            assert not services(statement) & {"sts", "organizations"}, (function, statement)
            assert region_condition(statement) in (None, REGION), (function, statement)
    environment = stack.properties("ParseFindingFunction")["Environment"]["Variables"]
    assert environment["STACK_ACCOUNT_ID"] == SECURITY_ACCOUNT
    assert [environment[k] for k in ("ORGANIZATION_ID", "ALLOWED_ACCOUNT_IDS", "RESPONSE_REGIONS")] == ["", "", ""]


@pytest.mark.parametrize("function", sorted(function_id(folder) for folder in MEMBER_ROLES) + ["ParseFindingFunction"])
def test_organization_grants_are_written_only_under_has_organization(template: Template, function: str) -> None:
    # GIVEN the function's policies as written
    for item in raw_policy_items(template, function):
        # THEN an AssumeRole or Organizations grant only ever sits in a HasOrganization branch
        if isinstance(item, dict) and "Fn::If" in item:
            condition, _, otherwise = item["Fn::If"]
            if condition == "HasOrganization":
                assert otherwise == {"Ref": "AWS::NoValue"}
                continue
        assert "sts:AssumeRole" not in json.dumps(item), item
        assert "organizations:" not in json.dumps(item), item


@pytest.mark.parametrize("allowed", ["", "999999999999"])
def test_in_an_organization_each_acting_function_may_assume_only_its_member_role(
    template: Template, allowed: str
) -> None:
    # GIVEN the security stack in an organization, with or without accounts outside it
    stack = security_stack(template, {**ORGANIZATION, "AllowedAccountIds": allowed})
    for function in stack.resources_of_type("AWS::Serverless::Function"):
        assume = [s for s in function_statements(stack, function) if "sts:AssumeRole" in as_list(s["Action"])]
        folder = next((f for f in MEMBER_ROLES if function_id(f) == function), None)
        if folder is None:
            # THEN a function that does not act in member accounts may not assume anything
            assert not assume, function
            continue
        # THEN an acting one may assume its own member role in any account of the organization
        role_arn = f"arn:aws:iam::*:role/{MEMBER_ROLES[folder]}"
        expected = [
            {
                "Sid": "AssumeItsMemberRoleInTheOrganization",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": role_arn,
                "Condition": {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION["OrganizationId"]}},
            }
        ]
        # AND, only for the accounts AllowedAccountIds lists, in those accounts too
        if allowed:
            expected.append(
                {
                    "Sid": "AssumeItsMemberRoleInAllowedAccounts",
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": role_arn,
                    "Condition": {"StringEquals": {"aws:ResourceAccount": [allowed]}},
                }
            )
        assert assume == expected, function
    lookups = [s for s in function_statements(stack, "ParseFindingFunction") if "organizations" in services(s)]
    assert [s["Action"] for s in lookups] == ["organizations:DescribeAccount"]
    assert lookups[0]["Resource"] == f"arn:aws:organizations::*:account/{ORGANIZATION['OrganizationId']}/*"
    environment = stack.properties("ParseFindingFunction")["Environment"]["Variables"]
    assert environment["ORGANIZATION_ID"] == ORGANIZATION["OrganizationId"]
    assert environment["ALLOWED_ACCOUNT_IDS"] == allowed


# --- Other Regions and Firewall Manager -----------------------------------------------------------------------------


@pytest.mark.parametrize("regions", ["", REGION])
def test_no_forwarder_without_another_region(template: Template, regions: str) -> None:
    stack = security_stack(template, {"ResponseRegions": regions})
    assert "FindingForwarderStackSet" not in stack.resources
    assert not stack.resources_of_type("AWS::IAM::Role")


def test_other_regions_forward_what_the_entry_rules_answer_to_this_regions_default_bus(
    template: Template, tmp_path: Path
) -> None:
    # GIVEN the security stack answering a second Region
    stack = security_stack(template, {"ResponseRegions": f"{REGION},eu-west-1"})
    properties = stack.properties("FindingForwarderStackSet")
    assert properties["PermissionModel"] == "SELF_MANAGED"
    assert properties["StackInstancesGroup"] == [
        {"DeploymentTargets": {"Accounts": [SECURITY_ACCOUNT]}, "Regions": [REGION, "eu-west-1"]}
    ]
    body = tmp_path / "forwarder.yaml"
    body.write_text(properties["TemplateBody"], encoding="utf-8")
    forwarder = load_template(body)
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]}

    def instance(region: str) -> Stack:
        return Stack(forwarder, overrides=parameters, region=region, account_id=SECURITY_ACCOUNT)

    # WHEN its stack instances are resolved in this Region and in the other one
    home, other = instance(REGION), instance("eu-west-1")
    # THEN this Region forwards nothing (a placeholder keeps its stack valid)
    assert [r["Type"] for r in home.resources.values()] == ["AWS::CloudFormation::WaitConditionHandle"]
    # AND the other sends GuardDuty and Security Hub findings to this Region's default bus, with the forwarder role
    (rule_id,) = other.resources_of_type("AWS::Events::Rule")
    rule = other.properties(rule_id)
    assert rule["Name"] == f"{STACK_NAME}-forward-findings"
    (target,) = rule["Targets"]
    assert target["Arn"] == f"arn:aws:events:{REGION}:{SECURITY_ACCOUNT}:event-bus/default"
    assert target["RoleArn"] == role_arn("FindingForwarderRole")
    pattern = rule["EventPattern"]
    entry = stack.properties("RespondToFindingStateMachine")["Events"]
    for name in ("GuardDutyFinding", "SecurityHubFinding"):
        answered = entry[name]["Properties"]["Pattern"]
        answered = json.loads(answered) if isinstance(answered, str) else answered
        assert set(answered["source"]) <= set(pattern["source"]), name
        assert set(answered["detail-type"]) <= set(pattern["detail-type"]), name
    # AND the forwarder role may only put events on that bus, for this stack's forwarding rules
    role = stack.properties("FindingForwarderRole")
    assert role_statements(role) == [
        {
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": f"arn:aws:events:{REGION}:{SECURITY_ACCOUNT}:event-bus/default",
        }
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":rule/{STACK_NAME}-forward-findings")


@pytest.mark.parametrize(
    ("overrides", "created"),
    [
        ({"CreateFirewallManagerPolicy": "true"}, False),
        (ORGANIZATION, False),
        ({**ORGANIZATION, "CreateFirewallManagerPolicy": "true"}, True),
    ],
)
def test_firewall_manager_puts_the_block_rule_group_first_only_when_asked_in_an_organization(
    template: Template, overrides: dict[str, str], created: bool
) -> None:
    # GIVEN the security stack with or without an organization and the Firewall Manager switch
    stack = security_stack(template, overrides)
    policies = stack.resources_of_type("AWS::FMS::Policy")
    # THEN the policy exists only with both
    assert bool(policies) is created
    if not created:
        return
    (policy,) = (stack.properties(logical_id) for logical_id in policies)
    # AND it is a WAF policy over the organization's units whose first rule group is the block rule group
    assert policy["IncludeMap"] == {"ORGUNIT": ORGANIZATION["OrganizationUnitIds"].split(",")}
    assert policy["SecurityServicePolicyData"]["Type"] == "WAFV2"
    data = json.loads(policy["SecurityServicePolicyData"]["ManagedServiceData"])
    assert data["type"] == "WAFV2"
    assert [group["ruleGroupArn"] for group in data["preProcessRuleGroups"]] == [
        f"arn:aws:wafv2:{REGION}:{SECURITY_ACCOUNT}:regional/rulegroup/{STACK_NAME}-BlockRuleGroup/id"
    ]
    assert data["preProcessRuleGroups"][0]["overrideAction"] == {"type": "NONE"}
    assert data["defaultAction"] == {"type": "ALLOW"}
