"""Every AWS call of the contain-instance and revoke-credentials playbooks, failing transiently and permanently.

The same contract as test_fault_matrix (the entry machine and block-ip), step by step of these playbooks: throttling
that outlasts the client's own retries is retried by the step's ASL Retry (the error name the handler raises must be
the one the Retry matches) and the incident is still CONTAINED; a refusal or a missing resource ends in a truthful
status, a record and a notification, with the error in a failed action and nothing claimed that did not happen.

The deliberate exception to "retried by the ASL Retry" is a step that has already changed something: a whole-step
retry would find the change done and record it already_applied, losing the before-state the release needs. So an
evidence step that AWS still throttles after the client's retries is a failed action (containment.evidence), and so is
a revocation write throttled after the key was deactivated (containment.credentials): PARTIALLY_CONTAINED, truthfully.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from firebreak_local.engine import Engine, Execution
from tests.statemachines.test_contain_instance import seed_fleet
from tests.support import Case, load_event, records, run_with_fault, status_of

# Retries wait 10 ms at most: the contract is about what is retried and what the incident ends as, not the waits.
pytestmark = pytest.mark.usefixtures("short_retry_waits")


def isolated(engine: Engine) -> bool:
    return bool(engine.world.report()["instances"]["i-0a1b2c3d4e5f60003"]["quarantined"])


def user_revoked(engine: Engine) -> bool:
    iam = engine.client("iam")
    denied = "FirebreakDenyAll" in iam.list_user_policies(UserName="ci-deployer")["PolicyNames"]
    return denied and engine.world.report()["access_keys"] == {"AKIAZ4FQH7XKN2LD3VB6": "Inactive"}


def role_revoked(engine: Engine) -> bool:
    return bool(engine.client("iam").list_role_policies(RoleName="web-server-role")["PolicyNames"])


def seed(engine: Engine, event: dict[str, Any]) -> object:
    return engine.world.seed(event)


@dataclass(frozen=True)
class Scenario:
    """A finding for one playbook, the world it needs, how to see its main action took effect, what it blocks."""

    label: str
    event: str
    finding_type: str
    prepare: Callable[[Engine, dict[str, Any]], object]
    took_effect: Callable[[Engine], bool]
    blocked: str

    def __str__(self) -> str:
        return self.label


C2 = Scenario("contain", "guardduty_c2_outbound", "Backdoor:EC2/C&CActivity.B", seed, isolated, "193.233.20.15/32")
# The same finding on an instance in an Auto Scaling group and a target group, so that those evidence calls are made.
FLEET = Scenario(
    "contain-fleet", "guardduty_c2_outbound", "Backdoor:EC2/C&CActivity.B", seed_fleet, isolated, "193.233.20.15/32"
)
USER = Scenario(
    "revoke-user",
    "guardduty_iam_user_key_compromised",
    "CredentialAccess:IAMUser/AnomalousBehavior",
    seed,
    user_revoked,
    "146.70.119.82/32",
)
ROLE = Scenario(
    "revoke-role",
    "guardduty_access_key_malicious_ip",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    seed,
    role_revoked,
    "103.151.103.15/32",
)


def run(engine: Engine, scenario: Scenario, case: Case) -> tuple[Execution, int]:
    event = load_event(f"eventbridge/{scenario.event}")
    scenario.prepare(engine, event)
    return run_with_fault(engine, event, case)


def reported_actions(execution: Execution) -> list[dict[str, Any]]:
    report = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    return list(report["actions"])


# Past the client's own three attempts where it says 3, so the step's ASL Retry runs it again; within them where 2.
TRANSIENT = [
    # contain-instance, Isolate Instance: reading the instance, creating the group, recording and swapping the groups
    (C2, Case("ec2", "DescribeInstances", "RequestLimitExceeded", 3)),
    (C2, Case("ec2", "CreateSecurityGroup", "RequestLimitExceeded", 3)),
    (C2, Case("ec2", "CreateTags", "RequestLimitExceeded", 3)),
    (C2, Case("ec2", "ModifyNetworkInterfaceAttribute", "InternalError", 3)),
    # contain-instance, Preserve Evidence: within the client's retries (past them: see PERMANENT)
    (C2, Case("ec2", "ModifyInstanceAttribute", "RequestLimitExceeded", 2)),
    (FLEET, Case("autoscaling", "DetachInstances", "Throttling", 2)),
    # contain-instance, Block Addresses
    (C2, Case("wafv2", "UpdateIPSet", "ThrottlingException", 3)),
    # revoke-credentials, Revoke Credentials of a user and of a role, and Block Addresses
    (USER, Case("iam", "ListAccessKeys", "Throttling", 3)),
    (USER, Case("iam", "UpdateAccessKey", "Throttling", 3)),
    (USER, Case("iam", "ListAccessKeys", "ServiceFailure", 3)),
    (ROLE, Case("iam", "GetRole", "Throttling", 3)),
    (ROLE, Case("iam", "PutRolePolicy", "Throttling", 3)),
    (USER, Case("wafv2", "UpdateIPSet", "ThrottlingException", 3)),
]


@pytest.mark.parametrize(("scenario", "case"), TRANSIENT, ids=str)
def test_transient_error_in_a_playbook_step_is_retried_and_the_incident_still_contained(
    engine: Engine, scenario: Scenario, case: Case
) -> None:
    # GIVEN one AWS call of the playbook is throttled or failing server-side for a while
    # WHEN the finding runs through the stack
    execution, hits = run(engine, scenario, case)

    # THEN the fault really fired, every containment action took effect, and the record and the message say CONTAINED
    assert hits == case.times
    assert [a for a in reported_actions(execution) if a["outcome"] == "failed"] == []
    assert status_of(execution) == "CONTAINED"
    assert scenario.took_effect(engine)
    assert engine.blocked_ips() == [scenario.blocked]
    assert [record["status"] for record in records(engine)] == ["CONTAINED"]
    assert [message["subject"] for message in engine.notifications()] == [
        f"Firebreak CONTAINED: {scenario.finding_type}"
    ]


@dataclass(frozen=True)
class Permanent:
    scenario: Scenario
    case: Case
    status: str
    took_effect: bool  # the playbook's main action (isolation, revocation) still happened
    blocked: bool
    left: str = "failed"  # the outcome of the action that reports what did not happen

    def __str__(self) -> str:
        return f"{self.scenario}-{self.case}"


PARTIAL, FAILED, NOTIFIED = "PARTIALLY_CONTAINED", "FAILED", "NOTIFIED"
PERMANENT = [
    # contain-instance, Isolate Instance: the instance cannot be read or is gone; a group or a swap is refused
    Permanent(C2, Case("ec2", "DescribeInstances", "UnauthorizedOperation", None), FAILED, False, False),
    Permanent(
        C2, Case("ec2", "DescribeInstances", "InvalidInstanceID.NotFound", None), NOTIFIED, False, False, "skipped"
    ),
    Permanent(C2, Case("ec2", "CreateSecurityGroup", "UnauthorizedOperation", None), PARTIAL, False, True),
    Permanent(C2, Case("ec2", "ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", None), PARTIAL, False, True),
    Permanent(C2, Case("ec2", "ModifyNetworkInterfaceAttribute", "InvalidGroup.NotFound", None), PARTIAL, False, True),
    Permanent(C2, Case("ec2", "CreateTags", "UnauthorizedOperation", None), PARTIAL, False, True),
    # contain-instance, Preserve Evidence: one step refused, gone, or throttled past the client's retries
    Permanent(C2, Case("ec2", "ModifyInstanceAttribute", "UnauthorizedOperation", None), PARTIAL, True, True),
    Permanent(C2, Case("ec2", "ModifyInstanceAttribute", "RequestLimitExceeded", 3), PARTIAL, True, True),
    Permanent(C2, Case("ec2", "CreateSnapshot", "InvalidVolume.NotFound", None), PARTIAL, True, True),
    Permanent(FLEET, Case("autoscaling", "DetachInstances", "AccessDenied", None), PARTIAL, True, True),
    Permanent(FLEET, Case("elbv2", "DeregisterTargets", "TargetGroupNotFound", None), PARTIAL, True, True),
    # contain-instance, Block Addresses
    Permanent(C2, Case("wafv2", "UpdateIPSet", "AccessDeniedException", None), PARTIAL, True, False),
    Permanent(C2, Case("wafv2", "GetIPSet", "WAFNonexistentItemException", None), PARTIAL, True, False),
    # revoke-credentials, Revoke Credentials of a user and of a role (a principal already gone is skipped, not failed)
    Permanent(USER, Case("iam", "ListAccessKeys", "AccessDenied", None), PARTIAL, False, True),
    Permanent(USER, Case("iam", "ListAccessKeys", "NoSuchEntity", None), PARTIAL, False, True, "skipped"),
    Permanent(USER, Case("iam", "UpdateAccessKey", "AccessDenied", None), PARTIAL, False, True),
    Permanent(USER, Case("iam", "PutUserPolicy", "AccessDenied", None), PARTIAL, False, True),
    # throttled past every retry after the key was deactivated: failed, so the key keeps its before-state
    Permanent(USER, Case("iam", "PutUserPolicy", "Throttling", 3), PARTIAL, False, True),
    Permanent(ROLE, Case("iam", "GetRole", "NoSuchEntity", None), PARTIAL, False, True, "skipped"),
    Permanent(ROLE, Case("iam", "PutRolePolicy", "AccessDenied", None), PARTIAL, False, True),
    # revoke-credentials, Block Addresses
    Permanent(USER, Case("wafv2", "UpdateIPSet", "AccessDeniedException", None), PARTIAL, True, False),
]


@pytest.mark.parametrize("expected", PERMANENT, ids=str)
def test_permanent_error_in_a_playbook_step_ends_in_a_truthful_status_a_record_and_a_notification(
    engine: Engine, expected: Permanent
) -> None:
    # GIVEN one AWS call of the playbook is refused, or names something that is not there
    # WHEN the finding runs through the stack
    scenario = expected.scenario
    execution, hits = run(engine, scenario, expected.case)

    # THEN the fault really fired, and the status says what happened: never CONTAINED for what did not
    assert hits > 0
    assert execution.status == ("FAILED" if expected.status == FAILED else "SUCCEEDED")
    assert status_of(execution) == expected.status
    assert scenario.took_effect(engine) is expected.took_effect
    assert engine.blocked_ips() == ([scenario.blocked] if expected.blocked else [])
    # AND the step that did not happen is an action that says why, on the one record and in the one message
    assert any(action["outcome"] == expected.left for action in reported_actions(execution))
    assert [record["status"] for record in records(engine)] == [expected.status]
    assert [message["subject"] for message in engine.notifications()] == [
        f"Firebreak {expected.status}: {scenario.finding_type}"
    ]
