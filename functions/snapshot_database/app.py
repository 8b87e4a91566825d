"""Snapshot Database: {incident_id, incident, mode} -> {status, actions, block_addresses, suppressed_reason}.

Takes one snapshot of the finding's database (the Aurora cluster, or the DB instance) tagged with the incident, or
says why not: NOT_FOUND, EXEMPT. Also names the remote addresses the playbook should block: the ones that logged in.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.database import snapshot
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    step = snapshot(request)
    logger.info(
        "Snapshot of database",
        extra={"incident_id": request.incident_id, "status": step.status.value, "block": list(step.block_addresses)},
    )
    return step.to_dict()
