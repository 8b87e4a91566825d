"""Safety guards for blocking: which remote addresses Firebreak may put on a block list, and as what CIDR."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from firebreak.core.settings import IpNetwork


@dataclass(frozen=True)
class Refusal:
    address: str
    reason: str


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """One address in the form WAF matches: IPv4-mapped IPv6 becomes the IPv4 address it carries."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            raise ValueError("a zone index only means something on one host's link")
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def canonical(address: str) -> str:
    """The one spelling of an address, so two spellings never count twice."""
    return _parse(address).compressed


def host_cidr(address: str) -> str:
    """The single-host CIDR WAF wants: /32 for IPv4, /128 for IPv6, in compressed form."""
    ip = _parse(address)
    return f"{ip.compressed}/{ip.max_prefixlen}"


def refusal_reason(
    address: str, allow_list: Iterable[IpNetwork] = (), owned: Mapping[str, str] | None = None
) -> str | None:
    """Why this address must never be blocked, or None when blocking it is safe.

    owned maps the account's own public addresses (Elastic IPs, NAT gateways) to what they are.
    """
    try:
        ip = _parse(address)
    except ValueError:
        return "not a single IP address"
    if ip.is_unspecified or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved:
        return "special-purpose address"
    # is_global is False for private, CGNAT, documentation and benchmarking ranges alike.
    if not ip.is_global:
        return "not a globally routable address"
    for network in allow_list:
        if ip.version == network.version and ip in network:
            return f"allow-listed by {network.with_prefixlen}"
    if owned and ip.compressed in owned:
        return f"the account's own {owned[ip.compressed]}"
    return None


def _canonical_or_same(address: str) -> str:
    try:
        return canonical(address)
    except ValueError:
        return address


def partition(
    addresses: Iterable[str], allow_list: Iterable[IpNetwork], limit: int, owned: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], tuple[Refusal, ...]]:
    """Split addresses into those that may be blocked (at most `limit`) and refusals with reasons."""
    allowed: list[str] = []
    refused: list[Refusal] = []
    networks = tuple(allow_list)
    for address in dict.fromkeys(_canonical_or_same(address) for address in addresses):
        reason = refusal_reason(address, networks, owned)
        if reason is None and len(allowed) >= limit:
            reason = f"over the cap of {limit} addresses per incident"
        if reason is None:
            allowed.append(address)
        else:
            refused.append(Refusal(address, reason))
    return tuple(allowed), tuple(refused)
