"""Deny entries in a subnet's network ACL: the reserved range, eviction of the oldest, rules outside never touched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.nacl import (
    AclEntry,
    RuleRange,
    Slot,
    assign,
    block_in_network_acls,
    deny,
    network_acl_of,
    reconcile,
)
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.models import Incident, Mode, NetworkInterface
from firebreak.triage.findings import normalise
from tests.support import create_blocklist_table, load_event

NOW = 1_800_000_000
RULES = RuleRange(71, 73)


@dataclass
class Account:
    ec2: Any
    blocklist: Blocklist
    acl: str

    def entries(self) -> list[dict[str, Any]]:
        acl = self.ec2.describe_network_acls(NetworkAclIds=[self.acl])["NetworkAcls"][0]
        return sorted(acl["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"]))

    def outside_range(self) -> list[dict[str, Any]]:
        return [entry for entry in self.entries() if entry["RuleNumber"] not in RULES]

    def denied(self) -> dict[int, set[str]]:
        """Rule number -> the CIDRs it denies, both directions together."""
        rules: dict[int, set[str]] = {}
        for entry in self.entries():
            if entry["RuleNumber"] in RULES:
                rules.setdefault(entry["RuleNumber"], set()).add(entry.get("CidrBlock") or entry["Ipv6CidrBlock"])
        return rules

    def incident(self) -> Incident:
        """The brute force, its instance in the subnet this ACL guards."""
        subnet = self.ec2.describe_network_acls(NetworkAclIds=[self.acl])["NetworkAcls"][0]["Associations"][0]
        incident = normalise(load_event("eventbridge/guardduty_ssh_brute_force"))
        return replace(incident, network_interfaces=(NetworkInterface("eni-1", subnet["SubnetId"]),))

    def block(self, cidr: str, at: int) -> tuple[dict[str, int], dict[str, int]]:
        self.blocklist.record(cidr, 6 if ":" in cidr else 4, "fb-test", at, 86_400)
        return deny(self.ec2, self.blocklist, self.acl, [cidr], RULES, float(at))


@pytest.fixture
def account(aws: None) -> Iterator[Account]:
    dynamodb = boto3.client("dynamodb")
    create_blocklist_table(dynamodb, "blocklist")
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    acl = network_acl_of(ec2, subnet)
    assert acl
    # Rules of the account's own just outside the reserved range, in both directions.
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=70, Protocol="6", RuleAction="allow", Egress=egress,
            CidrBlock="192.0.2.0/24", PortRange={"From": 443, "To": 443},
        )  # fmt: skip
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=74, Protocol="-1", RuleAction="deny", Egress=egress, CidrBlock="1.2.3.4/32"
        )
    yield Account(ec2, Blocklist(dynamodb, "blocklist"), acl)


def test_first_blocks_take_free_rules_inbound_and_outbound(account: Account) -> None:
    # GIVEN an empty reserved range 71-73
    foreign = account.outside_range()

    # WHEN two attackers are blocked
    account.block("45.155.205.233/32", NOW)
    before, after = account.block("194.26.29.102/32", NOW + 1)

    # THEN each has its own rule denying it in both directions, and nothing outside the range changed
    assert before == {} and after == {"194.26.29.102/32": 72}
    assert account.denied() == {71: {"45.155.205.233/32"}, 72: {"194.26.29.102/32"}}
    assert all(
        e["RuleAction"] == "deny" and e["Protocol"] == "-1" for e in account.entries() if e["RuleNumber"] in RULES
    )
    assert len([e for e in account.entries() if e["RuleNumber"] in RULES]) == 4
    assert account.outside_range() == foreign


def test_a_full_range_evicts_the_attacker_seen_longest_ago_and_never_touches_foreign_rules(account: Account) -> None:
    # GIVEN a full range: three attackers, the first seen longest ago
    foreign = account.outside_range()
    for offset, cidr in enumerate(("45.155.205.233/32", "194.26.29.102/32", "185.220.101.47/32")):
        account.block(cidr, NOW + offset)

    # WHEN a fourth attacker is blocked
    _, after = account.block("103.145.13.7/32", NOW + 10)

    # THEN it replaced the oldest one's rule in both directions, the others kept theirs, rules 70 and 74 are as before
    assert after == {"103.145.13.7/32": 71}
    assert account.denied() == {71: {"103.145.13.7/32"}, 72: {"194.26.29.102/32"}, 73: {"185.220.101.47/32"}}
    assert account.outside_range() == foreign
    # AND the table no longer claims a rule for the evicted one, but still blocks it in WAF
    evicted = next(e for e in account.blocklist.entries() if e.cidr == "45.155.205.233/32")
    assert evicted.nacl_rules == ()
    assert "45.155.205.233/32" in account.blocklist.active(NOW + 10)[4]


def test_a_resighting_refreshes_the_age_so_another_one_is_evicted(account: Account) -> None:
    # GIVEN a full range whose oldest attacker attacks again
    for offset, cidr in enumerate(("45.155.205.233/32", "194.26.29.102/32", "185.220.101.47/32")):
        account.block(cidr, NOW + offset)
    before, after = account.block("45.155.205.233/32", NOW + 5)
    assert before == after == {"45.155.205.233/32": 71}

    # WHEN a new attacker needs a rule
    account.block("103.145.13.7/32", NOW + 10)

    # THEN the attacker now seen longest ago lost its rule, not the re-sighted one
    assert account.denied() == {71: {"45.155.205.233/32"}, 72: {"103.145.13.7/32"}, 73: {"185.220.101.47/32"}}


def test_ipv6_attackers_are_denied_with_ipv6_cidr_block(account: Account) -> None:
    # WHEN an IPv6 attacker is blocked
    account.block("2a0e:97c0:3e3:2a2::1/128", NOW)

    # THEN both entries name it in Ipv6CidrBlock
    entries = [e for e in account.entries() if e["RuleNumber"] == 71]
    assert [(e["Egress"], e.get("Ipv6CidrBlock"), e.get("CidrBlock")) for e in entries] == [
        (False, "2a0e:97c0:3e3:2a2::1/128", None),
        (True, "2a0e:97c0:3e3:2a2::1/128", None),
    ]


def test_reconcile_clears_what_the_table_no_longer_blocks_and_restores_what_it_does(account: Account) -> None:
    # GIVEN two placed attackers, one whose block has since expired, one whose entries someone deleted by hand,
    # and a hand-made entry inside the reserved range
    account.blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, 60)
    deny(account.ec2, account.blocklist, account.acl, ["45.155.205.233/32"], RULES, float(NOW))
    account.block("194.26.29.102/32", NOW + 1)
    for egress in (False, True):
        account.ec2.delete_network_acl_entry(NetworkAclId=account.acl, RuleNumber=72, Egress=egress)
        account.ec2.create_network_acl_entry(
            NetworkAclId=account.acl, RuleNumber=73, Protocol="-1", RuleAction="allow", Egress=egress,
            CidrBlock="0.0.0.0/0",
        )  # fmt: skip
    foreign = account.outside_range()

    # WHEN the range is reconciled after the first block expired
    with account.blocklist.lease("network-acl#" + account.acl) as held:
        assert held
        result = reconcile(account.ec2, account.blocklist, account.acl, RULES, NOW + 120)

    # THEN the expired attacker is gone, the deleted one is back in a free rule, the intruding rule is cleared, and
    # rules 70 and 74 are untouched
    assert result.removed == {"45.155.205.233/32": 71}
    assert result.added == {"194.26.29.102/32": 72}
    assert result.overwritten == (73,)
    assert account.denied() == {72: {"194.26.29.102/32"}}
    assert account.outside_range() == foreign


def test_assign_keeps_placed_rules_and_fills_free_ones_first() -> None:
    # GIVEN rule 72 holding a wanted CIDR and rule 73 an unwanted one
    slots = {
        72: Slot(72, AclEntry("10.9.9.9/32", True), AclEntry("10.9.9.9/32", True)),
        73: Slot(73, AclEntry("10.8.8.8/32", True), AclEntry("10.8.8.8/32", True)),
    }

    # WHEN two newer CIDRs are wanted as well
    target = assign(slots, ["10.1.1.1/32", "10.9.9.9/32", "10.2.2.2/32"], RULES)

    # THEN the placed one stays at 72, the first new one takes the free 71, the second evicts 73
    assert target == {72: "10.9.9.9/32", 71: "10.1.1.1/32", 73: "10.2.2.2/32"}


def test_block_in_network_acls_denies_in_the_acl_of_the_incident_subnet(account: Account) -> None:
    # GIVEN an incident whose instance sits in the subnet the ACL guards, its attacker on the block list
    incident = account.incident()
    account.blocklist.record("45.155.205.233/32", 4, "fb-test", NOW, 86_400)

    # WHEN the attacker is denied in network ACLs, then denied again
    cidrs, clock = ["45.155.205.233/32"], lambda: float(NOW)
    [first] = block_in_network_acls(lambda: account.ec2, account.blocklist, incident, cidrs, RULES, Mode.ENFORCE, clock)
    [again] = block_in_network_acls(lambda: account.ec2, account.blocklist, incident, cidrs, RULES, Mode.ENFORCE, clock)

    # THEN the first took rule 71 and the second found it there
    assert (first.outcome.value, first.after) == ("applied", {"network_acl": account.acl, "rule": 71})
    assert again.outcome.value == "already_applied"
    assert account.denied() == {71: {"45.155.205.233/32"}}


def test_block_in_network_acls_only_plans_in_dry_run(account: Account) -> None:
    # GIVEN an incident whose instance sits in the subnet the ACL guards
    # WHEN its attacker is blocked in dry run
    [action] = block_in_network_acls(
        lambda: account.ec2, account.blocklist, account.incident(), ["45.155.205.233/32"], RULES, Mode.DRY_RUN
    )

    # THEN the block is planned and the range left empty
    assert action.outcome.value == "planned"
    assert action.reason.startswith(f"would deny inbound and outbound within rules 71-73 of {account.acl}")
    assert account.denied() == {}


def test_block_in_network_acls_skips_when_the_finding_names_no_subnet(account: Account) -> None:
    # GIVEN an incident with no network interface
    incident = replace(account.incident(), network_interfaces=())

    # WHEN its attacker is blocked
    [action] = block_in_network_acls(
        lambda: account.ec2, account.blocklist, incident, ["45.155.205.233/32"], RULES, Mode.ENFORCE
    )

    # THEN nothing is denied anywhere, and the action says why
    assert (action.target, action.outcome.value) == ("45.155.205.233/32 in network ACL", "skipped")
    assert account.denied() == {}


def test_block_in_network_acls_fails_the_blocks_when_the_member_role_is_refused(account: Account) -> None:
    # GIVEN an incident in a member account whose role cannot be assumed
    def refused() -> Any:
        raise MemberRoleUnavailable("account 111122223333: cannot assume arn:aws:iam::111122223333:role/x")

    # WHEN its attacker is blocked in network ACLs
    [action] = block_in_network_acls(
        refused, account.blocklist, account.incident(), ["45.155.205.233/32"], RULES, Mode.ENFORCE
    )

    # THEN that block failed, naming the account, and nothing was denied
    assert action.outcome.value == "failed" and "111122223333" in action.reason
    assert account.denied() == {}
