"""Stop Task: {incident_id, incident, mode} -> {actions}; stops the isolated ECS task (StopTaskAfterIsolation on).

Runs only after Isolate Task cut the task off: stopping loses its memory, and ECS cannot start the same task again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.task import stop_task
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    action = stop_task(request)
    logger.info("Stopped task", extra={"incident_id": request.incident_id, "outcome": action.outcome.value})
    return {"actions": [action.to_dict()]}
