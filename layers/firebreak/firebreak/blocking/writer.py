"""The IPSets' one writer: every address pending in the block list goes into its IPSets, one UpdateIPSet per set.

Block steps only record what they want blocked (marked `waf_pending`); the table's stream starts this writer once
per batch window with one invocation at a time, so a storm of any size costs one write per IPSet per window. A mark
is cleared only once every IPSet of the address's version holds it: that is what a waiting block step reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from firebreak.blocking.blocklist import Blocklist
from firebreak.core.aws import is_transient
from firebreak.core.errors import BlockFailed
from firebreak.core.settings import Settings
from firebreak.core.waf import IpSetRef, converge

# AWS documents about one Create/Put/Update request per second per account and Region for WAF: a writer that has
# more than one IPSet to write spaces its writes that far apart.
WRITE_SPACING_SECONDS = 1.0


@dataclass(frozen=True)
class Written:
    placed: tuple[str, ...]
    failures: tuple[str, ...]
    update_ip_set_calls: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "placed": list(self.placed),
            "failures": list(self.failures),
            "update_ip_set_calls": self.update_ip_set_calls,
        }


def write_pending(
    blocklist: Blocklist,
    waf_for: Callable[[IpSetRef], Any],
    settings: Settings,
    now: int,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> Written:
    """Bring every IPSet that lacks a pending address up to the table (adding only), then clear the placed marks.

    The sweep, not the writer, removes what the table no longer holds. A set that cannot be written (full, locked
    throughout, refused) is reported and its addresses are marked so: their block steps stop waiting, try the write
    themselves and report why it failed. Throttling and 5xx are raised, for Lambda to retry the batch.
    """
    sleep, monotonic = sleep or time.sleep, monotonic or time.monotonic
    active = [entry for entry in blocklist.entries("cidr,family,expires_at,waf_pending") if entry.active(now)]
    pending = {entry.cidr: entry.family for entry in active if entry.waf_pending}
    # The scan that found the pending addresses also says what each set must hold: only a write retried after a
    # LockToken conflict reads the table again. The writer only adds, so a set read after the scan loses nothing;
    # what was recorded since the scan is pending and starts the writer again (or its step writes it).
    scanned: dict[int, set[str]] = {}
    for entry in active:
        scanned.setdefault(entry.family, set()).add(entry.cidr)
    placed_in: dict[str, list[frozenset[str]]] = {cidr: [] for cidr in pending}
    failures: list[str] = []
    calls = 0
    last_write: float | None = None
    for version in sorted(set(pending.values())):
        mine = [cidr for cidr, family in pending.items() if family == version]
        for arn in settings.ipset_arns(version):
            ipset = IpSetRef.from_arn(arn)
            if last_write is not None:
                sleep(max(0.0, last_write + WRITE_SPACING_SECONDS - monotonic()))
            desired = _scanned_first(blocklist, now, version, scanned.get(version, set()))
            try:
                result = converge(waf_for(ipset), ipset, desired, prune=False, required=mine, sleep=sleep)
            except (BlockFailed, ClientError) as error:
                # Throttling and 5xx are Lambda's to retry (the batch again); a refusal would only fail again.
                if isinstance(error, ClientError) and is_transient(error):
                    raise
                failures.append(f"IPSet {ipset.name}: {error}")
                for cidr in mine:
                    blocklist.not_written(cidr, failures[-1])
                continue
            if result.update_calls:
                calls += result.update_calls
                last_write = monotonic()
            for cidr in mine:
                placed_in[cidr].append(result.after)
    placed = []
    for cidr, family in pending.items():
        sets = placed_in[cidr]
        if len(sets) == len(settings.ipset_arns(family)) and all(cidr in after for after in sets):
            blocklist.written(cidr)
            placed.append(cidr)
    return Written(tuple(sorted(placed)), tuple(failures), calls)


def _scanned_first(blocklist: Blocklist, now: int, version: int, scanned: set[str]) -> Callable[[], set[str]]:
    """What one set must hold: the writer's scan the first time it is asked, the table read again after that."""
    asked: list[bool] = []

    def desired() -> set[str]:
        asked.append(True)
        return set(scanned) if len(asked) == 1 else blocklist.active(now)[version]

    return desired
