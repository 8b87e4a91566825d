"""The block list's truth: one DynamoDB item per blocked CIDR, with its expiry, sightings and network ACL wishes.

The WAF IPSets and network ACLs are made to match this table, never the other way round: a block step records its
addresses here first (atomic updates, so concurrent incidents lose nothing), marked `waf_pending` when an IPSet still
lacks them; the IPSets' one writer, on the table's stream, writes everything pending at once and clears the marks;
the sweep deletes expired items and reconciles the sets, repairing whatever was changed by hand.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from firebreak.core.aws import conditional

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_DESERIALIZER = TypeDeserializer()
# Items that are no block: where a member account's network ACL lives (no `family`, so entries() skips them).
_PLACE_PREFIX = "place#network-acl#"
_LEASE_PREFIX = "lease#"
# Every attribute name goes through ExpressionAttributeNames: several of them are DynamoDB reserved words.
_NAMES = {
    "#cidr": "cidr",
    "#family": "family",
    "#expires": "expires_at",
    "#first": "first_blocked",
    "#last": "last_seen",
    "#incidents": "incidents",
    "#sightings": "sightings",
    "#seen": "nacl_seen",
    "#rules": "nacl_rules",
    "#pending": "waf_pending",
    "#failed": "waf_failed",
}
# DynamoDB's most keys in one BatchGetItem.
_BATCH_GET_KEYS = 100


@dataclass(frozen=True)
class Entry:
    """One blocked CIDR. Times are epoch seconds; expires_at 0 means never. nacl_seen: ACL id -> last wish (ms)."""

    cidr: str
    family: int
    expires_at: int
    first_blocked: int = 0
    last_seen: int = 0
    incidents: tuple[str, ...] = ()
    nacl_seen: tuple[tuple[str, int], ...] = ()
    nacl_rules: tuple[tuple[str, int], ...] = ()
    waf_pending: bool = False

    def active(self, now: int) -> bool:
        return self.expires_at == 0 or self.expires_at > now

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Entry:
        data = {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}
        return cls(
            cidr=str(data["cidr"]),
            family=int(data.get("family", 0)),
            expires_at=int(data.get("expires_at", 0)),
            first_blocked=int(data.get("first_blocked", 0)),
            last_seen=int(data.get("last_seen", 0)),
            incidents=tuple(sorted(data.get("incidents") or ())),
            nacl_seen=_int_pairs(data.get("nacl_seen")),
            nacl_rules=_int_pairs(data.get("nacl_rules")),
            waf_pending=bool(data.get("waf_pending")),
        )


@dataclass(frozen=True)
class Recorded:
    """What one sighting did to the table: `new` when no active block existed before it."""

    cidr: str
    new: bool
    expires_at: int
    first_blocked: int


def _int_pairs(value: Any) -> tuple[tuple[str, int], ...]:
    mapping: dict[str, Decimal] = value or {}
    return tuple(sorted((key, int(number)) for key, number in mapping.items()))


@dataclass(frozen=True)
class Blocklist:
    dynamodb: DynamoDBClient
    table: str

    def record(
        self, cidr: str, family: int, incident_id: str, now: int, ttl_seconds: int, pending: bool = False
    ) -> Recorded:
        """Block or re-sight a CIDR: a fresh expiry from now (0 = never), one more sighting, the incident noted.

        pending marks it for the IPSets' writer (an IPSet lacks it); a CIDR already in place is left unmarked.
        """
        expires_at = now + ttl_seconds if ttl_seconds else 0
        values: dict[str, Any] = {
            ":family": {"N": str(family)},
            ":expires": {"N": str(expires_at)},
            ":now": {"N": str(now)},
            ":empty": {"M": {}},
            ":incident": {"SS": [incident_id]},
            ":one": {"N": "1"},
        }
        if pending:
            values[":true"] = {"BOOL": True}
        response = self.dynamodb.update_item(
            TableName=self.table,
            Key={"cidr": {"S": cidr}},
            UpdateExpression=(
                "SET #family = :family, #expires = :expires, #last = :now, #first = if_not_exists(#first, :now),"
                " #seen = if_not_exists(#seen, :empty), #rules = if_not_exists(#rules, :empty)"
                + (", #pending = :true" if pending else "")
                + " ADD #incidents :incident, #sightings :one"
                # A new wish for a write clears what the writer last said it could not do.
                + (" REMOVE #failed" if pending else "")
            ),
            ExpressionAttributeNames={
                key: name
                for key, name in _NAMES.items()
                if key != "#cidr" and (pending or key not in {"#pending", "#failed"})
            },
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        old = Entry.from_item(response["Attributes"]) if response.get("Attributes") else None
        return Recorded(
            cidr=cidr,
            new=old is None or not old.active(now),
            expires_at=expires_at,
            first_blocked=old.first_blocked if old else now,
        )

    def entries(self, projection: str | None = None) -> Iterator[Entry]:
        """Every blocked CIDR (leases left out), read consistently: a writer must see every record made before it."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "FilterExpression": "attribute_exists(#family)",
            "ExpressionAttributeNames": {"#family": "family"},
        }
        if projection:
            names = {f"#p{index}": name for index, name in enumerate(projection.split(","))}
            arguments["ProjectionExpression"] = ", ".join(names)
            arguments["ExpressionAttributeNames"] = {**arguments["ExpressionAttributeNames"], **names}
        for page in self.dynamodb.get_paginator("scan").paginate(**arguments):
            yield from (Entry.from_item(item) for item in page["Items"])

    def active(self, now: int) -> dict[int, set[str]]:
        """IP version -> the CIDRs that must be blocked now: what that version's IPSets must hold."""
        by_family: dict[int, set[str]] = {4: set(), 6: set()}
        for entry in self.entries("cidr,family,expires_at"):
            if entry.active(now):
                by_family.setdefault(entry.family, set()).add(entry.cidr)
        return by_family

    def pending(self, cidrs: Iterable[str]) -> dict[str, str]:
        """Which of these CIDRs still wait for the IPSets' writer, read consistently (BatchGetItem, no Scan): each
        with why the writer could not place it, or "" while it may still.

        A CIDR whose item is gone (released meanwhile) waits for nothing.
        """
        wanted = sorted(set(cidrs))
        waiting: dict[str, str] = {}
        for start in range(0, len(wanted), _BATCH_GET_KEYS):
            keys: list[Any] = [{"cidr": {"S": cidr}} for cidr in wanted[start : start + _BATCH_GET_KEYS]]
            while keys:
                request: Any = {
                    self.table: {
                        "Keys": keys,
                        "ConsistentRead": True,
                        "ProjectionExpression": "#cidr, #pending, #failed",
                        "ExpressionAttributeNames": {
                            "#cidr": "cidr",
                            "#pending": "waf_pending",
                            "#failed": "waf_failed",
                        },
                    }
                }
                response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    if item.get("waf_pending", {}).get("BOOL"):
                        waiting[item["cidr"]["S"]] = item.get("waf_failed", {}).get("S", "")
                # Unprocessed keys (throttling) are asked again; the caller's loop paces the asking.
                unprocessed: Any = response.get("UnprocessedKeys") or {}
                keys = list((unprocessed.get(self.table) or {}).get("Keys") or [])
        return waiting

    def written(self, cidr: str) -> bool:
        """Clear the CIDR's pending mark: it is in every IPSet of its family. False if it was not marked (or gone)."""
        cleared = conditional(
            self.dynamodb.update_item,
            TableName=self.table,
            Key={"cidr": {"S": cidr}},
            UpdateExpression="REMOVE #pending",
            ConditionExpression="attribute_exists(#pending)",
            ExpressionAttributeNames={"#pending": "waf_pending"},
        )
        return cleared is not None

    def not_written(self, cidr: str, reason: str) -> None:
        """The writer could not place the pending CIDR: its waiting step stops waiting and writes it itself."""
        conditional(
            self.dynamodb.update_item,
            TableName=self.table,
            Key={"cidr": {"S": cidr}},
            UpdateExpression="SET #failed = :reason",
            ConditionExpression="attribute_exists(#pending) AND attribute_not_exists(#failed)",
            ExpressionAttributeNames={"#pending": "waf_pending", "#failed": "waf_failed"},
            ExpressionAttributeValues={":reason": {"S": reason or "not written"}},
        )

    def delete_expired(self, entry: Entry, now: int) -> bool:
        """Delete an expired entry, unless a re-sighting extended it since it was read."""
        deleted = conditional(
            self.dynamodb.delete_item,
            TableName=self.table,
            Key={"cidr": {"S": entry.cidr}},
            ConditionExpression="#expires > :zero AND #expires <= :now",
            ExpressionAttributeNames={"#expires": "expires_at"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":now": {"N": str(now)}},
        )
        return deleted is not None

    def entry(self, cidr: str) -> Entry | None:
        """The CIDR's item, read consistently; None when the table holds no block for it."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"cidr": {"S": cidr}}, ConsistentRead=True).get("Item")
        return Entry.from_item(item) if item else None

    def place_network_acl(self, acl_id: str, account_id: str, region: str) -> None:
        """Note the account and Region a network ACL lives in, so the sweep can reach it there."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={"cidr": {"S": _PLACE_PREFIX + acl_id}, "account": {"S": account_id}, "region": {"S": region}},
        )

    def network_acl_place(self, acl_id: str) -> tuple[str, str] | None:
        """(account, Region) of a network ACL outside the stack's own account and Region; None for one inside it."""
        key = {"cidr": {"S": _PLACE_PREFIX + acl_id}}
        item = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return (item["account"]["S"], item["region"]["S"]) if item else None

    def forget(self, cidr: str) -> None:
        """Lift the CIDR's block for good (a release): the next writer or sweep takes it out of every list."""
        self.dynamodb.delete_item(TableName=self.table, Key={"cidr": {"S": cidr}})

    def want_network_acl(self, cidr: str, nacl_id: str, at_ms: int) -> bool:
        """Note that the CIDR was just seen attacking behind this network ACL; False if it is no longer blocked."""
        return self._update_if_blocked(cidr, "SET #seen.#acl = :at", nacl_id, {":at": {"N": str(at_ms)}})

    def set_network_acl_rule(self, cidr: str, nacl_id: str, rule: int | None) -> bool:
        """Record which rule of the ACL holds the CIDR's deny entries (None: it holds none)."""
        if rule is None:
            return self._update_if_blocked(cidr, "REMOVE #rules.#acl", nacl_id, {})
        return self._update_if_blocked(cidr, "SET #rules.#acl = :rule", nacl_id, {":rule": {"N": str(rule)}})

    def _update_if_blocked(self, cidr: str, expression: str, nacl_id: str, values: dict[str, Any]) -> bool:
        names = {"#cidr": "cidr", "#acl": nacl_id, "#seen": "nacl_seen", "#rules": "nacl_rules"}
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"cidr": {"S": cidr}},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(#cidr)",
            # DynamoDB refuses names the expressions do not use.
            "ExpressionAttributeNames": {
                key: name for key, name in names.items() if key in expression or key == "#cidr"
            },
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        return conditional(self.dynamodb.update_item, **arguments) is not None

    @contextmanager
    def lease(self, name: str, seconds: float = 20.0) -> Iterator[Lease]:
        """Try once to hold the named lease (one writer at a time); yields it, held or not, and releases it on exit.

        A lease outlives a crashed holder only until it expires, so a Lambda timeout cannot wedge the other writers.
        """
        owner = str(uuid.uuid4())
        lease = Lease(held=self._take_lease(name, owner, seconds), owner=owner)
        try:
            yield lease
        finally:
            if lease.held:
                self._release(name, lease)

    def _take_lease(self, name: str, owner: str, seconds: float) -> bool:
        now = _ms(time.time())
        taken = conditional(
            self.dynamodb.put_item,
            TableName=self.table,
            Item={
                "cidr": {"S": _LEASE_PREFIX + name},
                "owner": {"S": owner},
                "lease_until": {"N": str(now + _ms(seconds))},
            },
            ConditionExpression="attribute_not_exists(#cidr) OR #until < :now",
            ExpressionAttributeNames={"#cidr": "cidr", "#until": "lease_until"},
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
        return taken is not None

    def _release(self, name: str, lease: Lease) -> None:
        # Conditional on still owning the lease: one that outlived its time is the next writer's.
        conditional(
            self.dynamodb.delete_item,
            TableName=self.table,
            Key={"cidr": {"S": _LEASE_PREFIX + name}},
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": lease.owner}},
        )


@dataclass
class Lease:
    """A try at a lease: truthy when held."""

    held: bool
    owner: str

    def __bool__(self) -> bool:
        return self.held


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
