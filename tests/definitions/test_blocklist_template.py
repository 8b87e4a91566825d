"""Template contract of the block lists: least privilege of the block functions, scopes, the sweep and the alarm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[2]
BLOCK_FUNCTIONS = ("BlockIpFunction", "BlockInNetworkAclFunction", "SweepBlocklistFunction")
NACL_WRITES = {"ec2:CreateNetworkAclEntry", "ec2:ReplaceNetworkAclEntry", "ec2:DeleteNetworkAclEntry"}
IPSETS = {"BlockedIpv4Set", "BlockedIpv6Set", "BlockedCloudFrontIpv4Set", "BlockedCloudFrontIpv6Set"}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def stack(template: Template) -> Stack:
    # CloudFront on, so its conditional resources and policy entries are resolved too.
    return Stack(
        template,
        ref=lambda logical_id: f"Ref:{logical_id}",
        get_att=lambda a, b: f"{a}.{b}",
        overrides={"CloudFrontBlocking": "true"},
    )


def statements(stack: Stack, function: str) -> list[dict[str, Any]]:
    found = []
    for policy in stack.properties(function).get("Policies") or ():
        found += [s for s in (policy.get("Statement") or ()) if isinstance(s, dict)]
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


@pytest.mark.parametrize("function", BLOCK_FUNCTIONS)
def test_block_functions_touch_only_the_stacks_blocklist_table_and_ipsets(stack: Stack, function: str) -> None:
    # GIVEN the function's own statements
    granted = statements(stack, function)
    assert granted, f"{function} has no policy statements"
    for statement in granted:
        names = actions(statement)
        # THEN DynamoDB actions name the blocklist table only, and WAF actions the stack's IPSets only
        if any(name.startswith("dynamodb:") for name in names):
            assert resources(statement) == ["BlocklistTable.Arn"], statement
        if any(name.startswith("wafv2:") for name in names):
            assert names <= {"wafv2:GetIPSet", "wafv2:UpdateIPSet"}, statement
            assert {r.removesuffix(".Arn") for r in resources(statement)} <= IPSETS, statement


@pytest.mark.parametrize("regions", ["", "us-east-1,eu-west-1"])
@pytest.mark.parametrize("function", BLOCK_FUNCTIONS)
def test_network_acl_writes_are_bound_to_their_regions_and_the_account(
    template: Template, function: str, regions: str
) -> None:
    # GIVEN every statement that may write network ACL entries (ACL ids are only known at run time)
    stack = Stack(
        template,
        ref=lambda logical_id: f"Ref:{logical_id}",
        get_att=lambda a, b: f"{a}.{b}",
        overrides={"ResponseRegions": regions},
    )
    for statement in statements(stack, function):
        if not actions(statement) & NACL_WRITES:
            continue
        # THEN it is limited to this account's network ACLs, by ec2:Region to where the function acts: the attacked
        # subnet's Region (one of ResponseRegions, or this one), for the block step and the sweep that repairs it
        held: Any = regions.split(",") if regions else "us-east-1"
        assert resources(statement) == ["arn:aws:ec2:*:123456789012:network-acl/*"], statement
        assert statement["Condition"] == {"StringEquals": {"ec2:Region": held}}, statement
    # AND only the two functions that manage the range may write at all
    writes = any(actions(s) & NACL_WRITES for s in statements(stack, function))
    assert writes == (function != "BlockIpFunction")


def test_cloudfront_resources_exist_only_when_enabled_and_only_in_us_east_1(template: Template) -> None:
    # GIVEN the CLOUDFRONT-scope resources
    cloudfront = {
        logical_id: resource
        for logical_id, resource in template.resources.items()
        if (resource.get("Properties") or {}).get("Scope") == "CLOUDFRONT"
    }
    # THEN there are two IPSets and a rule group, all under the condition, and a rule pins the Region
    assert sorted(cloudfront) == ["BlockedCloudFrontIpv4Set", "BlockedCloudFrontIpv6Set", "CloudFrontBlockRuleGroup"]
    assert {resource.get("Condition") for resource in cloudfront.values()} == {"BlockAtCloudFront"}
    assertion = template.raw["Rules"]["CloudFrontScopeNeedsUsEast1"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert Stack(template).resources.keys().isdisjoint(cloudfront)


def test_the_sweep_runs_on_a_schedule(template: Template) -> None:
    events = template.resources["SweepBlocklistFunction"]["Properties"]["Events"]
    assert [event["Type"] for event in events.values()] == ["ScheduleV2"]


def test_the_alarm_watches_the_metric_the_block_steps_emit(template: Template) -> None:
    # GIVEN the alarm and the namespace every function publishes metrics to
    alarm = template.resources["BlocklistNearlyFullAlarm"]["Properties"]
    namespace = template.raw["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    # THEN it reads that namespace and a metric name both handlers publish, and alerts the responders
    assert alarm["Namespace"] == namespace
    for handler in ("block_ip", "sweep_blocklist"):
        assert f'name="{alarm["MetricName"]}"' in (ROOT / "functions" / handler / "app.py").read_text()
    assert alarm["AlarmActions"] == [{"Ref": "ResponderTopic"}]
