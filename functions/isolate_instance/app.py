"""Isolate Instance: {incident_id, incident, mode} -> {status, actions, block_addresses, suppressed_reason}.

Moves every network interface of the finding's instance into its VPC's quarantine group (through an allow-all group,
so tracked flows are cut), or says why not: NOT_FOUND, EXEMPT, ALREADY_ISOLATED. Also names the remote addresses the
playbook should block: those that attacked or command the instance, never its own destinations.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.isolation import isolate
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    isolation, addresses = isolate(request)
    logger.info(
        "Isolated instance",
        extra={"incident_id": request.incident_id, "status": isolation.status.value, "block": list(addresses)},
    )
    return {
        "status": isolation.status.value,
        "actions": [action.to_dict() for action in isolation.actions],
        "block_addresses": list(addresses),
        "suppressed_reason": isolation.suppressed_reason,
    }
