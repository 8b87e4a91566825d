"""Parse Finding: EventBridge detail -> Triage (incident, id, playbook, mode); raises FindingRejected."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.settings import Settings
from firebreak.triage.decision import triage_finding

logger = Logger()


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    result = triage_finding(event.get("input") or {}, Settings.from_env())
    logger.info(
        "Triaged finding",
        extra={"incident_id": result.incident_id, "playbook": result.playbook.value, "mode": result.mode.value},
    )
    return result.to_dict()
