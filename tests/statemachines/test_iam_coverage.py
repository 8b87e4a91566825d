"""Every AWS call a function makes on the local engine is granted by its template policy (or its member role's)."""

from __future__ import annotations

import pytest

from firebreak_local import iam_coverage
from firebreak_local.engine import Engine
from firebreak_local.iam_coverage import Call

EVENTS = iam_coverage.EVENTS


@pytest.mark.parametrize("event_name", EVENTS.values(), ids=EVENTS.keys())
def test_every_call_a_playbook_makes_is_granted(engine: Engine, event_name: str) -> None:
    # GIVEN a finding, run to its end and released (release undoes what the playbook did, with its own grants)
    run = iam_coverage.run_event(engine, event_name)
    assert (run.status, run.released) == ("CONTAINED", "RELEASED"), run
    # THEN the functions (and the member roles) made calls, and each is allowed by the policy of its principal
    assert len({call.principal for call in run.calls}) >= 3
    assert iam_coverage.uncovered(run.calls, run.policies) == []
    if event_name == EVENTS["member-account"]:
        assert [c for c in run.calls if c.principal.endswith(":role/firebreak-member-isolate-instance")]


def test_a_removed_grant_is_caught(engine: Engine) -> None:
    run = iam_coverage.run_event(engine, EVENTS["block-ip"])
    block_ip = "firebreak-BlockIpFunction"
    assert Call(block_ip, "wafv2:UpdateIPSet") in run.calls
    # WHEN block-ip's policy loses the statement that grants wafv2:UpdateIPSet
    granted = dict(run.policies)
    granted[block_ip] = [s for s in granted[block_ip] if not iam_coverage.allowed([s], "wafv2:UpdateIPSet")]
    # THEN the check names the call
    assert f"{block_ip}: wafv2:UpdateIPSet is not granted" in iam_coverage.uncovered(run.calls, granted)


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
