"""Syncing one feed into the shared feed IPSets, writing only the difference.

Every feed's entries are kept in the feed indicator table (feed, cidr), and each IPSet holds the union over the
configured feeds. So removing an entry from one feed never removes it while another feed still lists it, a feed
that failed keeps its entries, and a feed dropped from the configuration loses its entries at the next sync. A feed
that cannot be fetched or parsed raises FeedFetchFailed or FeedParseFailed before anything is written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from firebreak.core.errors import BlockFailed, FeedParseFailed
from firebreak.core.waf import IpSetRef, sync_addresses
from firebreak.feeds.config import MAX_LISTED_REJECTIONS, Feed, FeedSettings, Rejection, reason_counts, screen
from firebreak.feeds.formats import parse_document
from firebreak.feeds.sources import fetch

_BATCH = 25
_BATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class FeedReport:
    """What one sync did to one feed: the counts the run report, logs and metrics carry."""

    feed: str
    status: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    rejections: tuple[Rejection, ...] = ()
    ipset_update_calls: int = 0
    ipset_size: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "status": self.status,
            "added": len(self.added),
            "removed": len(self.removed),
            "rejected": len(self.rejections),
            "unchanged": self.unchanged,
            "rejected_by_reason": reason_counts(self.rejections),
            "rejections": [r.to_dict() for r in self.rejections[:MAX_LISTED_REJECTIONS]],
            "ipset_update_calls": self.ipset_update_calls,
            "ipset_size": self.ipset_size,
        }


def held_by(dynamodb: Any, table: str, feed: str) -> set[str]:
    """The CIDRs the table says this feed contributes."""
    held: set[str] = set()
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="feed = :feed",
        ExpressionAttributeValues={":feed": {"S": feed}},
        ProjectionExpression="cidr",
    )
    for page in pages:
        held.update(item["cidr"]["S"] for item in page["Items"])
    return held


def write_membership(dynamodb: Any, table: str, feed: str, added: Iterable[str], removed: Iterable[str]) -> None:
    requests: list[dict[str, Any]] = [
        {"PutRequest": {"Item": {"feed": {"S": feed}, "cidr": {"S": cidr}}}} for cidr in added
    ]
    requests += [{"DeleteRequest": {"Key": {"feed": {"S": feed}, "cidr": {"S": cidr}}}} for cidr in removed]
    for start in range(0, len(requests), _BATCH):
        pending = {table: requests[start : start + _BATCH]}
        for _ in range(_BATCH_ATTEMPTS):
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise BlockFailed(f"feed table {table} kept refusing writes for feed {feed}")


def admit(wanted: Sequence[str], held: set[str], others: set[str], ceiling: int) -> tuple[list[str], list[str]]:
    """Entries the IPSet can take within its ceiling: what is already there first, then new ones in feed order."""
    union = set(others) | (held & set(wanted))
    kept, full = [], []
    for cidr in wanted:
        if cidr in held or cidr in others:
            kept.append(cidr)
        elif len(union) < ceiling:
            union.add(cidr)
            kept.append(cidr)
        else:
            full.append(cidr)
    return kept, full


def family(cidr: str) -> int:
    return ipaddress.ip_network(cidr).version


def sync_feed(
    feed: Feed,
    accepted: Sequence[str],
    rejections: Sequence[Rejection],
    configured: Sequence[str],
    settings: FeedSettings,
    dynamodb: Any,
    waf: Any,
    dry_run: bool = False,
) -> FeedReport:
    """Record the feed's entries and bring both feed IPSets to the union of every configured feed's entries."""
    table = settings.indicator_table
    held = held_by(dynamodb, table, feed.name)
    others: set[str] = set()
    for name in configured:
        if name != feed.name:
            others |= held_by(dynamodb, table, name)
    kept: list[str] = []
    refused = list(rejections)
    for version in (4, 6):
        family_kept, full = admit(
            [c for c in accepted if family(c) == version],
            {c for c in held if family(c) == version},
            {c for c in others if family(c) == version},
            settings.ipset_ceiling,
        )
        kept += family_kept
        refused += [Rejection(c, "feed", f"feed IPSet is full ({settings.ipset_ceiling} entries)") for c in full]
    added = tuple(c for c in kept if c not in held)
    removed = tuple(sorted(held - set(kept)))
    union = others | set(kept)
    sizes = {f"ipv{v}": sum(1 for c in union if family(c) == v) for v in (4, 6)}
    if dry_run:
        return FeedReport(feed.name, "PLANNED", added, removed, len(kept) - len(added), tuple(refused), 0, sizes)
    write_membership(dynamodb, table, feed.name, added, removed)
    calls = 0
    for version, arn in ((4, settings.ipv4_set_arn), (6, settings.ipv6_set_arn)):
        result = sync_addresses(waf, IpSetRef.from_arn(arn), [c for c in union if family(c) == version])
        calls += result.update_calls
    return FeedReport(feed.name, "SYNCED", added, removed, len(kept) - len(added), tuple(refused), calls, sizes)


def fetch_and_sync(
    feed: Feed,
    configured: Sequence[str],
    settings: FeedSettings,
    client: Callable[[str], Any],
    dry_run: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FeedReport:
    """Fetch the feed, validate every entry and sync the feed IPSets with what passed."""
    document = fetch(feed, client("secretsmanager"), client("s3"))
    parsed = parse_document(feed, document, clock())
    if not parsed.candidates and not feed.allow_empty:
        # An error page or an emptied file must not read as "the feed now lists nothing" and empty the set.
        raise FeedParseFailed(f"feed {feed.name} has no entries ({len(parsed.rejections)} refused); set allow_empty")
    screened = screen(parsed.candidates, settings, settings.cap_for(feed))
    rejections = parsed.rejections + screened.rejections
    return sync_feed(
        feed, screened.accepted, rejections, configured, settings, client("dynamodb"), client("wafv2"), dry_run
    )
