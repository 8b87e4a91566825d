"""Network ACL blocks in a member account: denied there, and lifted there by the sweep through its member role."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.nacl import RuleRange, block_in_network_acls, network_acl_of
from firebreak.blocking.sweeping import network_acl_client, sweep
from firebreak.core import aws as clients
from firebreak.core.members import Organization, workload_client
from firebreak.core.models import Mode, NetworkInterface
from firebreak.core.settings import Settings
from firebreak.triage.findings import normalise
from tests.support import create_blocklist_table, load_event, refuse_assume_role

MEMBER, REGION = "111122223333", "eu-west-1"
NOW = 1_800_000_000
RULES = RuleRange(71, 73)
ATTACKER = "45.155.205.233/32"


@pytest.fixture
def member_ec2(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("STACK_ACCOUNT_ID", "123456789012")
    yield workload_client("ec2", MEMBER, REGION, "block_in_network_acl", "setup", Organization("123456789012"))
    clients.forget_member_sessions()


def blocked_member_acl(member_ec2: Any) -> tuple[Blocklist, str]:
    """The member's brute force denied in its subnet's ACL for a minute, as Block In Network Acls does it."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_blocklist_table(dynamodb, "blocklist")
    blocklist = Blocklist(dynamodb, "blocklist")
    vpc = member_ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = member_ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    incident = normalise(load_event("eventbridge/guardduty_member_ssh_brute_force")["detail"])
    incident = dataclasses.replace(incident, network_interfaces=(NetworkInterface("eni-1", subnet),))
    blocklist.record(ATTACKER, 4, "fb-member", NOW, 60)
    [action] = block_in_network_acls(
        lambda: member_ec2, blocklist, incident, [ATTACKER], RULES, Mode.ENFORCE, lambda: float(NOW)
    )
    assert action.outcome.value == "applied", action.reason
    acl = network_acl_of(member_ec2, subnet)
    assert acl
    return blocklist, acl


def denied(ec2: Any, acl: str) -> set[str]:
    entries = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"]
    return {entry["CidrBlock"] for entry in entries if entry["RuleNumber"] in RULES.numbers}


def settings() -> Settings:
    return dataclasses.replace(
        Settings.from_env(), blocked_ipv4_set_arn="", blocked_ipv6_set_arn="", nacl_rules=(71, 73)
    )


def test_the_block_notes_where_the_members_acl_lives(member_ec2: Any) -> None:
    blocklist, acl = blocked_member_acl(member_ec2)

    assert denied(member_ec2, acl) == {ATTACKER}
    assert blocklist.network_acl_place(acl) == (MEMBER, REGION)
    assert [entry.cidr for entry in blocklist.entries()] == [ATTACKER]


def test_the_sweep_lifts_an_expired_block_from_the_members_acl(member_ec2: Any) -> None:
    # GIVEN the member's ACL denies an attacker whose block expired
    blocklist, acl = blocked_member_acl(member_ec2)

    # WHEN the sweep runs after the expiry
    report = sweep(blocklist, lambda ipset: None, network_acl_client(blocklist), settings(), NOW + 120)

    # THEN the deny entry is gone from the member's ACL, and the report says so
    assert report.failures == []
    assert denied(member_ec2, acl) == set()
    assert report.lifted == [f"{ATTACKER} in {acl}"]


def test_a_refused_sweep_role_is_reported_and_the_rest_of_the_sweep_goes_on(
    member_ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocklist, acl = blocked_member_acl(member_ec2)
    refuse_assume_role(monkeypatch, region=REGION)

    report = sweep(blocklist, lambda ipset: None, network_acl_client(blocklist), settings(), NOW + 120)

    [failure] = report.failures
    assert acl in failure and "firebreak-member-sweep-blocklist" in failure
    assert report.expired == [ATTACKER]
