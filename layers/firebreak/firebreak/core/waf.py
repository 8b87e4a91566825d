"""WAFv2 IPSet writes: read-merge-write under the LockToken, retried with jitter on lock conflicts."""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak.core.errors import BlockFailed

if TYPE_CHECKING:
    from mypy_boto3_wafv2 import WAFV2Client

IPSET_CAPACITY = 10_000
LOCK_ATTEMPTS = 6
T = TypeVar("T")


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


def _read(waf: WAFV2Client, ipset: IpSetRef) -> tuple[set[str], str]:
    response = waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)
    return {_canonical(address) for address in response["IPSet"]["Addresses"]}, response["LockToken"]


def _locked_rewrite(
    waf: WAFV2Client,
    ipset: IpSetRef,
    plan: Callable[[set[str], int], tuple[list[str] | None, T]],
    sleep: Callable[[float], None],
) -> T:
    """Read the set, let `plan` choose the new list (None: nothing to write) and the result, write under the LockToken.

    UpdateIPSet replaces the whole list, so a change is always planned against what was read with the same token.
    """
    for attempt in range(LOCK_ATTEMPTS):
        current, token = _read(waf, ipset)
        addresses, result = plan(current, attempt)
        if addresses is None:
            return result
        try:
            waf.update_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id, Addresses=addresses, LockToken=token)
        except ClientError as error:
            if error.response["Error"]["Code"] != "WAFOptimisticLockException":
                raise
            # Another writer changed the set between our read and write: re-read, with jitter so writers spread out.
            sleep(random.uniform(0.05, 0.2) * 2**attempt)
            continue
        return result
    raise BlockFailed(f"IPSet {ipset.name} stayed locked by other writers after {LOCK_ATTEMPTS} attempts")


def add_addresses(
    waf: WAFV2Client,
    ipset: IpSetRef,
    cidrs: Iterable[str],
    sleep: Callable[[float], None] = time.sleep,
) -> AddResult:
    """Add CIDRs to the IPSet, keeping what is there; one UpdateIPSet at most when nothing conflicts."""
    wanted = [_canonical(cidr) for cidr in cidrs]

    def plan(current: set[str], attempt: int) -> tuple[list[str] | None, AddResult]:
        missing = [cidr for cidr in wanted if cidr not in current]
        present = tuple(cidr for cidr in wanted if cidr in current)
        if not missing:
            return None, AddResult(added=(), already_present=present, update_calls=attempt)
        if len(current) + len(missing) > IPSET_CAPACITY:
            raise BlockFailed(f"IPSet {ipset.name} would exceed {IPSET_CAPACITY} addresses")
        return sorted(current | set(missing)), AddResult(tuple(missing), present, attempt + 1)

    return _locked_rewrite(waf, ipset, plan, sleep)


@dataclass(frozen=True)
class SyncResult:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    update_calls: int


def sync_addresses(
    waf: WAFV2Client,
    ipset: IpSetRef,
    wanted: Iterable[str],
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Make the IPSet hold exactly `wanted`; no UpdateIPSet at all when it already does."""
    target = {_canonical(cidr) for cidr in wanted}
    if len(target) > IPSET_CAPACITY:
        raise BlockFailed(f"IPSet {ipset.name} would exceed {IPSET_CAPACITY} addresses")

    def plan(current: set[str], attempt: int) -> tuple[list[str] | None, SyncResult]:
        added, removed = sorted(target - current), sorted(current - target)
        if not added and not removed:
            return None, SyncResult(added=(), removed=(), unchanged=len(current), update_calls=attempt)
        return sorted(target), SyncResult(tuple(added), tuple(removed), len(current & target), attempt + 1)

    return _locked_rewrite(waf, ipset, plan, sleep)


@dataclass(frozen=True)
class RemoveResult:
    removed: tuple[str, ...]
    absent: tuple[str, ...]
    update_calls: int


def present_addresses(waf: WAFV2Client, ipset: IpSetRef) -> frozenset[str]:
    """The IPSet's addresses now, in the canonical form Firebreak writes and records them in."""
    return frozenset(_read(waf, ipset)[0])


def remove_addresses(
    waf: WAFV2Client,
    ipset: IpSetRef,
    cidrs: Iterable[str],
    sleep: Callable[[float], None] = time.sleep,
) -> RemoveResult:
    """Remove CIDRs from the IPSet, keeping everything else; leaving the set empty is allowed and handled."""
    unwanted = [_canonical(cidr) for cidr in cidrs]

    def plan(current: set[str], attempt: int) -> tuple[list[str] | None, RemoveResult]:
        present = [cidr for cidr in unwanted if cidr in current]
        absent = tuple(cidr for cidr in unwanted if cidr not in current)
        if not present:
            return None, RemoveResult(removed=(), absent=absent, update_calls=attempt)
        return sorted(current - set(present)), RemoveResult(tuple(present), absent, attempt + 1)

    return _locked_rewrite(waf, ipset, plan, sleep)


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
    needed = frozenset(_canonical(cidr) for cidr in required or ())

    def plan(read: set[str], attempt: int) -> tuple[list[str] | None, Convergence]:
        current = frozenset(read)
        if required is not None and needed <= current:
            return None, Convergence(ipset, current, current, attempt)
        wanted = frozenset(_canonical(cidr) for cidr in desired())
        target = wanted if prune else wanted | current
        if target == current:
            return None, Convergence(ipset, current, current, attempt)
        if len(target) > limit:
            raise BlockFailed(f"IPSet {ipset.name} would hold {len(target)} addresses, over its limit of {limit}")
        return sorted(target), Convergence(ipset, current, target, attempt + 1)

    return _locked_rewrite(waf, ipset, plan, sleep)
