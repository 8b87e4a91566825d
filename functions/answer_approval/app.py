"""Answer Approval (Function URL, AWS_IAM, or direct invoke): {token, decision} -> what the answer changed.

A forged, expired, replayed or late token changes nothing and says so; a genuine one resumes its execution once.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core.errors import ApprovalAnswerInvalid
from firebreak.core.settings import Settings
from firebreak.incident.answers import answer_with
from firebreak.triage.approvals import Answer, AnswerStatus

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        status, message = answer_with(Answer.from_event(event), Settings.from_env())
    except ApprovalAnswerInvalid as error:
        status, message = AnswerStatus.BAD_REQUEST, str(error)
    logger.info("Answered approval", extra={"status": status.value})
    body = {"status": status.value, "message": message}
    if "requestContext" not in event:
        return body
    return {"statusCode": status.http_status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
