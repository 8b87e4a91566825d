"""Revoke Credentials: {incident, mode, issued_before} -> {actions: [revoke_credentials Action]}.

Deactivates the IAM user's access key the finding names and denies the user, or denies the assumed role's sessions
issued before `issued_before`; protected, service-linked and unrevocable principals are skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.credentials import RevocationRequest, RevocationSettings, revoke_where_held
from firebreak.core import aws

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = RevocationRequest.from_event(event["input"])
    actions = revoke_where_held(request, RevocationSettings.from_env())
    logger.info(
        "Revoked credentials",
        extra={
            "principal_type": request.incident.principal_type,
            "mode": request.mode.value,
            "outcomes": [f"{a.target}: {a.outcome.value}" for a in actions],
        },
    )
    return {"actions": [action.to_dict() for action in actions]}
