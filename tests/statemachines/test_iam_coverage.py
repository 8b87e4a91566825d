"""Every AWS call a function makes on the local engine is granted by its template policy (or its member role's)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from firebreak_local import iam_check, iam_coverage
from firebreak_local.engine import Engine
from firebreak_local.iam_coverage import Call
from firebreak_local.template import load_template
from tests.support import TEMPLATE

EVENTS = iam_coverage.EVENTS


@pytest.fixture(scope="module")
def member_run() -> iam_coverage.Run:
    return iam_coverage.run_scenario(EVENTS["member-account"])


def test_every_call_a_playbook_makes_is_granted(engine: Engine) -> None:
    # GIVEN a finding, run to its end and released (release undoes what the playbook did, with its own grants)
    run = iam_coverage.run_event(engine, EVENTS["contain-instance"])
    assert (run.status, run.released) == ("CONTAINED", "RELEASED"), run
    # THEN the functions made calls, and each is allowed by the policy of its principal, conditions included
    assert len({call.principal for call in run.calls}) >= 3
    assert iam_coverage.uncovered(run.calls, run.policies) == []
    assert iam_coverage.undecided(run.calls, run.policies) == []


def test_member_roles_are_held_to_their_conditions(member_run: iam_coverage.Run) -> None:
    # GIVEN a member-account finding in eu-west-1, one of ResponseRegions, run through the member roles
    assert (member_run.status, member_run.released) == ("CONTAINED", "RELEASED")
    isolate = "arn:aws:iam::111122223333:role/firebreak-member-isolate-instance"
    assert [c for c in member_run.calls if c.principal == isolate]
    # THEN every call is granted with the Region, organization and tag conditions it carries
    assert iam_coverage.uncovered(member_run.calls, member_run.policies) == []


def test_a_call_outside_the_member_roles_regions_is_refused_by_their_condition(member_run: iam_coverage.Run) -> None:
    # GIVEN the member isolate role's calls, as if the finding came from a Region outside ResponseRegions
    isolate = "arn:aws:iam::111122223333:role/firebreak-member-isolate-instance"
    (call, *_) = [c for c in member_run.calls if (c.principal, c.action) == (isolate, "ec2:DescribeInstances")]
    values = dict(call.context.values)
    moved = replace(
        call, context=replace(call.context, values=tuple({**values, "aws:requestedregion": ("ap-south-1",)}.items()))
    )
    # THEN the grant names the action, but its aws:RequestedRegion condition is false, so the call is not granted
    assert iam_coverage.allowed(member_run.policies[isolate], call.action)
    assert iam_coverage.uncovered([moved], member_run.policies) == [
        f"{isolate}: ec2:DescribeInstances is not granted: the condition of every statement that allows it is false"
    ]


def test_a_removed_grant_is_caught(engine: Engine) -> None:
    # GIVEN a block, whose IPSet write the stack's one writer (on the blocklist's stream) makes
    run = iam_coverage.run_event(engine, EVENTS["block-ip"])
    block_ip = "firebreak-WriteIpSetsFunction"
    (update,) = [c for c in run.calls if (c.principal, c.action) == (block_ip, "wafv2:UpdateIPSet")]
    assert ":regional/ipset/firebreak-blocked-ipv4/" in update.resource
    # WHEN block-ip's policy loses the statement that grants wafv2:UpdateIPSet
    granted = dict(run.policies)
    granted[block_ip] = [s for s in granted[block_ip] if not iam_coverage.allowed([s], "wafv2:UpdateIPSet")]
    # THEN the check names the call
    expected = f"{block_ip}: wafv2:UpdateIPSet on {update.resource} is not granted"
    assert expected in iam_coverage.uncovered(run.calls, granted)


def test_a_grant_on_another_table_is_caught(engine: Engine) -> None:
    run = iam_coverage.run_event(engine, EVENTS["block-ip"])
    block_ip = "firebreak-BlockIpFunction"
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/firebreak-BlocklistTable"
    assert (block_ip, "dynamodb:UpdateItem", table) in {(c.principal, c.action, c.resource) for c in run.calls}
    # WHEN block-ip's DynamoDB grants name the incident table instead of the block list
    other = table.replace("BlocklistTable", "IncidentTable")
    moved = [{**s, "Resource": other} if str(s.get("Resource")) == table else s for s in run.policies[block_ip]]
    # THEN the check names the call on the table it really writes
    assert f"{block_ip}: dynamodb:UpdateItem on {table} is not granted" in iam_coverage.uncovered(
        run.calls, {**run.policies, block_ip: moved}
    )


def test_an_added_call_is_caught(engine: Engine) -> None:
    # GIVEN block-ip's recorded calls, plus one its policy does not grant (as a new line of code would make)
    run = iam_coverage.run_event(engine, EVENTS["block-ip"])
    calls = [*run.calls, Call("firebreak-BlockIpFunction", "ec2:TerminateInstances")]
    # THEN the check names it
    assert iam_coverage.uncovered(calls, run.policies) == [
        "firebreak-BlockIpFunction: ec2:TerminateInstances is not granted"
    ]


@pytest.mark.parametrize(
    ("event_name", "actions"),
    [
        ("before-send.s3.HeadObject", ("s3:GetObject",)),
        ("before-send.sfn.StartExecution", ("states:StartExecution",)),
        ("before-send.elastic-load-balancing-v2.RegisterTargets", ("elasticloadbalancing:RegisterTargets",)),
        ("before-send.lambda.Invoke", ("lambda:InvokeFunction",)),
        ("before-send.sts.GetCallerIdentity", ()),
    ],
)
def test_sdk_operations_map_to_iam_actions(event_name: str, actions: tuple[str, ...]) -> None:
    assert iam_coverage.iam_actions(event_name) == actions


def test_a_deny_or_a_missing_allow_refuses_and_an_unknown_action_is_named() -> None:
    allow = {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "ec2:DescribeInstances", "Resource": "*"}
    assert iam_coverage.allowed([allow], "ec2:DescribeInstances")
    assert not iam_coverage.allowed([allow, deny], "ec2:DescribeInstances")
    assert not iam_coverage.allowed([allow], "ec2:CreateTags")
    assert iam_coverage.uncovered([Call("f", "s3:HeadObject")], {"f": [allow]}) == [
        "f: s3:HeadObject is no IAM action (add it to OPERATION_ACTIONS)"
    ]


@pytest.fixture(scope="module")
def machines() -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    stack = iam_check.security_stack(load_template(TEMPLATE), {})
    return iam_coverage.state_machine_calls(stack), iam_coverage.state_machine_policies(stack)


def test_every_task_integration_of_every_state_machine_is_granted(machines: Any) -> None:
    calls, policies = machines
    # GIVEN every Task state's integration, as the IAM actions Step Functions needs for it
    assert Call("RespondToFindingStateMachine", "states:StopExecution") in calls
    assert Call("BlockIpStateMachine", "lambda:InvokeFunction") in calls
    # THEN each machine's role grants them (the child executions' .sync polling and managed rule included)
    assert iam_coverage.uncovered(calls, policies) == []


def test_a_removed_state_machine_grant_is_caught(machines: Any) -> None:
    calls, policies = machines
    entry = "RespondToFindingStateMachine"
    # WHEN the entry machine loses the grant that lets Step Functions stop a child it started with .sync
    cut = {**policies, entry: [s for s in policies[entry] if not iam_coverage.allowed([s], "states:StopExecution")]}
    # THEN the check names it
    assert f"{entry}: states:StopExecution is not granted" in iam_coverage.uncovered(calls, cut)
