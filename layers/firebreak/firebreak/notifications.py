"""What the responders read: a subject SNS accepts, a readable summary and a JSON document for machines."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from firebreak.models import Action, ActionType, IncidentStatus, Outcome, Triage

SUBJECT_LIMIT = 99  # SNS refuses subjects of 100 characters or more
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
        # Network ACL actions name "CIDR in network ACL of subnet"; lifting the CIDR lifts those entries too.
        if action.type is ActionType.BLOCK_IP and action.outcome in _ADDED_TO_BLOCK_LIST and " " not in action.target
    ]
    if not blocked:
        return None
    # The blocklist table is the truth: an address removed from an IPSet by hand is put back by the next sweep.
    return (
        "delete the items "
        + ", ".join(blocked)
        + " from the Firebreak blocklist table (stack output BlocklistTableName); the next sweep lifts the blocks"
    )


def summary(status: IncidentStatus, triage: Triage, actions: Sequence[Action], execution_arn: str) -> str:
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


def document(status: IncidentStatus, triage: Triage, actions: Sequence[Action], execution_arn: str) -> dict[str, Any]:
    """The machine-readable message."""
    return {
        "version": 1,
        "incident_id": triage.incident_id,
        "status": status.value,
        "playbook": triage.playbook.value,
        "mode": triage.mode.value,
        "execution_arn": execution_arn,
        "finding": triage.incident.to_dict(),
        "actions": [action.to_dict() for action in actions],
    }


def sns_message(status: IncidentStatus, triage: Triage, actions: Sequence[Action], execution_arn: str) -> str:
    """One publish, two audiences: email and chat get the summary, queues and functions get JSON."""
    machine = json.dumps(document(status, triage, actions, execution_arn))
    text = summary(status, triage, actions, execution_arn)
    return json.dumps({"default": text, "email": text, "sqs": machine, "lambda": machine, "https": machine})
