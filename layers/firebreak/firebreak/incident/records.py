"""The incident record as DynamoDB holds it, read back into plain data and models.

One item per incident (key `incident_id`), written by the state machines' DynamoDB tasks: `status` and
`status_history` (a list of {status, at}); `actions`, what the response did (a list of maps: type, target, outcome,
reason, before, after, at); `release_actions`, what releases did (same shape); `blocked_addresses`, the CIDRs the
incident holds in the block lists now, and `added_addresses`, those it put there itself; the finding as `incident`
(JSON text); `execution_arn`, `opened_at`, `closed_at`, `first_seen_at`; and, once rendered, the post-incident
`report` (Markdown). No TTL: incidents are evidence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from firebreak.core.errors import IncidentNotFound
from firebreak.core.models import Action, Incident, IncidentStatus, Mode, Outcome, Playbook, Triage, actions_from

if TYPE_CHECKING:
    from firebreak.triage.approvals import ApprovalRequest

_DESERIALIZER = TypeDeserializer()
SCAN_CHUNK = 20  # CIDRs per scan filter, well inside DynamoDB's expression size limit


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item of typed attribute values ({"S": …}) as plain data; numbers become int or float."""
    return {key: _undecimal(_DESERIALIZER.deserialize(value)) for key, value in item.items()}


