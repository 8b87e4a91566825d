"""Containment in a member account: done through the member role there, or failed truthfully when it is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from firebreak.containment.credentials import RevocationRequest, RevocationSettings, revoke_where_held
from firebreak.containment.evidence import preserve_evidence
from firebreak.containment.isolation import IsolationStatus, isolate
from firebreak.core import aws as clients
from firebreak.core.members import Organization, workload_client
from firebreak.core.models import Mode, Outcome, PlaybookRequest
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from firebreak_local.world import World
from tests.support import load_event, refuse_assume_role

MEMBER, OTHER_MEMBER = "111122223333", "222233334444"


@pytest.fixture(autouse=True)
def security_account(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STACK_ACCOUNT_ID", "123456789012")
    monkeypatch.setenv("STACK_NAME", "firebreak")
    # Member-credential clients must not outlive their mock (they would act in the default account after it).
    yield
    clients.forget_member_sessions()


def member_client(service: str, region: str, account: str = MEMBER) -> Any:
    organization = Organization(stack_account_id="123456789012")
    return workload_client(service, account, region, "isolate_instance", "seeding", organization)


def member_request(name: str) -> PlaybookRequest:
    """The member event's incident, its resources seeded in the member account and Region."""
    event = load_event(f"eventbridge/{name}")
    account, region = event["detail"]["accountId"], event["detail"]["region"]
    seeded = World(member_client("ec2", region, account), member_client("iam", region, account)).seed(event)
    incident = normalise(seeded["detail"])
    return PlaybookRequest(incident_id_for(incident), incident, Mode.ENFORCE)


def test_an_instance_in_a_member_account_is_isolated_there() -> None:
    # GIVEN a C2 finding about an instance of the member account in eu-west-1
    request = member_request("guardduty_member_c2_outbound")
    assert (request.incident.account_id, request.incident.region) == (MEMBER, "eu-west-1")

    # WHEN Isolate Instance runs for it
    isolation, addresses = isolate(request)

    # THEN it was isolated in the member's own EC2 and its attacker is still to be blocked
    assert isolation.status is IsolationStatus.ISOLATED, [a.reason for a in isolation.actions]
    assert addresses == ("193.233.20.15",)
    groups = member_client("ec2", "eu-west-1").describe_security_groups()["SecurityGroups"]
    assert any("quarantine" in group["GroupName"] for group in groups)
    own = clients.client("ec2", region="eu-west-1").describe_security_groups()["SecurityGroups"]
    assert not any("quarantine" in group["GroupName"] for group in own)


def test_a_refused_member_role_fails_isolation_but_keeps_the_addresses_to_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = member_request("guardduty_member_c2_outbound")
    refuse_assume_role(monkeypatch)

    isolation, addresses = isolate(request)

    assert isolation.status is IsolationStatus.FAILED
    [failed] = [action for action in isolation.actions if action.outcome is Outcome.FAILED]
    assert MEMBER in failed.reason and "firebreak-member-isolate-instance" in failed.reason
    assert addresses == ("193.233.20.15",)


def test_a_refused_member_role_fails_evidence_naming_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    request = member_request("guardduty_member_c2_outbound")
    refuse_assume_role(monkeypatch)

    [action] = preserve_evidence(request, False, datetime.now(UTC))

    assert action.outcome is Outcome.FAILED and "firebreak-member-preserve-evidence" in action.reason


def test_a_member_accounts_key_is_revoked_in_that_account() -> None:
    request = member_request("guardduty_member_iam_user_key_compromised")
    revocation = RevocationRequest(request.incident, Mode.ENFORCE, datetime.now(UTC))

    actions = revoke_where_held(revocation, RevocationSettings.from_env())

    assert {action.outcome for action in actions} == {Outcome.APPLIED}, [a.reason for a in actions]
    user = request.incident.principal_name
    assert request.incident.account_id == OTHER_MEMBER
    keys = member_client("iam", "us-west-2", OTHER_MEMBER).list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert [key["Status"] for key in keys if key["AccessKeyId"] == request.incident.access_key_id] == ["Inactive"]


def test_a_refused_member_role_fails_the_revocation(monkeypatch: pytest.MonkeyPatch) -> None:
    request = member_request("guardduty_member_iam_user_key_compromised")
    refuse_assume_role(monkeypatch)

    [action] = revoke_where_held(
        RevocationRequest(request.incident, Mode.ENFORCE, datetime.now(UTC)), RevocationSettings.from_env()
    )

    assert action.outcome is Outcome.FAILED and "firebreak-member-revoke-credentials" in action.reason
