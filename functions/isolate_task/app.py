"""Isolate Task: {incident_id, incident, mode} -> {status, actions, block_addresses, suppressed_reason, stop_task}.

Records the finding's ECS task and its task definition, then moves the task's network interface into its VPC's
quarantine group through the allow-all group (as an instance's), or says why not: NOT_FOUND, EXEMPT,
ALREADY_ISOLATED. Names the remote addresses to block, and whether Stop Task runs (StopTaskAfterIsolation).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.task import isolate_task
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest
from firebreak.core.settings import Settings

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    # Set by the entry machine when a person approved this incident.
    approved = event["input"].get("approved") is True
    isolation = isolate_task(request, Settings.from_env().stop_task_after_isolation, approved)
    logger.info(
        "Isolated task",
        extra={"incident_id": request.incident_id, "status": isolation.status.value, "stop": isolation.stop_task},
    )
    return isolation.to_dict()
