"""WAFv2 IPSet writes: read-merge-write under the LockToken, retried with jitter on lock conflicts."""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from firebreak import aws
from firebreak.errors import BlockFailed

if TYPE_CHECKING:
    from mypy_boto3_wafv2 import WAFV2Client

IPSET_CAPACITY = 10_000
LOCK_ATTEMPTS = 6


@dataclass(frozen=True)
class IpSetRef:
    name: str
    id: str
    scope: Literal["CLOUDFRONT", "REGIONAL"]
    arn: str

    @classmethod
    def from_arn(cls, arn: str) -> IpSetRef:
        """arn:aws:wafv2:region:account:regional|global/ipset/NAME/ID."""
        scope_part, _, name, ipset_id = arn.split(":", 5)[5].split("/")
        return cls(name=name, id=ipset_id, scope="CLOUDFRONT" if scope_part == "global" else "REGIONAL", arn=arn)


def client_for(ipset: IpSetRef) -> WAFV2Client:
    """The WAF client that manages this IPSet: CLOUDFRONT-scope sets live in us-east-1 wherever the stack runs."""
    client: WAFV2Client = aws.client("wafv2", region="us-east-1" if ipset.scope == "CLOUDFRONT" else None)
    return client


@dataclass(frozen=True)
class AddResult:
    added: tuple[str, ...]
    already_present: tuple[str, ...]
    update_calls: int


def _canonical(cidr: str) -> str:
    return ipaddress.ip_network(cidr, strict=False).compressed


def add_addresses(
    waf: WAFV2Client,
    ipset: IpSetRef,
    cidrs: Iterable[str],
    sleep: Callable[[float], None] = time.sleep,
) -> AddResult:
    """Add CIDRs to the IPSet, keeping what is there; one UpdateIPSet at most when nothing conflicts."""
    wanted = [_canonical(cidr) for cidr in cidrs]
    for attempt in range(LOCK_ATTEMPTS):
        response = waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)
        current = {_canonical(address) for address in response["IPSet"]["Addresses"]}
        missing = [cidr for cidr in wanted if cidr not in current]
        present = tuple(cidr for cidr in wanted if cidr in current)
        if not missing:
            return AddResult(added=(), already_present=present, update_calls=attempt)
        if len(current) + len(missing) > IPSET_CAPACITY:
            raise BlockFailed(f"IPSet {ipset.name} would exceed {IPSET_CAPACITY} addresses")
        try:
            waf.update_ip_set(
                Name=ipset.name,
                Scope=ipset.scope,
                Id=ipset.id,
                Addresses=sorted(current | set(missing)),
                LockToken=response["LockToken"],
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "WAFOptimisticLockException":
                raise
            # Another writer changed the set between our read and write: re-read, with jitter so writers spread out.
            sleep(random.uniform(0.05, 0.2) * 2**attempt)
            continue
        return AddResult(added=tuple(missing), already_present=present, update_calls=attempt + 1)
    raise BlockFailed(f"IPSet {ipset.name} stayed locked by other writers after {LOCK_ATTEMPTS} attempts")


@dataclass(frozen=True)
class Convergence:
    """An IPSet before and after it was brought to the table's state, and the UpdateIPSet calls that took."""

    ipset: IpSetRef
    before: frozenset[str]
    after: frozenset[str]
    update_calls: int

    @property
    def added(self) -> frozenset[str]:
        return self.after - self.before

    @property
    def removed(self) -> frozenset[str]:
        return self.before - self.after


def read_cidrs(waf: WAFV2Client, ipset: IpSetRef) -> frozenset[str]:
    response = waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)
    return frozenset(_canonical(address) for address in response["IPSet"]["Addresses"])


def converge(
    waf: WAFV2Client,
    ipset: IpSetRef,
    desired: Callable[[], Iterable[str]],
    prune: bool,
    required: Iterable[str] | None = None,
    limit: int = IPSET_CAPACITY,
    sleep: Callable[[float], None] = time.sleep,
) -> Convergence:
    """Make the IPSet hold every desired CIDR (and, with prune, nothing else); no write when it already does.

    With required, a set that already holds those CIDRs is left alone even if desired() has more: a block step
    writes only for its own addresses, and then writes everything recorded so far, so the next ones need not write.

    The set is read before desired() is asked, so every write rests on a table at least as new as the set it
    replaces: an address recorded before a writer read the set is in that writer's update, and an update based on
    an older set fails its LockToken. Concurrent writers therefore converge; none undoes another's addresses.
    """
    calls = 0
    needed = frozenset(_canonical(cidr) for cidr in required or ())
    for attempt in range(LOCK_ATTEMPTS):
        response = waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)
        current = frozenset(_canonical(address) for address in response["IPSet"]["Addresses"])
        if required is not None and needed <= current:
            return Convergence(ipset, current, current, calls)
        wanted = frozenset(_canonical(cidr) for cidr in desired())
        target = wanted if prune else wanted | current
        if target == current:
            return Convergence(ipset, current, current, calls)
        if len(target) > limit:
            raise BlockFailed(f"IPSet {ipset.name} would hold {len(target)} addresses, over its limit of {limit}")
        calls += 1
        try:
            waf.update_ip_set(
                Name=ipset.name,
                Scope=ipset.scope,
                Id=ipset.id,
                Addresses=sorted(target),
                LockToken=response["LockToken"],
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "WAFOptimisticLockException":
                raise
            sleep(random.uniform(0.05, 0.2) * 2**attempt)
            continue
        return Convergence(ipset, current, target, calls)
    raise BlockFailed(f"IPSet {ipset.name} stayed locked by other writers after {LOCK_ATTEMPTS} attempts")
