"""Notify Responders: {triage, actions} -> {status, actions}; decides the final status, writes it back to the finding
in Security Hub and publishes it to SNS."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Action, ActionType, Decision, IncidentStatus, Mode, Outcome, Triage, actions_from
from firebreak.core.settings import Settings
from firebreak.incident.notifications import sns_message, subject
from firebreak.incident.writeback import finding_identifier, planned, write_back
from firebreak.triage.approvals import denial_reason, planned_actions
from firebreak.triage.incidents import final_status

logger = Logger()


def publish(
    sns: Any, settings: Settings, status: IncidentStatus, triage: Triage, actions: tuple[Action, ...], execution: str
) -> None:
    sns.publish(
        TopicArn=settings.responder_topic_arn,
        Subject=subject(status, triage),
        Message=sns_message(
            status, triage, actions, execution, settings.release_state_machine_arn, settings.chat_format
        ),
        MessageStructure="json",
        MessageAttributes={
            "status": {"DataType": "String", "StringValue": status.value},
            "playbook": {"DataType": "String", "StringValue": triage.playbook.value},
            "severity": {"DataType": "Number", "StringValue": f"{triage.incident.severity:g}"},
        },
    )


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_arn = str(event.get("executionId", ""))
    logger.append_keys(execution_id=execution_arn)
    request = event["input"]
    triage = Triage.from_dict(request)
    actions = actions_from(request.get("actions"))
    if triage.approval and triage.approval.decision is Decision.DENIED:
        why = denial_reason(triage.approval)
        actions = (*planned_actions(triage.playbook, triage.incident, Outcome.SKIPPED, why), *actions)
    settings = Settings.from_env()
    status = final_status(triage.playbook, triage.mode, actions, triage.suppressed_reason is not None)
    identifier = finding_identifier(triage, settings.write_back_guardduty)
    if identifier is not None and triage.mode is Mode.DRY_RUN:
        actions = (*actions, planned(identifier, status, triage))
    elif identifier is not None:
        securityhub = aws.client("securityhub", region=triage.incident.region)
        actions = (*actions, write_back(securityhub, identifier, status, triage, actions, execution_arn))
    publish(aws.client("sns"), settings, status, triage, actions, execution_arn)
    topic_name = settings.responder_topic_arn.rsplit(":", 1)[-1]
    notified = Action(ActionType.NOTIFY, topic_name, Outcome.APPLIED, f"told responders {status.value}")
    logger.info("Notified responders", extra={"incident_id": triage.incident_id, "status": status.value})
    return {"status": status.value, "actions": [action.to_dict() for action in (*actions, notified)]}
