"""Release Actions: {incident_id} -> {incident_id, previous_status, status, actions, blocked_addresses, history,
notification}; undoes, from the incident record, what the playbook changed (firebreak.incident.release)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.blocking.blocklist import Blocklist
from firebreak.core import aws
from firebreak.core.errors import IncidentNotFound
from firebreak.core.models import ActionType, IncidentStatus, utc_now
from firebreak.core.settings import Settings
from firebreak.incident.notifications import release_message, release_subject
from firebreak.incident.records import IncidentRecord, block_holders, plain
from firebreak.incident.release import ReleasePlan, release
from firebreak.incident.undo import ReleaseContext

logger = Logger()


def read_record(dynamodb: Any, table: str, incident_id: str) -> IncidentRecord:
    item = dynamodb.get_item(TableName=table, Key={"incident_id": {"S": incident_id}}, ConsistentRead=True).get("Item")
    if not item:
        raise IncidentNotFound(f"no incident {incident_id} in {table}")
    return IncidentRecord.from_item(plain(item))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    settings = Settings.from_env()
    dynamodb = aws.client("dynamodb")
    record = read_record(dynamodb, settings.incident_table, event["input"]["incident_id"])
    plan = ReleasePlan.from_record(record)
    cidrs = [action.target for action in plan.pending if action.type is ActionType.BLOCK_IP]
    held, added = block_holders(dynamodb, settings.incident_table, record.incident_id, cidrs)
    region = record.incident.region if record.incident else None
    blocklist = Blocklist(aws.client("dynamodb"), settings.blocklist_table) if settings.blocklist_table else None
    undo_context = ReleaseContext(
        record.incident_id,
        lambda service: aws.client(service, region=region),
        held,
        added,
        blocklist=blocklist,
        network_acl_rules=settings.nacl_rules,
    )
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
                result.status,
                result.previous_status,
                triage,
                record.incident_id,
                result.entries,
                execution_arn,
                settings.chat_format,
            ),
        },
    }
