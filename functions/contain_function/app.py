"""Contain Function: {incident_id, incident, mode, approved_by} -> {status, actions, role_name, block_addresses, ...}.

Sets the finding's Lambda function's reserved concurrency to 0 and publishes a version of it as evidence, or says why
not: NOT_FOUND, EXEMPT, REFUSED (Firebreak's own, or tagged for approval since the finding). Also names the execution
role whose older sessions the playbook denies next, the remote addresses it blocks, and suppressed_reason.
approved_by (who approved this run, if anyone) lets an approved run past an approval tag added since the finding.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.credentials import RevocationSettings
from firebreak.containment.function import contain
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    approved = bool(event["input"].get("approved_by"))
    containment = contain(request, RevocationSettings.from_env().stack_name, approved)
    logger.info(
        "Contained function",
        extra={
            "incident_id": request.incident_id,
            "status": containment.status.value,
            "outcomes": [action.outcome.value for action in containment.actions],
        },
    )
    return containment.to_dict()
