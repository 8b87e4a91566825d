"""A responder's answer to an approval: verified, taken once, resumed on its execution and recorded on the incident."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak.core.errors import ApprovalDenied, ApprovalTokenExpired, ApprovalTokenInvalid
from firebreak.core.models import Decision
from firebreak.core.settings import Settings
from firebreak.triage.approvals import Answer, AnswerStatus, signing_key, take_pending, verify

# The execution already ended (timed out, stopped) or the token is stale: the answer has nothing left to resume.
_NOT_WAITING = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


def resume(sfn: Any, task_token: str, answer: Answer) -> bool:
    """False when nothing waits for this token any more."""
    try:
        if answer.decision is Decision.APPROVED:
            output = {"decision": Decision.APPROVED.value, "decided_by": answer.answered_by}
            sfn.send_task_success(taskToken=task_token, output=json.dumps(output))
        else:
            sfn.send_task_failure(taskToken=task_token, error=ApprovalDenied.__name__, cause=answer.answered_by)
    except ClientError as error:
        if error.response["Error"]["Code"] not in _NOT_WAITING:
            raise
        return False
    return True


def record(dynamodb: Any, table: str, incident_id: str, answer: Answer) -> None:
    """The decision, who made it and when, on the incident record."""
    dynamodb.update_item(
        TableName=table,
        Key={"incident_id": {"S": incident_id}},
        UpdateExpression="SET approval_decision = :decision, approval_decided_by = :by, approval_decided_at = :at",
        ExpressionAttributeValues={
            ":decision": {"S": answer.decision.value},
            ":by": {"S": answer.answered_by},
            ":at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
        },
    )


def answer_with(answer: Answer, settings: Settings) -> tuple[AnswerStatus, str]:
    """What the answer changed, and why in words: a forged, expired, replayed or late token changes nothing."""
    try:
        approval_id = verify(
            signing_key(aws.client("secretsmanager"), settings.approval_secret_arn), answer.token, time.time()
        )
    except ApprovalTokenExpired as error:
        return AnswerStatus.EXPIRED, str(error)
    except ApprovalTokenInvalid as error:
        return AnswerStatus.REFUSED, str(error)
    dynamodb = aws.client("dynamodb")
    pending = take_pending(dynamodb, settings.approval_table, approval_id)
    if pending is None:
        return AnswerStatus.ALREADY_ANSWERED, "this approval was already answered; nothing changed"
    # A lost SendTask* call after the delete leaves the execution to its timeout policy (deny by default): fail safe.
    if not resume(aws.client("stepfunctions"), pending["task_token"], answer):
        return AnswerStatus.NOT_WAITING, "the execution no longer waits for this answer; nothing changed"
    record(dynamodb, settings.incident_table, pending["incident_id"], answer)
    status = AnswerStatus.APPROVED if answer.decision is Decision.APPROVED else AnswerStatus.DENIED
    return status, f"incident {pending['incident_id']}: {answer.decision.value} by {answer.answered_by}"
