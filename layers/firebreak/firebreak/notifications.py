"""What the responders read: a subject SNS accepts, a readable summary and a JSON document for machines."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from firebreak.models import Action, ActionType, Approval, IncidentStatus, Outcome, Triage

if TYPE_CHECKING:
    from firebreak.approvals import ApprovalRequest

SUBJECT_LIMIT = 99  # SNS refuses subjects of 100 characters or more
MESSAGE_LIMIT_BYTES = 250_000  # SNS refuses messages over 256 KiB; the rest is room for attributes
_NOT_SUBJECT_SAFE = re.compile(r"[^\x20-\x7e]")
_ADDED_TO_BLOCK_LIST = frozenset({Outcome.APPLIED})


def subject(status: IncidentStatus, triage: Triage) -> str:
    """Printable ASCII on one line: SNS rejects control characters, and email clients render the rest badly."""
    text = f"Firebreak {status.value}: {triage.incident.finding_type}"
    return _NOT_SUBJECT_SAFE.sub("?", text)[:SUBJECT_LIMIT]


def finding_link(triage: Triage) -> str:
    incident = triage.incident
    if incident.source == "guardduty":
        search = quote(f"id={incident.finding_id}", safe="")
        return f"https://console.aws.amazon.com/guardduty/home?region={incident.region}#/findings?search={search}"
    search = quote(f"Id={incident.finding_id}", safe="")
    return f"https://console.aws.amazon.com/securityhub/home?region={incident.region}#/findings?search={search}"


def execution_link(region: str, execution_arn: str) -> str:
    return f"https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def undo_hint(actions: Sequence[Action]) -> str | None:
    """How to reverse what this incident changed, or None when it changed nothing."""
    blocked = [
        action.target
        for action in actions
        if action.type is ActionType.BLOCK_IP and action.outcome in _ADDED_TO_BLOCK_LIST
    ]
    if not blocked:
        return None
    return "remove " + ", ".join(blocked) + " from the Firebreak WAF IPSets (blocked-ipv4 / blocked-ipv6)"


def summary(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    request: ApprovalRequest | None = None,
) -> str:
    """The readable message: what happened, what was done, skipped and failed, where to look, how to undo."""
    incident = triage.incident
    lines = [
        f"Firebreak incident {triage.incident_id}: {status.value}",
        "",
        f"Finding:   {incident.finding_type} (severity {incident.severity:g} {incident.severity_label})"
        f" from {incident.product_name or incident.source}",
        f"Account:   {incident.account_id} {incident.region}",
        f"Resource:  {incident.resource_type} {incident.instance_id or incident.access_key_id or ''}".rstrip()
        + (f" ({incident.resource_role})" if incident.resource_role else ""),
        f"Playbook:  {triage.playbook.value}, mode {triage.mode.value}",
    ]
    if triage.suppressed_reason:
        lines.append(f"Suppressed: {triage.suppressed_reason}")
    if triage.escalation:
        lines.append(f"Escalated: {triage.escalation}")
    if triage.approval:
        lines += _approval_lines(triage.approval, request)
    if incident.title:
        lines.append(f"Title:     {incident.title}")
    lines += ["", "Actions:"]
    lines += [
        f"  - {a.type.value} {a.target}: {a.outcome.value}" + (f" ({a.reason})" if a.reason else "") for a in actions
    ]
    if not actions:
        lines.append("  - none")
    lines += ["", f"Finding:   {finding_link(triage)}", f"Execution: {execution_link(incident.region, execution_arn)}"]
    undo = undo_hint(actions)
    if undo:
        lines.append(f"Undo:      {undo}")
    return "\n".join(lines)


def _approval_lines(approval: Approval, request: ApprovalRequest | None) -> list[str]:
    """Why the incident needs a person and, for a request, how to answer (never the Step Functions task token)."""
    lines = [f"Approval:  {approval.reason}"]
    if approval.decision:
        lines.append(f"Answer:    {approval.decision.value} by {approval.decided_by or 'a responder'}")
    if request:
        lines += [
            f"Decide by: {request.expires} (no answer by then: {approval.on_timeout.value})",
            f"Token:     {request.token}",
            'Answer:    POST {"token": "<token>", "decision": "approve"} (or "deny") to the stack\'s AnswerApprovalUrl',
            '           output, signed with SigV4 (curl --aws-sigv4 "aws:amz:<region>:lambda"), or invoke the',
            "           AnswerApprovalFunctionName output with that payload. The token answers once.",
        ]
    return lines


def document(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    request: ApprovalRequest | None = None,
) -> dict[str, Any]:
    """The machine-readable message."""
    approval = None if triage.approval is None else triage.approval.to_dict()
    if approval is not None and request is not None:
        approval["request"] = request.to_dict()
    return {
        "version": 1,
        "incident_id": triage.incident_id,
        "status": status.value,
        "playbook": triage.playbook.value,
        "mode": triage.mode.value,
        "execution_arn": execution_arn,
        "finding": triage.incident.to_dict(),
        "actions": [action.to_dict() for action in actions],
        "approval": approval,
    }


def sns_message(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    request: ApprovalRequest | None = None,
) -> str:
    """One publish, two audiences: email and chat get the summary, queues and functions get JSON.

    A port probe can name hundreds of addresses; past SNS's size limit the message lists the first actions and says
    how many more the incident record holds, rather than failing the publish and losing the whole notification.
    """
    shown = len(actions)
    while True:
        message = _structured(status, triage, actions, execution_arn, shown, request)
        if len(message.encode()) <= MESSAGE_LIMIT_BYTES or shown == 0:
            return message
        shown //= 2


def _structured(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    shown: int,
    request: ApprovalRequest | None,
) -> str:
    listed = list(actions[:shown])
    machine_document = document(status, triage, listed, execution_arn, request)
    text = summary(status, triage, listed, execution_arn, request)
    if shown < len(actions):
        machine_document["actions_not_listed"] = len(actions) - shown
        text += f"\n\n{len(actions) - shown} more actions are in the incident record."
    machine = json.dumps(machine_document)
    return json.dumps({"default": text, "email": text, "sqs": machine, "lambda": machine, "https": machine})
