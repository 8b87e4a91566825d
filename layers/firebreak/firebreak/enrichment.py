"""Verdicts on remote addresses from what is known without leaving the account: the finding and the allow list."""

from __future__ import annotations

from collections.abc import Iterable

from firebreak.addresses import refusal_reason
from firebreak.models import Incident, RemoteIpDetails, Verdict
from firebreak.settings import IpNetwork

# GuardDuty found these on a threat list, or saw them command a compromised host.
_MALICIOUS_MARKERS = ("MaliciousIPCaller", "TorIPCaller", "C&CActivity", "BlackholeTraffic", "DropPoint")
# The address was seen attacking this account: enough to block, not proof of a known-bad actor.
_SUSPICIOUS_MARKERS = ("BruteForce", "PortProbe", "PortSweep", "Recon:", "UnauthorizedAccess:")


def verdict_for(address: str, incident: Incident, allow_list: Iterable[IpNetwork]) -> Verdict:
    """Benign when allow-listed or not routable; otherwise judged by what GuardDuty says of it."""
    evidence = [_describe(detail) for detail in incident.remote_ip_details if detail.address == address]
    reason = refusal_reason(address, allow_list)
    if reason is not None:
        return Verdict(address, "benign", 0, (reason, *filter(None, evidence)))
    if any(marker in incident.finding_type for marker in _MALICIOUS_MARKERS):
        return Verdict(address, "malicious", 90, (f"finding {incident.finding_type}", *filter(None, evidence)))
    if any(marker in incident.finding_type for marker in _SUSPICIOUS_MARKERS):
        return Verdict(address, "suspicious", 60, (f"finding {incident.finding_type}", *filter(None, evidence)))
    return Verdict(address, "unknown", 50, tuple(filter(None, evidence)))


def _describe(detail: RemoteIpDetails) -> str:
    # GuardDuty writes "-1" for an ASN it does not know.
    parts = (detail.organization, f"AS{detail.asn}" if detail.asn and detail.asn != "-1" else None, detail.country)
    return ", ".join(part for part in parts if part)
