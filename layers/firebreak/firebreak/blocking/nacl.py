"""Deny entries for attackers in a subnet's network ACL, inside a rule-number range reserved for Firebreak.

A network ACL holds about 20 rules per direction, so the range holds the newest attackers only: each rule number
denies one CIDR inbound and outbound, and when the range is full the entry of the attacker seen longest ago makes
room. Rules outside the range are never read for writing, replaced or deleted. What the range should hold is
derived from the blocklist table (the newest sightings behind this ACL), and one writer at a time brings the ACL to
it under a lease in the table; a writer that finds the lease taken waits until its addresses are in place.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from firebreak.blocking.blocklist import Blocklist
from firebreak.core.errors import MemberRoleUnavailable, NetworkAclBusy
from firebreak.core.members import Organization
from firebreak.core.models import Action, ActionType, Incident, Mode, Outcome

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

LEASE_WAIT_SECONDS = 20.0
# Refusals of one ACL's writes that must show as failed blocks; anything else (throttling) goes to the ASL Retry.
ACL_REFUSALS = {"NetworkAclEntryLimitExceeded", "NetworkAclEntryAlreadyExists", "InvalidNetworkAclID.NotFound"}


@dataclass(frozen=True)
class RuleRange:
    first: int
    last: int

    def __contains__(self, rule: object) -> bool:
        return isinstance(rule, int) and self.first <= rule <= self.last

    @property
    def numbers(self) -> range:
        return range(self.first, self.last + 1)

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass(frozen=True)
class AclEntry:
    cidr: str
    deny: bool

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> AclEntry:
        cidr = entry.get("CidrBlock") or entry.get("Ipv6CidrBlock") or ""
        canonical = ipaddress.ip_network(cidr, strict=False).compressed if cidr else ""
        return cls(canonical, entry.get("RuleAction") == "deny" and str(entry.get("Protocol")) == "-1")


@dataclass(frozen=True)
class Slot:
    """One rule number of the range: its inbound and outbound entries, if any."""

    rule: int
    ingress: AclEntry | None = None
    egress: AclEntry | None = None

    @property
    def cidr(self) -> str | None:
        """The CIDR this rule fully blocks: a deny of it in both directions, as Firebreak writes it."""
        if self.ingress and self.egress and self.ingress == self.egress and self.ingress.deny:
            return self.ingress.cidr
        return None


def network_acl_of(ec2: EC2Client, subnet_id: str) -> str | None:
    """The network ACL associated with the subnet (every subnet has exactly one)."""
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    return acls["NetworkAcls"][0]["NetworkAclId"] if acls["NetworkAcls"] else None


def network_acls_of(ec2: EC2Client, subnet_ids: Iterable[str]) -> dict[str, str]:
    """Network ACL id -> the first of these subnets it guards (subnets of one instance may share an ACL)."""
    acls: dict[str, str] = {}
    for subnet in dict.fromkeys(subnet_ids):
        acl = network_acl_of(ec2, subnet)
        if acl:
            acls.setdefault(acl, subnet)
    return acls


def read_slots(ec2: EC2Client, acl_id: str, rules: RuleRange) -> dict[int, Slot]:
    """The occupied rule numbers of the range; entries outside it are not even kept."""
    acl = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    slots: dict[int, Slot] = {}
    for entry in acl.get("Entries", ()):
        rule = int(entry["RuleNumber"])
        if rule not in rules:
            continue
        slot = slots.get(rule, Slot(rule))
        parsed = AclEntry.from_api(entry)
        slots[rule] = Slot(rule, slot.ingress, parsed) if entry["Egress"] else Slot(rule, parsed, slot.egress)
    return slots


def placements(slots: Mapping[int, Slot]) -> dict[str, int]:
    """CIDR -> the rule number that fully blocks it."""
    placed: dict[str, int] = {}
    for rule in sorted(slots):
        cidr = slots[rule].cidr
        if cidr is not None:
            placed.setdefault(cidr, rule)
    return placed


def assign(slots: Mapping[int, Slot], wanted: Sequence[str], rules: RuleRange) -> dict[int, str | None]:
    """What each rule of the range must hold (None: nothing) for the wanted CIDRs, newest first.

    Placed CIDRs keep their rule; new ones take free rules, then the rules of CIDRs no longer wanted (those seen
    longest ago, or expired). Only the newest len(range) CIDRs are wanted at all.
    """
    wanted = list(dict.fromkeys(wanted))[: len(rules.numbers)]
    placed = {cidr: rule for cidr, rule in placements(slots).items() if cidr in wanted}
    target: dict[int, str | None] = {rule: cidr for cidr, rule in placed.items()}
    free = [rule for rule in rules.numbers if rule not in slots]
    reusable = [rule for rule in sorted(slots) if rule not in target]
    openings = free + reusable
    for cidr in wanted:
        if cidr not in placed:
            target[openings.pop(0)] = cidr
    for rule in reusable:
        target.setdefault(rule, None)
    return target


def apply(ec2: EC2Client, acl_id: str, slots: Mapping[int, Slot], target: Mapping[int, str | None]) -> int:
    """Write the difference between the range and its target; returns the number of entry writes."""
    writes = 0
    for rule, cidr in sorted(target.items()):
        slot = slots.get(rule, Slot(rule))
        for egress, current in ((False, slot.ingress), (True, slot.egress)):
            if cidr is None:
                if current is not None:
                    ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=rule, Egress=egress)
                    writes += 1
                continue
            if current == AclEntry(cidr, True):
                continue
            family = "Ipv6CidrBlock" if ":" in cidr else "CidrBlock"
            entry: dict[str, Any] = {
                "NetworkAclId": acl_id,
                "RuleNumber": rule,
                "Protocol": "-1",
                "RuleAction": "deny",
                "Egress": egress,
                family: cidr,
            }
            if current is None:
                ec2.create_network_acl_entry(**entry)
            else:
                ec2.replace_network_acl_entry(**entry)
            writes += 1
    return writes


def wanted_in(blocklist: Blocklist, acl_id: str, now: int) -> list[str]:
    """Active CIDRs seen attacking behind this ACL, the most recently seen first."""
    seen = [
        (dict(entry.nacl_seen)[acl_id], entry.cidr)
        for entry in blocklist.entries()
        if entry.active(now) and acl_id in dict(entry.nacl_seen)
    ]
    return [cidr for _, cidr in sorted(seen, key=lambda pair: (-pair[0], pair[1]))]


@dataclass(frozen=True)
class Reconciled:
    """A range before and after a writer brought it to the table's state."""

    acl_id: str
    before: dict[str, int]
    after: dict[str, int]
    writes: int
    overwritten: tuple[int, ...] = ()  # rules of the range that held something other than a Firebreak deny

    @property
    def removed(self) -> dict[str, int]:
        return {cidr: rule for cidr, rule in self.before.items() if self.after.get(cidr) != rule}

    @property
    def added(self) -> dict[str, int]:
        return {cidr: rule for cidr, rule in self.after.items() if self.before.get(cidr) != rule}


