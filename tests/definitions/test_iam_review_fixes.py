"""What a real account would refuse although moto grants it: the review's defects, each held by a test.

Every action, ARN and condition key of both templates is held against IAM's service authorization data by
`firebreak_local/iam_check.py` (`make iam-check`, tests/definitions/test_iam_check.py), which flags the review's
kinds of defect by itself: an action without resource types granted on named resources, an ARN of a type the action
does not have, a condition key no action of the statement carries. The tests here pin each fix's exact shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from firebreak_local import iam_check
from firebreak_local.iam_check import EVERYTHING_ON, as_list
from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
OTHER_REGIONS = {"ResponseRegions": EVERYTHING_ON["ResponseRegions"]}


def security_stack(template: Template, overrides: Mapping[str, str] | None = None) -> Stack:
    return iam_check.security_stack(template, overrides or {})


def all_statements(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    return [(logical_id, statement) for logical_id, _, statement in iam_check.policy_statements(stack)]


def function_statements(stack: Stack, function: str) -> list[dict[str, Any]]:
    return [statement for logical_id, statement in all_statements(stack) if logical_id == function]


def arn(logical_id: str, attribute: str = "Arn") -> Any:
    """What the check's stacks answer for a resource's attribute (its ARN in the security account)."""
    return security_stack(load_template(ROOT / "template.yaml")).get_att(logical_id, attribute)


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def member() -> Template:
    return load_template(ROOT / "member.yaml")


def scenario_stacks(template: Template, member: Template) -> Iterator[Stack]:
    del template, member  # the check's own scenarios: defaults, an organization, every option on, and member.yaml
    for _, stack in iam_check.scenario_stacks(ROOT):
        yield stack


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
            "Resource": arn("FeedBucket"),
            "Condition": {"StringLike": {"s3:prefix": "published/*"}},
        }
    ]


# --- Other Regions' findings --------------------------------------------------------------------------------------

# What acts on a finding's workload, in the finding's Region; everything else keeps to the stack's shared state.
WORKLOAD_FUNCTIONS = (
    "IsolateInstanceFunction",
    "PreserveEvidenceFunction",
    "BlockInNetworkAclFunction",
    "ReleaseIncidentFunction",
    "NotifyRespondersFunction",
)
WORKLOAD_SERVICES = {"ec2", "autoscaling", "elasticloadbalancing", "securityhub"}
SHARED_SERVICES = {"dynamodb", "sns", "kms", "wafv2", "states", "secretsmanager", "ssm", "guardduty", "events", "s3"}
REGION_KEYS = ("aws:RequestedRegion", "ec2:Region")
# protect-bucket and its release act on the workload's buckets: S3 ARNs name no Region, so a condition holds them.
WORKLOAD_BUCKET_FUNCTIONS = frozenset({"ProtectBucketFunction", "ReleaseIncidentFunction"})
WORKLOAD_FUNCTIONS += ("ProtectBucketFunction",)


def services(statement: Mapping[str, Any]) -> set[str]:
    return {str(action).split(":", 1)[0] for action in as_list(statement["Action"])}


def held_regions(statement: Mapping[str, Any]) -> list[Any]:
    return [
        value
        for operator, operands in (statement.get("Condition") or {}).items()
        if operator.startswith("StringEquals")
        for key, value in operands.items()
        if key in REGION_KEYS
    ]


@pytest.mark.parametrize("regions", ["", OTHER_REGIONS["ResponseRegions"]])
@pytest.mark.parametrize("function", WORKLOAD_FUNCTIONS)
def test_workload_grants_allow_every_response_region(template: Template, function: str, regions: str) -> None:
    # GIVEN the function's workload statements in a stack answering these Regions (Security Hub on for write-back)
    stack = security_stack(template, {"ResponseRegions": regions, "SecurityHubEnabled": "true"})
    acting_on = WORKLOAD_SERVICES | ({"s3"} if function in WORKLOAD_BUCKET_FUNCTIONS else set())
    workload = [s for s in function_statements(stack, function) if services(s) <= acting_on]
    assert workload, function
    expected = regions.split(",") if regions else REGION
    for statement in workload:
        # THEN none is pinned to the stack's Region by its ARNs, and exactly one condition holds it to the Regions
        # Firebreak answers: the client acts in the finding's Region, which the ARN's Region must allow
        assert not [r for r in as_list(statement["Resource"]) if f":{REGION}:" in str(r)], statement
        assert held_regions(statement) == [expected], statement


def test_shared_state_stays_in_the_stacks_region(template: Template) -> None:
    # GIVEN the stack answering two Regions, every option on
    stack = security_stack(template, EVERYTHING_ON)
    serverless = {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}
    for where, statement in all_statements(stack):
        # (the finding forwarders' roles manage the forwarding rule in the other Regions, by design)
        if stack.resources[where]["Type"] not in serverless or not services(statement) & SHARED_SERVICES:
            continue
        if where in WORKLOAD_BUCKET_FUNCTIONS and services(statement) <= {"s3"}:
            continue
        # THEN tables, topic, keys, block lists, machines, secrets and parameters are named in this Region only
        arns = [str(r) for r in as_list(statement["Resource"]) if r != "*"]
        assert not [arn for arn in arns if re.match(r"^arn:aws:[a-z0-9-]+:\*:", arn)], (where, statement)
        assert held_regions(statement) in ([], [REGION]), (where, statement)


# --- Release: the same guards as the steps it undoes ------------------------------------------------------------

EC2_INSTANCE_WRITES = {
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:CreateTags",
    "ec2:DeleteTags",
}
INSTANCE_ARN = re.compile(r"^arn:aws:ec2:[^:]*:[^:]*:instance/")
NACL_WRITES = {"ec2:CreateNetworkAclEntry", "ec2:ReplaceNetworkAclEntry", "ec2:DeleteNetworkAclEntry"}


def instance_and_acl_statements(template: Template, member: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for stack in scenario_stacks(template, member):
        yield from all_statements(stack)


def test_no_grant_writes_an_exempt_instance(template: Template, member: Template) -> None:
    # GIVEN every Allow that writes an instance, in the security account and the member roles
    for where, statement in instance_and_acl_statements(template, member):
        writes_instances = set(as_list(statement["Action"])) & EC2_INSTANCE_WRITES and any(
            INSTANCE_ARN.match(str(r)) for r in as_list(statement["Resource"])
        )
        if statement["Effect"] != "Allow" or not writes_instances:
            continue
        # THEN it carries the firebreak:exempt condition isolation and evidence carry, release's included
        assert statement["Condition"].get("StringNotEqualsIgnoreCase") == {
            "aws:ResourceTag/firebreak:exempt": "true"
        }, (
            where,
            statement,
        )


def test_every_network_acl_write_is_held_to_its_regions_by_ec2_region(template: Template, member: Template) -> None:
    # GIVEN every statement that writes network ACL entries, release's included
    found = set()
    for where, statement in instance_and_acl_statements(template, member):
        if not set(as_list(statement["Action"])) & NACL_WRITES:
            continue
        found.add(where)
        # THEN the blocking roles' ec2:Region condition holds it, and nothing else
        assert list(statement["Condition"]) == ["StringEquals"], (where, statement)
        assert list(statement["Condition"]["StringEquals"]) == ["ec2:Region"], (where, statement)
    assert {"ReleaseIncidentFunction", "ReleaseIncidentMemberRole", "BlockInNetworkAclFunction"} <= found


# --- Deploys that fail: Security Hub --------------------------------------------------------------------------------


def test_security_hub_is_off_unless_the_deployer_says_it_is_enabled(template: Template) -> None:
    parameter = template.body["Parameters"]["SecurityHubEnabled"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    assert "Security Hub" in parameter["Description"]


@pytest.mark.parametrize("automation_rules", ["true", "false"])
def test_without_security_hub_the_stack_creates_nothing_of_it(template: Template, automation_rules: str) -> None:
    # GIVEN the stack with Security Hub off (even if automation rules are asked for; a template rule refuses that)
    stack = security_stack(
        template, {**EVERYTHING_ON, "SecurityHubEnabled": "false", "CreateAutomationRules": automation_rules}
    )
    # THEN no Security Hub resource exists, so creation cannot fail where Security Hub is not enabled
    assert not [r for r in stack.resources.values() if r["Type"].startswith("AWS::SecurityHub::")]
    # AND nothing may write to Security Hub
    assert not [s for _, s in all_statements(stack) if "securityhub" in services(s)]
    # AND no rule needs the action target: the custom-action rule names its ARN, which no event carries without it
    events = stack.properties("RespondToFindingStateMachine")["Events"]
    assert events["SecurityHubCustomAction"]["Properties"]["Pattern"]["resources"] == [
        f"arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/FirebreakRespond"
    ]


def test_with_security_hub_the_custom_action_and_the_write_back_exist(template: Template) -> None:
    # GIVEN the stack with Security Hub on
    stack = security_stack(template, {"SecurityHubEnabled": "true"})
    # THEN the action target exists and the custom-action rule names exactly its ARN
    target = stack.properties("RespondActionTarget")
    events = stack.properties("RespondToFindingStateMachine")["Events"]
    assert events["SecurityHubCustomAction"]["Properties"]["Pattern"]["resources"] == [
        f"arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/{target['Id']}"
    ]
    # AND the notify function may write back
    writes = [s for s in function_statements(stack, "NotifyRespondersFunction") if "securityhub" in services(s)]
    assert [s["Action"] for s in writes] == ["securityhub:BatchUpdateFindings"]
    # AND every Security Hub resource is conditional on it
    for logical_id, resource in template.resources.items():
        if resource["Type"].startswith("AWS::SecurityHub::"):
            condition = resource.get("Condition")
            assert condition == "UsesSecurityHub" or {"Condition": "UsesSecurityHub"} in (
                template.body["Conditions"][condition].get("Fn::And", [])
            ), logical_id


@pytest.mark.parametrize("parameter", ["CreateAutomationRules", "WriteBackGuardDutyFindings"])
def test_what_needs_security_hub_is_refused_without_it(template: Template, parameter: str) -> None:
    # GIVEN the template's rules  THEN asking for a Security Hub feature without Security Hub fails the deploy,
    # with a message, instead of being silently dropped
    rules = [
        rule
        for rule in template.raw["Rules"].values()
        if rule["RuleCondition"] == {"Fn::Equals": [{"Ref": parameter}, "true"]}
    ]
    assert [rule["Assertions"][0]["Assert"] for rule in rules] == [
        {"Fn::Equals": [{"Ref": "SecurityHubEnabled"}, "true"]}
    ]


# --- Deploys that fail: reserved concurrency ----------------------------------------------------------------------

RESERVATIONS = {
    "BlockIpFunction": "BlockIpReservedConcurrency",
    "BlockInNetworkAclFunction": "NetworkAclReservedConcurrency",
}


def reserved(stack: Stack) -> dict[str, Any]:
    return {
        function: stack.properties(function)["ReservedConcurrentExecutions"]
        for function in stack.resources_of_type("AWS::Serverless::Function")
        if "ReservedConcurrentExecutions" in stack.properties(function)
    }


def test_only_the_shared_resource_writers_reserve_concurrency_and_each_is_a_parameter(template: Template) -> None:
    # GIVEN the stack with its defaults
    defaults = {name: template.body["Parameters"][name]["Default"] for name in RESERVATIONS.values()}
    # THEN only the network ACL writer reserves by default, as much as its parameter says (Lambda refuses
    # reservations that leave the account fewer than 100 unreserved executions); block steps no longer write the
    # IPSets, so theirs is 0 unless a deployer sets one
    assert defaults == {"BlockIpReservedConcurrency": 0, "NetworkAclReservedConcurrency": 5}
    assert reserved(security_stack(template)) == {"BlockInNetworkAclFunction": "5", "WriteIpSetsFunction": 1}
    # AND a deployer can pick another number, or none at all with 0, for an account with a small quota
    # (the IPSets' writer excepted: one at a time is its design, see the next test)
    assert reserved(security_stack(template, dict.fromkeys(RESERVATIONS.values(), "3"))) == {
        **dict.fromkeys(RESERVATIONS, "3"),
        "WriteIpSetsFunction": 1,
    }
    assert reserved(security_stack(template, dict.fromkeys(RESERVATIONS.values(), "0"))) == {"WriteIpSetsFunction": 1}
    assert all(template.body["Parameters"][name]["MinValue"] == 0 for name in RESERVATIONS.values())
    assert "get-account-settings" in template.body["Parameters"]["BlockIpReservedConcurrency"]["Description"]


def test_the_ipsets_one_writer_runs_one_invocation_at_a_time_on_the_blocklist_stream(template: Template) -> None:
    # GIVEN the IPSets' writer as deployed
    stack = security_stack(template)
    writer = stack.properties("WriteIpSetsFunction")
    (source,) = writer["Events"].values()
    # THEN it is the only writer of the moment (reserved 1, one batch per shard), batching a window of records,
    # started only by records that ask for a write
    assert str(writer["ReservedConcurrentExecutions"]) == "1"
    assert source["Type"] == "DynamoDB" and source["Properties"]["ParallelizationFactor"] == 1
    assert 0 < source["Properties"]["MaximumBatchingWindowInSeconds"] <= 5
    assert "waf_pending" in source["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
    assert stack.properties("BlocklistTable")["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"


# --- Least privilege: the responder topic's key, the responders' grant ----------------------------------------------


def key_statements(stack: Stack, principal: str) -> list[dict[str, Any]]:
    policy = stack.properties("ResponderTopicKey")["KeyPolicy"]
    return [s for s in policy["Statement"] if principal in as_list((s.get("Principal") or {}).get("Service", []))]


def test_cloudwatch_may_use_the_topic_key_only_for_the_stacks_alarms(template: Template) -> None:
    # GIVEN the responder topic key's statements for CloudWatch
    stack = security_stack(template)
    (statement,) = key_statements(stack, "cloudwatch.amazonaws.com")
    # THEN they hold it to this account and to the stack's two alarms, which carry those names (confused deputy)
    alarms = [stack.properties(a)["AlarmName"] for a in ("TimeToContainAlarm", "BlocklistNearlyFullAlarm")]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {"aws:SourceArn": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}" for name in alarms]},
    }
    assert sorted(as_list(statement["Principal"]["Service"])) == ["cloudwatch.amazonaws.com"]
    # AND the topic admits exactly those alarms
    topic_policy = stack.properties("ResponderTopicPolicy")["PolicyDocument"]["Statement"]
    admitted = [
        s["Condition"]["ArnEquals"]["aws:SourceArn"]
        for s in topic_policy
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert sorted(admitted) == sorted(arn(a) for a in ("TimeToContainAlarm", "BlocklistNearlyFullAlarm"))


def test_eventbridge_may_use_the_topic_key_for_the_one_rule_the_topic_admits(template: Template) -> None:
    # GIVEN the key's statement for EventBridge, alone (a documented choice: EventBridge's delivery to an encrypted
    # topic carries no aws:SourceAccount/aws:SourceArn to KMS, so a condition on them would drop every alert)
    stack = security_stack(template)
    (statement,) = key_statements(stack, "events.amazonaws.com")
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # THEN what holds EventBridge to this stack is the topic policy: only the failed-execution rule may publish
    topic_policy = stack.properties("ResponderTopicPolicy")["PolicyDocument"]["Statement"]
    events = [s for s in topic_policy if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert [s["Condition"] for s in events] == [{"ArnEquals": {"aws:SourceArn": arn("ExecutionFailedRule")}}]
    # AND the IAM notes the README links to say why
    notes = " ".join((ROOT / "docs" / "iam.md").read_text(encoding="utf-8").split())
    assert "does not carry `aws:SourceAccount`/`aws:SourceArn` to KMS" in notes


def test_responders_get_a_policy_that_answers_approvals_and_nothing_else(template: Template) -> None:
    # GIVEN the policy the stack offers for the responders' roles
    stack = security_stack(template)
    document = stack.properties("ApprovalResponderPolicy")["PolicyDocument"]
    # THEN it allows calling the answer function's URL and, as AWS requires of function URLs since October 2025,
    # invoking the function, on that function only
    assert document["Statement"] == [
        {
            "Sid": "AnswerApprovalRequests",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"],
            "Resource": arn("AnswerApprovalFunction"),
        }
    ]
    assert stack.outputs()["ApprovalResponderPolicyArn"] == stack.ref("ApprovalResponderPolicy")
    # AND the URL stays IAM-authenticated
    assert stack.properties("AnswerApprovalFunction")["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}


def test_the_docs_list_the_deploy_prerequisites_and_what_a_responder_needs() -> None:
    # GIVEN the deploy page and the approvals page, both linked from the README
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/deploying.md#prerequisites" in readme and "docs/approvals.md" in readme
    deploying = " ".join((ROOT / "docs" / "deploying.md").read_text(encoding="utf-8").split())
    approvals = " ".join((ROOT / "docs" / "approvals.md").read_text(encoding="utf-8").split())
    # THEN the prerequisites name every deploy that fails without them
    prerequisites = deploying[deploying.index("## Prerequisites") : deploying.index("## After the deploy")]
    for needed in (
        "GuardDuty",
        "SecurityHubEnabled=true",
        "aws lambda get-account-settings",
        "BlockIpReservedConcurrency",
        "StackSets trusted access",
        "Firewall Manager",
        "quota",
    ):
        assert needed in prerequisites, needed
    # AND the approvals page says what a responder's role needs
    assert "`ApprovalResponderPolicyArn`" in approvals
    assert "`lambda:InvokeFunctionUrl`" in approvals and "`lambda:InvokeFunction`" in approvals
