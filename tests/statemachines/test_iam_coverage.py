"""Every AWS call a function makes on the local engine is granted by its template policy (or its member role's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from firebreak_local import iam_coverage
from firebreak_local.engine import Engine
from firebreak_local.iam_coverage import Call, CallRecorder
from tests.support import load_event, report_of

# One event per playbook family, and one acting in a member account through the member roles.
EVENTS = {
    "block-ip": "eventbridge/guardduty_ssh_brute_force",
    "contain-instance": "eventbridge/guardduty_c2_outbound",
    "revoke-credentials": "eventbridge/guardduty_iam_user_key_compromised",
    "member-account": "eventbridge/guardduty_member_c2_outbound",
}


def policies(engine: Engine, calls: Any) -> dict[str, list[dict[str, Any]]]:
    names = iam_coverage.function_names(engine.stack)
    roles = {call.principal for call in calls if call.principal.startswith("arn:")}
    return iam_coverage.function_policies(engine.stack, names) | iam_coverage.member_role_policies(roles)


@pytest.fixture
def recorded(engine: Engine) -> Iterator[tuple[Engine, CallRecorder]]:
    with CallRecorder() as recorder:
        yield engine, recorder


@pytest.mark.parametrize("event_name", EVENTS.values(), ids=EVENTS.keys())
def test_every_call_a_playbook_makes_is_granted(recorded: tuple[Engine, CallRecorder], event_name: str) -> None:
    engine, recorder = recorded
    # GIVEN a finding, run to its end and released (release undoes what the playbook did, with its own grants)
    event = load_event(event_name)
    rule = engine.matching_rule(event)
    assert rule is not None
    execution = engine.start(rule, event)
    assert report_of(execution)["status"] == "CONTAINED", report_of(execution)
    release = engine.release(report_of(execution)["incident_id"])
    assert report_of(release)["status"] == "RELEASED", report_of(release)
    # THEN the functions and the member roles made calls, and each is allowed by the policy of its principal
    assert len({call.principal for call in recorder.calls}) >= 3
    assert iam_coverage.uncovered(recorder.calls, policies(engine, recorder.calls)) == []


def test_a_removed_grant_is_caught(recorded: tuple[Engine, CallRecorder]) -> None:
    engine, recorder = recorded
    event = load_event(EVENTS["block-ip"])
    rule = engine.matching_rule(event)
    assert rule is not None
    engine.start(rule, event)
    granted = policies(engine, recorder.calls)
    block_ip = "firebreak-BlockIpFunction"
    assert Call(block_ip, "wafv2:UpdateIPSet") in recorder.calls
    # WHEN block-ip's policy loses the statement that grants wafv2:UpdateIPSet
    granted[block_ip] = [s for s in granted[block_ip] if not iam_coverage.allowed([s], "wafv2:UpdateIPSet")]
    # THEN the check names the call
    assert f"{block_ip}: wafv2:UpdateIPSet is not granted" in iam_coverage.uncovered(recorder.calls, granted)


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