def reconcile(ec2: EC2Client, blocklist: Blocklist, acl_id: str, rules: RuleRange, now: int) -> Reconciled:
    """Bring the range to the table's state. Call only while holding the ACL's lease."""
    slots = read_slots(ec2, acl_id, rules)
    target = assign(slots, wanted_in(blocklist, acl_id, now), rules)
    writes = apply(ec2, acl_id, slots, target)
    before = placements(slots)
    # Every occupied rule of the range is in target, so target alone says what the range holds now.
    after = {cidr: rule for rule, cidr in target.items() if cidr is not None}
    for cidr, rule in after.items():
        if before.get(cidr) != rule:
            blocklist.set_network_acl_rule(cidr, acl_id, rule)
    for cidr in before.keys() - after.keys():
        blocklist.set_network_acl_rule(cidr, acl_id, None)
    overwritten = tuple(rule for rule in sorted(slots) if slots[rule].cidr is None)
    return Reconciled(acl_id, before, after, writes, overwritten)


def lease_name(acl_id: str) -> str:
    return f"network-acl#{acl_id}"


def deny(
    ec2: EC2Client,
    blocklist: Blocklist,
    acl_id: str,
    cidrs: Sequence[str],
    rules: RuleRange,
    now: float,
    sleep: Callable[[float], None] = time.sleep,
    wait_seconds: float = LEASE_WAIT_SECONDS,
) -> tuple[dict[str, int], dict[str, int]]:
    """Note the sightings, then see the range brought up to date: (rules before, rules after) of these CIDRs.

    If another writer holds the lease, it writes these CIDRs too (they are in the table), so this one only waits
    until they are in place, or no longer among the newest the range can hold, or until it may take the lease.
    """
    noted = [cidr for index, cidr in enumerate(cidrs) if blocklist.want_network_acl(cidr, acl_id, _ms(now) + index)]
    before = _of(placements(read_slots(ec2, acl_id, rules)), cidrs)
    deadline = time.monotonic() + wait_seconds
    while True:
        with blocklist.lease(lease_name(acl_id)) as held:
            if held:
                return before, _of(reconcile(ec2, blocklist, acl_id, rules, int(now)).after, cidrs)
        placed = placements(read_slots(ec2, acl_id, rules))
        if all(cidr in placed for cidr in noted):
            return before, _of(placed, cidrs)
        newest = set(wanted_in(blocklist, acl_id, int(now))[: len(rules.numbers)])
        if all(cidr in placed or cidr not in newest for cidr in noted):
            return before, _of(placed, cidrs)
        if time.monotonic() >= deadline:
            raise NetworkAclBusy(f"network ACL {acl_id} stayed leased by another Firebreak writer")
        sleep(random.uniform(0.05, 0.25))


