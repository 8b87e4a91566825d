"""The scheduled sweep: lift expired blocks, then make every IPSet and network ACL range match the blocklist table.

Whatever differs from the table after the expired entries are gone is drift, someone's change by hand: an address
added to a set is removed, an address removed from a set while still blocked is put back, and all of it is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.nacl import RuleRange, lease_name, reconcile
from firebreak.core import aws
from firebreak.core.errors import BlockFailed, MemberRoleUnavailable
from firebreak.core.members import workload_client
from firebreak.core.settings import Settings
from firebreak.core.waf import IpSetRef, converge

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


@dataclass
class SweepReport:
    """Each list holds "CIDR in PLACE" strings, PLACE an IPSet name or a network ACL id."""

    expired: list[str] = field(default_factory=list)
    lifted: list[str] = field(default_factory=list)
    drift_removed: list[str] = field(default_factory=list)
    drift_restored: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    update_ip_set_calls: int = 0
    usage_percent: float = 0.0

    @property
    def drift(self) -> bool:
        return bool(self.drift_removed or self.drift_restored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "lifted": self.lifted,
            "drift_removed": self.drift_removed,
            "drift_restored": self.drift_restored,
            "failures": self.failures,
            "update_ip_set_calls": self.update_ip_set_calls,
            "usage_percent": round(self.usage_percent, 2),
        }

    def message(self) -> str:
        """What the responders read when the block lists had been changed by hand."""
        lines = ["Firebreak found its block lists changed outside Firebreak and put them back to the blocklist table."]
        lines += ["", "Removed (in a block list, but not blocked by Firebreak):"]
        lines += [f"  - {item}" for item in self.drift_removed] or ["  - none"]
        lines += ["", "Restored (blocked by Firebreak, but missing from a block list):"]
        lines += [f"  - {item}" for item in self.drift_restored] or ["  - none"]
        lines += ["", "To lift a block for good, delete its item from the blocklist table; the next sweep follows."]
        return "\n".join(lines)


def sweep(
    blocklist: Blocklist,
    waf_for: Callable[[IpSetRef], Any],
    ec2_for: Callable[[str], EC2Client],
    settings: Settings,
    now: int,
) -> SweepReport:
    """Lift expired blocks and repair drift; `ec2_for(acl_id)` is the client of the account the ACL lives in."""
    report = SweepReport()
    entries = list(blocklist.entries())
    # Deleted only if still expired: a re-sighting since the scan keeps its block.
    expired = {entry.cidr for entry in entries if not entry.active(now) and blocklist.delete_expired(entry, now)}
    report.expired = sorted(expired)
    active = blocklist.active(now)
    for version in (4, 6):

        def desired(version: int = version) -> set[str]:
            return blocklist.active(now)[version]

        for arn in settings.ipset_arns(version):
            ipset = IpSetRef.from_arn(arn)
            try:
                result = converge(waf_for(ipset), ipset, desired, prune=True)
            except BlockFailed as error:
                report.failures.append(str(error))
                continue
            report.update_ip_set_calls += result.update_calls
            _sort(report, expired, ipset.name, result.removed, result.added)
    rules = RuleRange(*settings.nacl_rules)
    acls = {acl for entry in entries for acl, _ in (*entry.nacl_seen, *entry.nacl_rules)}
    for acl in sorted(acls):
        try:
            ec2 = ec2_for(acl)
        except MemberRoleUnavailable as error:
            report.failures.append(f"network ACL {acl} not swept: {error}")
            continue
        with blocklist.lease(lease_name(acl)) as held:
            if not held:
                report.failures.append(f"network ACL {acl} was being written by a block step; the next sweep checks it")
                continue
            reconciled = reconcile(ec2, blocklist, acl, rules, now)
        _sort(report, expired, acl, reconciled.removed.keys(), reconciled.added.keys())
        report.drift_removed += [f"rule {rule} in {acl}" for rule in reconciled.overwritten]
    report.usage_percent = max(100.0 * len(cidrs) / settings.ipset_limit for cidrs in active.values())
    return report


def _sort(report: SweepReport, expired: set[str], place: str, removed: Any, added: Any) -> None:
    for cidr in sorted(removed):
        (report.lifted if cidr in expired else report.drift_removed).append(f"{cidr} in {place}")
    report.drift_restored += [f"{cidr} in {place}" for cidr in sorted(added)]


def network_acl_client(blocklist: Blocklist) -> Callable[[str], EC2Client]:
    """The EC2 client of the account and Region each network ACL lives in: the member's through its sweep role."""

    def ec2_for(acl_id: str) -> EC2Client:
        place = blocklist.network_acl_place(acl_id)
        if place is None:
            client: EC2Client = aws.client("ec2")
            return client
        account, region = place
        member: EC2Client = workload_client("ec2", account, region, "sweep_blocklist", "sweep")
        return member

    return ec2_for
