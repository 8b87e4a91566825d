"""Release Actions: {incident_id} -> {incident_id, previous_status, status, actions, blocked_addresses, history,
notification}; undoes, from the incident record, what the playbook changed (firebreak.incident.release)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.settings import Settings
from firebreak.incident.release import release_incident

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    result = release_incident(aws.client, Settings.from_env(), event["input"]["incident_id"], execution_arn)
    logger.info("Released incident", extra={"incident_id": result["incident_id"], "status": result["status"]})
    return result
