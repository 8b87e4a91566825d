"""Release Actions: {incident_id} -> {incident_id, previous_status, status, actions, blocked_addresses, history,
notification}; undoes, from the incident record, what the playbook changed (firebreak.release)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak import aws
from firebreak.errors import IncidentNotFound
from firebreak.models import IncidentStatus, utc_now
from firebreak.notifications import release_message, release_subject
from firebreak.records import IncidentRecord, plain
from firebreak.release import ReleasePlan, release
from firebreak.settings import Settings
from firebreak.undo import ReleaseContext

logger = Logger()
SCAN_CHUNK = 20  # CIDRs per scan filter, well inside DynamoDB's expression size limit


def read_record(dynamodb: Any, table: str, incident_id: str) -> IncidentRecord:
    item = dynamodb.get_item(TableName=table, Key={"incident_id": {"S": incident_id}}, ConsistentRead=True).get("Item")
    if not item:
        raise IncidentNotFound(f"no incident {incident_id} in {table}")
    return IncidentRecord.from_item(plain(item))


def holders(
    dynamodb: Any, table: str, incident_id: str, cidrs: Sequence[str]
) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """Which other incidents still hold each CIDR, and which CIDRs any incident added. A scan: releases are rare."""
    held: dict[str, list[str]] = {}
    added: set[str] = set()
    for start in range(0, len(cidrs), SCAN_CHUNK):
        chunk = list(cidrs)[start : start + SCAN_CHUNK]
        names = {f":c{i}": {"S": cidr} for i, cidr in enumerate(chunk)}
        terms = [f"contains(blocked_addresses, {n}) OR contains(added_addresses, {n})" for n in names]
        scan = {"TableName": table, "FilterExpression": " OR ".join(terms), "ExpressionAttributeValues": names}
        for page in dynamodb.get_paginator("scan").paginate(
            **scan, ProjectionExpression="incident_id, blocked_addresses, added_addresses"
        ):
            for item in map(plain, page["Items"]):
                added.update(cidr for cidr in chunk if cidr in (item.get("added_addresses") or ()))
                if item["incident_id"] != incident_id:
                    for cidr in chunk:
                        if cidr in (item.get("blocked_addresses") or ()):
                            held.setdefault(cidr, []).append(item["incident_id"])
    return {cidr: tuple(ids) for cidr, ids in held.items()}, frozenset(added)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    settings = Settings.from_env()
    dynamodb = aws.client("dynamodb")
    record = read_record(dynamodb, settings.incident_table, event["input"]["incident_id"])
    plan = ReleasePlan.from_record(record)
    cidrs = [a.target for a in plan.pending if a.type.value == "block_ip"]
    held, added = holders(dynamodb, settings.incident_table, record.incident_id, cidrs) if cidrs else ({}, frozenset())
    region = record.incident.region if record.incident else None
    undo_context = ReleaseContext(record.incident_id, lambda service: aws.client(service, region=region), held, added)
    result = release(plan, undo_context, record.blocked_addresses)
    now, triage = utc_now(), record.triage()
    logger.info("Released incident", extra={"incident_id": record.incident_id, "status": result.status})
    return {
        **result.to_dict(),
        "history": [{"status": result.status, "at": now}] if result.changed else [],
        "released_at": now if result.status == IncidentStatus.RELEASED else record.released_at or "",
        "playbook": record.playbook,
        "mode": record.mode,
        "notification": {
            "subject": release_subject(result.status, result.previous_status, triage, record.incident_id),
            "message": release_message(
                result.status, result.previous_status, triage, record.incident_id, result.entries, execution_arn
            ),
        },
    }
