"""Wait For Approval: {input: triage, taskToken} -> {approval_id, expires_at}; keeps the token, asks the responders.

The task token stays in the approval table; the responders get a signed approval token that maps to it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import IncidentStatus, Outcome, Triage
from firebreak.core.settings import Settings
from firebreak.incident.notifications import sns_message, subject
from firebreak.triage.approvals import ApprovalRequest, new_request, planned_actions, signing_key, store_pending

logger = Logger()


def mark_awaiting(dynamodb: Any, table: str, incident_id: str, request: ApprovalRequest) -> None:
    """The record says AWAITING_APPROVAL, in its status history too, while the request is open."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    dynamodb.update_item(
        TableName=table,
        Key={"incident_id": {"S": incident_id}},
        UpdateExpression=(
            "SET #status = :awaiting, approval_id = :id, approval_expires_at = :expires,"
            " status_history = list_append(if_not_exists(status_history, :none), :change)"
        ),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":awaiting": {"S": IncidentStatus.AWAITING_APPROVAL.value},
            ":id": {"S": request.approval_id},
            ":expires": {"S": request.expires},
            ":none": {"L": []},
            ":change": {"L": [{"M": {"status": {"S": IncidentStatus.AWAITING_APPROVAL.value}, "at": {"S": now}}}]},
        },
    )


def publish(sns: Any, settings: Settings, triage: Triage, request: ApprovalRequest, execution_arn: str) -> None:
    status = IncidentStatus.AWAITING_APPROVAL
    plan = planned_actions(triage.playbook, triage.incident, Outcome.AWAITING_APPROVAL)
    sns.publish(
        TopicArn=settings.responder_topic_arn,
        Subject=subject(status, triage),
        Message=sns_message(status, triage, plan, execution_arn, chat_format=settings.chat_format, request=request),
        MessageStructure="json",
        MessageAttributes={
            "status": {"DataType": "String", "StringValue": status.value},
            "playbook": {"DataType": "String", "StringValue": triage.playbook.value},
        },
    )


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    triage = Triage.from_dict(event["input"])
    settings = Settings.from_env()
    window = triage.approval.window_seconds if triage.approval else settings.approval_window_seconds
    key = signing_key(aws.client("secretsmanager"), settings.approval_secret_arn)
    request = new_request(key, event["taskToken"], window, time.time())
    dynamodb = aws.client("dynamodb")
    # Stored before anyone is told, so an answer can never arrive for an entry that does not exist yet.
    pending = {"task_token": event["taskToken"], "incident_id": triage.incident_id, "execution_arn": execution_arn}
    store_pending(dynamodb, settings.approval_table, request, pending)
    mark_awaiting(dynamodb, settings.incident_table, triage.incident_id, request)
    publish(aws.client("sns"), settings, triage, request, execution_arn)
    logger.info("Requested approval", extra={"incident_id": triage.incident_id, "approval_id": request.approval_id})
    return {"approval_id": request.approval_id, "expires_at": request.expires}