def block_in_network_acls(
    ec2_client: Callable[[], EC2Client],
    blocklist: Blocklist,
    incident: Incident,
    cidrs: Sequence[str],
    rules: RuleRange,
    mode: Mode,
    clock: Callable[[], float] = time.time,
) -> list[Action]:
    """One action per CIDR and network ACL of the incident's subnets: denied, planned, skipped or failed.

    `ec2_client` acts in the incident's account; a member role that cannot be assumed fails these blocks only.
    """

    def every(outcome: Outcome, reason: str) -> list[Action]:
        return [Action(ActionType.BLOCK_IP, f"{cidr} in network ACL", outcome, reason) for cidr in cidrs]

    no_subnet = "the finding names no subnet, so no network ACL to deny in"
    subnets = [eni.subnet_id for eni in incident.network_interfaces if eni.subnet_id]
    if not subnets:
        return every(Outcome.SKIPPED, no_subnet)
    try:
        ec2 = ec2_client()
    except MemberRoleUnavailable as error:
        return every(Outcome.FAILED, f"not denied in the network ACL: {error}")
    acls = network_acls_of(ec2, subnets)
    if not acls:
        return every(Outcome.SKIPPED, no_subnet)
    # The sweep reaches an ACL outside the stack's own account and Region only through where it was noted.
    away = not Organization.from_env().is_home(incident.account_id, incident.region)
    if mode is not Mode.DRY_RUN and away:
        for acl in acls:
            blocklist.place_network_acl(acl, incident.account_id, incident.region)
    actions: list[Action] = []
    for acl, subnet in acls.items():
        if mode is Mode.DRY_RUN:
            plan = (
                f"would deny inbound and outbound within rules {rules} of {acl} (oldest Firebreak rule evicted if full)"
            )
            actions += [_action(cidr, subnet, Outcome.PLANNED, plan) for cidr in cidrs]
        else:
            actions += deny_in(ec2, blocklist, acl, subnet, cidrs, rules, clock())
    return actions


def deny_in(
    ec2: EC2Client, blocklist: Blocklist, acl: str, subnet: str, cidrs: Sequence[str], rules: RuleRange, now: float
) -> list[Action]:
    """The CIDRs denied in one ACL, as actions; its refusals (full, gone) fail these blocks, not the step."""
    try:
        before, after = deny(ec2, blocklist, acl, cidrs, rules, now)
    except NetworkAclBusy as error:
        return [_action(cidr, subnet, Outcome.FAILED, str(error)) for cidr in cidrs]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ACL_REFUSALS:
            raise
        return [_action(cidr, subnet, Outcome.FAILED, f"{acl}: {error.response['Error']['Message']}") for cidr in cidrs]
    actions = []
    for cidr in cidrs:
        if cidr not in after:
            reason = f"rules {rules} of {acl} hold newer attackers; the range keeps the newest, this one was evicted"
            actions.append(_action(cidr, subnet, Outcome.SKIPPED, reason))
        else:
            outcome = Outcome.ALREADY_APPLIED if cidr in before else Outcome.APPLIED
            reason = f"denied inbound and outbound by rule {after[cidr]} of {acl}"
            actions.append(_action(cidr, subnet, outcome, reason, network_acl=acl, rule=after[cidr]))
    return actions


def _action(cidr: str, subnet: str, outcome: Outcome, reason: str, **after: Any) -> Action:
    return Action(ActionType.BLOCK_IP, f"{cidr} in network ACL of {subnet}", outcome, reason, {}, after)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _of(placed: Mapping[str, int], cidrs: Iterable[str]) -> dict[str, int]:
    return {cidr: placed[cidr] for cidr in cidrs if cidr in placed}
