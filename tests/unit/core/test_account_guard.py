"""The addresses no block may take: the security account's own and those of the finding's account and Region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from firebreak.core import aws as clients
from firebreak.core.account import guarded_addresses
from firebreak.core.members import Organization, workload_client
from tests.support import refuse_assume_role

MEMBER, REGION = "111122223333", "eu-west-1"


@pytest.fixture
def member_ec2(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("STACK_ACCOUNT_ID", "123456789012")
    yield workload_client("ec2", MEMBER, REGION, "block_ip", "setup", Organization("123456789012"))
    clients.forget_member_sessions()


def test_a_member_findings_guard_holds_the_members_and_the_security_accounts_addresses(member_ec2: Any) -> None:
    member = member_ec2.allocate_address(Domain="vpc")["PublicIp"]
    security = boto3.client("ec2", region_name="us-east-1").allocate_address(Domain="vpc")["PublicIp"]
    elsewhere = boto3.client("ec2", region_name=REGION).allocate_address(Domain="vpc")["PublicIp"]

    guarded = guarded_addresses(MEMBER, REGION, "fb-1")

    assert {member, security} <= set(guarded)
    # The security account's addresses of another Region are not its web ACLs' concern here.
    assert elsewhere not in guarded


def test_a_home_finding_reads_the_security_account_once(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_ACCOUNT_ID", "123456789012")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    own = boto3.client("ec2", region_name="us-east-1").allocate_address(Domain="vpc")["PublicIp"]

    assert list(guarded_addresses("123456789012", "us-east-1", "fb-2")) == [own]


def test_a_refused_member_role_still_guards_the_security_accounts_addresses(
    member_ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = member_ec2.allocate_address(Domain="vpc")["PublicIp"]
    security = boto3.client("ec2", region_name="us-east-1").allocate_address(Domain="vpc")["PublicIp"]
    refuse_assume_role(monkeypatch, region=REGION)

    guarded = guarded_addresses(MEMBER, REGION, "fb-3")

    assert security in guarded and member not in guarded
