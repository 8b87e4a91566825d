"""Preserve Evidence: {incident_id, incident, mode} -> {actions}; keeps the instance as evidence, out of service.

Termination protection, shutdown behaviour stop, out of its Auto Scaling group (capacity kept) and its target groups,
a tagged snapshot of every volume, the incident on its tags, and (when the stack says so) its role's sessions revoked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.evidence import preserve_evidence
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest
from firebreak.core.settings import Settings

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    settings = Settings.from_env()
    actions = preserve_evidence(request, settings.revoke_instance_role_sessions, datetime.now(UTC))
    logger.info(
        "Preserved evidence",
        extra={"incident_id": request.incident_id, "outcomes": [action.outcome.value for action in actions]},
    )
    return {"actions": [action.to_dict() for action in actions]}
