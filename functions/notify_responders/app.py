"""Notify Responders: {triage, actions} -> {status, actions}; decides the final status, writes it back to the finding
in Security Hub and publishes it to SNS (firebreak.incident.responders)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Triage, actions_from
from firebreak.core.settings import Settings
from firebreak.incident.responders import conclude

logger = Logger()


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    request = event["input"]
    triage = Triage.from_dict(request)
    result = conclude(aws.client, Settings.from_env(), triage, actions_from(request.get("actions")), execution_arn)
    logger.info("Notified responders", extra={"incident_id": triage.incident_id, "status": result.status.value})
    return result.to_dict()
