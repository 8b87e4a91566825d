"""What the response tells the responders and the finding: its approval request while it waits, and its outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firebreak.core.aws import ClientFactory
from firebreak.core.models import Action, ActionType, Decision, IncidentStatus, Mode, Outcome, Triage
from firebreak.core.settings import Settings
from firebreak.incident.notifications import sns_message, subject
from firebreak.incident.records import mark_awaiting
from firebreak.incident.writeback import finding_identifier, planned, write_back
from firebreak.triage.approvals import (
    ApprovalRequest,
    denial_reason,
    new_request,
    planned_actions,
    signing_key,
    store_pending,
)
from firebreak.triage.incidents import final_status


@dataclass(frozen=True)
class Conclusion:
    """The incident's final status and every action, the write-back and the notification included."""

    status: IncidentStatus
    actions: tuple[Action, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "actions": [action.to_dict() for action in self.actions]}


def publish(
    sns: Any,
    settings: Settings,
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    request: ApprovalRequest | None = None,
) -> None:
    """One structured publish to the responder topic, with the attributes subscription filters match on.

    An approval request has never carried the severity attribute, so a filter on severity does not receive it.
    """
    attributes = {
        "status": {"DataType": "String", "StringValue": status.value},
        "playbook": {"DataType": "String", "StringValue": triage.playbook.value},
    }
    if request is None:
        attributes["severity"] = {"DataType": "Number", "StringValue": f"{triage.incident.severity:g}"}
    sns.publish(
        TopicArn=settings.responder_topic_arn,
        Subject=subject(status, triage),
        Message=sns_message(
            status,
            triage,
            actions,
            execution_arn,
            settings.release_state_machine_arn,
            settings.chat_format,
            request,
        ),
        MessageStructure="json",
        MessageAttributes=attributes,
    )


def ask_for_approval(
    client: ClientFactory, settings: Settings, triage: Triage, task_token: str, execution_arn: str, now: float
) -> ApprovalRequest:
    """Keep the task token in the approval table, mark the record AWAITING_APPROVAL, and ask the responders."""
    window = triage.approval.window_seconds if triage.approval else settings.approval_window_seconds
    key = signing_key(client("secretsmanager"), settings.approval_secret_arn)
    request = new_request(key, task_token, window, now)
    dynamodb = client("dynamodb")
    # Stored before anyone is told, so an answer can never arrive for an entry that does not exist yet.
    pending = {"task_token": task_token, "incident_id": triage.incident_id, "execution_arn": execution_arn}
    store_pending(dynamodb, settings.approval_table, request, pending)
    mark_awaiting(dynamodb, settings.incident_table, triage.incident_id, request)
    plan = planned_actions(triage.playbook, triage.incident, Outcome.AWAITING_APPROVAL)
    publish(client("sns"), settings, IncidentStatus.AWAITING_APPROVAL, triage, plan, execution_arn, request)
    return request


def conclude(
    client: ClientFactory, settings: Settings, triage: Triage, actions: tuple[Action, ...], execution_arn: str
) -> Conclusion:
    """Decide the final status, write it back to the finding in Security Hub, and tell the responders."""
    if triage.approval and triage.approval.decision is Decision.DENIED:
        why = denial_reason(triage.approval)
        actions = (*planned_actions(triage.playbook, triage.incident, Outcome.SKIPPED, why), *actions)
    status = final_status(triage.playbook, triage.mode, actions, triage.suppressed_reason is not None)
    identifier = finding_identifier(triage, settings.write_back_guardduty)
    if identifier is not None and triage.mode is Mode.DRY_RUN:
        actions = (*actions, planned(identifier, status, triage))
    elif identifier is not None:
        securityhub = client("securityhub", triage.incident.region)
        actions = (*actions, write_back(securityhub, identifier, status, triage, actions, execution_arn))
    publish(client("sns"), settings, status, triage, actions, execution_arn)
    topic_name = settings.responder_topic_arn.rsplit(":", 1)[-1]
    notified = Action(ActionType.NOTIFY, topic_name, Outcome.APPLIED, f"told responders {status.value}")
    return Conclusion(status, (*actions, notified))
