"""Wait For Approval: {input: triage, taskToken} -> {approval_id, expires_at}; keeps the token, asks the responders.

The task token stays in the approval table; the responders get a signed approval token that maps to it
(firebreak.incident.responders).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Triage
from firebreak.core.settings import Settings
from firebreak.incident.responders import ask_for_approval

logger = Logger()


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    triage = Triage.from_dict(event["input"])
    settings = Settings.from_env()
    request = ask_for_approval(aws.client, settings, triage, event["taskToken"], execution_arn, time.time())
    logger.info("Requested approval", extra={"incident_id": triage.incident_id, "approval_id": request.approval_id})
    return {"approval_id": request.approval_id, "expires_at": request.expires}