def _undecimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _undecimal(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        items = [_undecimal(item) for item in value]
        return sorted(items) if isinstance(value, set) else items
    return value


def seconds_between(start: str, end: str) -> float:
    """Seconds from one ISO-8601 timestamp to another (GuardDuty and Step Functions both write a trailing Z)."""
    return (_parse(end) - _parse(start)).total_seconds()


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


@dataclass(frozen=True)
class StatusChange:
    status: str
    at: str


@dataclass(frozen=True)
class IncidentRecord:
    """One incident item; `actions` is None when the response never recorded any (it did not finish)."""

    incident_id: str
    status: str
    playbook: str | None = None
    mode: str | None = None
    incident: Incident | None = None
    actions: tuple[Action, ...] | None = None
    releases: tuple[Action, ...] = ()
    history: tuple[StatusChange, ...] = ()
    execution_arn: str | None = None
    opened_at: str | None = None
    closed_at: str | None = None
    first_seen_at: str | None = None
    released_at: str | None = None
    blocked_addresses: tuple[str, ...] = ()
    added_addresses: tuple[str, ...] = ()
    deliveries: int = 1
    reason: str | None = None
    error: str | None = None
    report: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> IncidentRecord:
        """From a plain item (see `plain`)."""
        incident = item.get("incident")
        return cls(
            incident_id=item["incident_id"],
            status=item.get("status", "OPEN"),
            playbook=item.get("playbook"),
            mode=item.get("mode"),
            incident=Incident.from_dict(json.loads(incident)) if isinstance(incident, str) else None,
            actions=actions_from(item["actions"]) if isinstance(item.get("actions"), list) else None,
            releases=actions_from(item.get("release_actions")),
            history=tuple(StatusChange(str(h["status"]), str(h["at"])) for h in item.get("status_history") or ()),
            execution_arn=item.get("execution_arn"),
            opened_at=item.get("opened_at"),
            closed_at=item.get("closed_at"),
            first_seen_at=item.get("first_seen_at"),
            released_at=item.get("released_at"),
            blocked_addresses=tuple(item.get("blocked_addresses") or ()),
            added_addresses=tuple(item.get("added_addresses") or ()),
            deliveries=int(item.get("deliveries") or 1),
            reason=item.get("reason"),
            error=item.get("error"),
            report=item.get("report"),
        )

    def status_at(self, status: str) -> str | None:
        """When the incident last entered this status, from its history."""
        return next((change.at for change in reversed(self.history) if change.status == status), None)

    def time_to_contain(self) -> float | None:
        """Seconds from the finding reaching the stack (the incident opened) to CONTAINED, if both are known.

        Both ends are Step Functions' clock (`$states.context.State.EnteredTime` of Open Incident and of the state
        that recorded CONTAINED), so the figure is Firebreak's own response time, approvals included. The finding's
        first sighting is GuardDuty's clock and can be months old (samples, a long-running finding updated again).
        """
        contained = self.status_at("CONTAINED")
        if contained is None or self.opened_at is None:
            return None
        return seconds_between(self.opened_at, contained)

    def triage(self) -> Triage | None:
        """The triage the incident ran with, for messages about it; None for records without a finding."""
        if self.incident is None or self.playbook is None or self.mode is None:
            return None
        return Triage(self.incident_id, self.incident, Playbook(self.playbook), Mode(self.mode))


def read_record(dynamodb: Any, table: str, incident_id: str) -> IncidentRecord:
    """The incident's record, read consistently; IncidentNotFound when the table holds none."""
    item = dynamodb.get_item(TableName=table, Key={"incident_id": {"S": incident_id}}, ConsistentRead=True).get("Item")
    if not item:
        raise IncidentNotFound(f"no incident {incident_id} in {table}")
    return IncidentRecord.from_item(plain(item))


def mark_awaiting(dynamodb: Any, table: str, incident_id: str, request: ApprovalRequest) -> None:
    """The record says AWAITING_APPROVAL, in its status history too, while the request is open."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    dynamodb.update_item(
        TableName=table,
        Key={"incident_id": {"S": incident_id}},
        UpdateExpression=(
            "SET #status = :awaiting, approval_id = :id, approval_expires_at = :expires,"
            " status_history = list_append(if_not_exists(status_history, :none), :change)"
        ),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":awaiting": {"S": IncidentStatus.AWAITING_APPROVAL.value},
            ":id": {"S": request.approval_id},
            ":expires": {"S": request.expires},
            ":none": {"L": []},
            ":change": {"L": [{"M": {"status": {"S": IncidentStatus.AWAITING_APPROVAL.value}, "at": {"S": now}}}]},
        },
    )


def block_holders(
    dynamodb: Any, table: str, incident_id: str, cidrs: Sequence[str]
) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """Which other incidents still hold each CIDR in the block lists, and which CIDRs any incident added itself.

    A filtered scan of the incident table: releases are rare and the table holds one small item per incident.
    """
    held: dict[str, list[str]] = {}
    added: set[str] = set()
    for start in range(0, len(cidrs), SCAN_CHUNK):
        chunk = list(cidrs[start : start + SCAN_CHUNK])
        values = {f":c{index}": {"S": cidr} for index, cidr in enumerate(chunk)}
        terms = [f"contains(blocked_addresses, {name}) OR contains(added_addresses, {name})" for name in values]
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression=" OR ".join(terms),
            ExpressionAttributeValues=values,
            ProjectionExpression="incident_id, blocked_addresses, added_addresses",
        )
        for item in (plain(item) for page in pages for item in page["Items"]):
            added.update(cidr for cidr in chunk if cidr in (item.get("added_addresses") or ()))
            if item["incident_id"] != incident_id:
                for cidr in chunk:
                    if cidr in (item.get("blocked_addresses") or ()):
                        held.setdefault(cidr, []).append(item["incident_id"])
    return {cidr: tuple(ids) for cidr, ids in held.items()}, frozenset(added)


def bucket_denial_holders(
    dynamodb: Any, table: str, incident_id: str, buckets: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """protect-bucket: which other incidents, not released, rely on each `<bucket> <ARN>` Firebreak's bucket-policy
    statements deny (the principals and objects they asked to deny, applied or found already denied).

    A filtered scan of the incident table, as block_holders: releases are rare.
    """
    held: dict[str, list[str]] = {}
    if not buckets:
        return {}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="playbook = :playbook AND #status <> :released",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":playbook": {"S": Playbook.PROTECT_BUCKET.value},
            ":released": {"S": IncidentStatus.RELEASED.value},
        },
        ProjectionExpression="incident_id, actions, release_actions",
    )
    for item in (plain(item) for page in pages for item in page["Items"]):
        if item["incident_id"] == incident_id:
            continue
        lifted = {
            (a.after.get("bucket"), a.after.get("policy_statement"))
            for a in actions_from(item.get("release_actions"))
            if a.outcome is Outcome.RELEASED
        }
        for action in actions_from(item.get("actions") if isinstance(item.get("actions"), list) else ()):
            step = (action.after.get("bucket"), action.after.get("policy_statement"))
            relied_on = action.outcome in (Outcome.APPLIED, Outcome.ALREADY_APPLIED)
            if not relied_on or step[0] not in buckets or step in lifted:
                continue
            for value in action.after.get("denies") or ():
                held.setdefault(f"{step[0]} {value}", []).append(item["incident_id"])
    return {key: tuple(ids) for key, ids in held.items()}
