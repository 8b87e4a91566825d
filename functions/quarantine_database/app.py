"""Quarantine Database: {incident_id, incident, mode, approved} -> {status, actions}.

Moves the finding's database (the Aurora cluster, or the DB instance) into its VPC's quarantine security group,
keeping the groups it had on its tags and in the action's before-state for the release; or says why not:
NOT_FOUND, EXEMPT, APPROVAL_REQUIRED (tagged firebreak:approval=required since the finding, and `approved` not true).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.database import quarantine
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    # Set by the entry machine when a person approved this incident.
    step = quarantine(request, approved=event["input"].get("approved") is True)
    logger.info("Quarantined database", extra={"incident_id": request.incident_id, "status": step.status.value})
    return step.to_dict()
