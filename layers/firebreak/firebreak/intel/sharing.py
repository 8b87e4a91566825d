"""Sharing what an incident saw: its attacker addresses as a STIX 2.1 bundle, ready for a TAXII server or MISP.

Built by hand (the stix2 package is not in the Lambda runtime) and deterministic: every id is a uuid5 of the incident
and the address, so exporting the same incident again yields the same objects, newer versions only when it changed.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from firebreak.core.addresses import host_cidr, refusal_reason
from firebreak.core.models import Action, ActionType, Incident
from firebreak.core.settings import IpNetwork

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

NAMESPACE = uuid.UUID("5b1f3f0e-6a8e-4b53-9d3c-2f7f1c0f4e11")
# The producing identity is the same object in every bundle, so its timestamps are fixed.
IDENTITY_TIMESTAMP = "2025-01-01T00:00:00.000Z"
MAX_SHARED_INDICATORS = 100


def stix_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join((kind, *parts)))}"


def stix_time(text: Any) -> str | None:
    """An ISO 8601 time as a STIX timestamp (UTC, milliseconds, 'Z'); None when it is not a time."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def seen_times(finding: Any) -> tuple[str | None, str | None]:
    """First and last seen from the finding as delivered: GuardDuty detail, or a Security Hub detail's findings."""
    if not isinstance(finding, Mapping):
        return None, None
    findings = finding.get("findings")
    if isinstance(findings, list) and findings and isinstance(findings[0], Mapping):
        asff = findings[0]
        return stix_time(asff.get("FirstObservedAt") or asff.get("CreatedAt")), stix_time(
            asff.get("LastObservedAt") or asff.get("UpdatedAt")
        )
    service = finding.get("service")
    service = service if isinstance(service, Mapping) else {}
    return stix_time(service.get("eventFirstSeen") or finding.get("createdAt")), stix_time(
        service.get("eventLastSeen") or finding.get("updatedAt")
    )


def shareable(addresses: Iterable[str], allow_list: Sequence[IpNetwork]) -> list[str]:
    """Addresses worth sharing as malicious: global and not allow-listed (the same guard as blocking)."""
    return [a for a in dict.fromkeys(addresses) if refusal_reason(a, allow_list) is None][:MAX_SHARED_INDICATORS]


def action_taken(address: str, actions: Sequence[Action]) -> str:
    """What Firebreak did about one address, in words: the block_ip action for it, or that none was taken."""
    targets = {address, host_cidr(address)}
    for action in actions:
        if action.type is ActionType.BLOCK_IP and action.target in targets:
            return f"block_ip {action.outcome.value}" + (f" ({action.reason})" if action.reason else "")
    return "no block action"


def pattern_for(address: str) -> str:
    kind = "ipv4-addr" if ipaddress.ip_address(address).version == 4 else "ipv6-addr"
    return f"[{kind}:value = '{ipaddress.ip_address(address).compressed}']"


def incident_bundle(
    incident_id: str,
    incident: Incident,
    status: str,
    actions: Sequence[Action],
    first_seen: str | None,
    last_seen: str | None,
    allow_list: Sequence[IpNetwork] = (),
    now: str | None = None,
) -> dict[str, Any] | None:
    """The incident's indicators, sightings and a note as a STIX 2.1 bundle; None when there is nothing to share."""
    addresses = shareable(incident.remote_ips, allow_list)
    if incident.sample or not addresses:
        return None
    fallback = stix_time(incident.updated_at) or now or IDENTITY_TIMESTAMP
    first = first_seen or last_seen or fallback
    last = max(last_seen or first, first)
    identity = {
        "type": "identity",
        "spec_version": "2.1",
        "id": stix_id("identity", "firebreak", incident.account_id),
        "created": IDENTITY_TIMESTAMP,
        "modified": IDENTITY_TIMESTAMP,
        "name": f"Firebreak in AWS account {incident.account_id}",
        "identity_class": "system",
    }
    finding_reference = {
        "source_name": f"aws-{incident.source.value}",
        "external_id": incident.finding_id,
        "description": f"{incident.finding_type} in {incident.region}, severity {incident.severity:g}",
    }
    objects: list[dict[str, Any]] = [identity]
    refs: list[str] = []
    for address in addresses:
        indicator_id = stix_id("indicator", incident_id, address)
        sighting_id = stix_id("sighting", incident_id, address)
        taken = action_taken(address, actions)
        common = {"spec_version": "2.1", "created_by_ref": identity["id"], "created": first, "modified": last}
        objects.append(
            {
                "type": "indicator",
                "id": indicator_id,
                **common,
                "name": f"{address} seen by {incident.finding_type}",
                "description": f"Firebreak incident {incident_id} ({status}): {taken}",
                "indicator_types": ["malicious-activity"],
                "pattern": pattern_for(address),
                "pattern_type": "stix",
                "pattern_version": "2.1",
                "valid_from": first,
                "external_references": [finding_reference],
            }
        )
        objects.append(
            {
                "type": "sighting",
                "id": sighting_id,
                **common,
                "description": f"{incident.finding_type}; action taken: {taken}",
                "first_seen": first,
                "last_seen": last,
                "count": max(min(incident.count, 999_999_999), 1),
                "sighting_of_ref": indicator_id,
                "where_sighted_refs": [identity["id"]],
                "external_references": [finding_reference],
            }
        )
        refs += [indicator_id, sighting_id]
    summary = "; ".join(f"{a.type.value} {a.target} {a.outcome.value}" for a in actions)[:4000]
    objects.append(
        {
            "type": "note",
            "id": stix_id("note", incident_id),
            "spec_version": "2.1",
            "created_by_ref": identity["id"],
            "created": first,
            "modified": last,
            "abstract": f"Firebreak incident {incident_id}: {status}",
            "content": (
                f"Finding {incident.finding_id} ({incident.finding_type}, severity {incident.severity:g}) "
                f"in account {incident.account_id}, {incident.region}. Status {status}. Actions: {summary or 'none'}."
            ),
            "object_refs": refs,
            "external_references": [finding_reference],
        }
    )
    return {"type": "bundle", "id": stix_id("bundle", incident_id), "objects": objects}


@dataclass(frozen=True)
class Export:
    """What Export Stix Bundle returns: whether a bundle was stored on the record, and its indicator count."""

    exported: bool
    indicators: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"exported": self.exported, "indicators": self.indicators}


def export_bundle(
    dynamodb: DynamoDBClient,
    table: str,
    incident_id: str,
    incident: Incident,
    status: str,
    actions: Sequence[Action],
    finding: Any,
    allow_list: Sequence[IpNetwork] = (),
) -> Export:
    """The incident's bundle stored on its record (attribute stix_bundle); nothing stored when nothing is shareable."""
    first_seen, last_seen = seen_times(finding)
    bundle = incident_bundle(incident_id, incident, status, actions, first_seen, last_seen, allow_list)
    if bundle is None:
        return Export(False)
    store(dynamodb, table, incident_id, bundle)
    return Export(True, sum(1 for item in bundle["objects"] if item["type"] == "indicator"))


def store(dynamodb: DynamoDBClient, table: str, incident_id: str, bundle: dict[str, Any]) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"incident_id": {"S": incident_id}},
        UpdateExpression="SET stix_bundle = :bundle",
        ConditionExpression="attribute_exists(incident_id)",
        ExpressionAttributeValues={":bundle": {"S": json.dumps(bundle, separators=(",", ":"))}},
    )
