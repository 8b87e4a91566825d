"""Whose findings the stack answers: its own account, its organization's active members, and AllowedAccountIds."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from firebreak.core.members import Organization
from firebreak.triage.accounts import account_refusal

SECURITY, STRANGER = "123456789012", "999988887777"


@pytest.fixture
def organizations(aws: None) -> Any:
    client = boto3.client("organizations", region_name="us-east-1")
    client.create_organization(FeatureSet="ALL")
    return client


def member(organizations: Any, name: str) -> str:
    created = organizations.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
    return str(created["AccountId"])


def in_org(organizations: Any) -> Organization:
    org_id = organizations.describe_organization()["Organization"]["Id"]
    return Organization(stack_account_id=SECURITY, organization_id=org_id)


def test_the_stacks_own_account_is_answered_without_asking_organizations() -> None:
    assert account_refusal(SECURITY, Organization(SECURITY), organizations=lambda: None) is None


def test_an_active_member_is_answered(organizations: Any) -> None:
    assert account_refusal(member(organizations, "workloads"), in_org(organizations), lambda: organizations) is None


def test_an_account_outside_the_organization_is_refused_naming_it(organizations: Any) -> None:
    reason = account_refusal(STRANGER, in_org(organizations), lambda: organizations)
    assert reason is not None and STRANGER in reason and "not a member" in reason


def test_allowed_account_ids_answer_an_outsider(organizations: Any) -> None:
    allowed = Organization(SECURITY, in_org(organizations).organization_id, frozenset({STRANGER}))
    assert account_refusal(STRANGER, allowed, lambda: organizations) is None


def test_a_single_account_stack_refuses_another_accounts_finding() -> None:
    reason = account_refusal(STRANGER, Organization(SECURITY), organizations=lambda: None)
    assert reason is not None and "AllowedAccountIds" in reason and SECURITY in reason


def test_a_suspended_member_is_refused_with_its_status(organizations: Any) -> None:
    account = member(organizations, "closing")
    organizations.close_account(AccountId=account)
    status = organizations.describe_account(AccountId=account)["Account"]["Status"]

    reason = account_refusal(account, in_org(organizations), lambda: organizations)

    assert status != "ACTIVE"
    assert reason is not None and status in reason
