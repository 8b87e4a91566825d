"""Write the incident's outcome back to the finding in Security Hub: a workflow status and a note.

Security Hub findings are updated directly; GuardDuty findings (optionally) through their Security Hub copy, whose
Id is the GuardDuty finding ARN and whose product is aws/guardduty. The update leaves the finding's workflow NEW no
longer, so the Security Hub rule (Workflow NEW only) is not triggered again by it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from firebreak.core.models import Action, ActionType, IncidentStatus, Outcome, Playbook, Triage

NOTE_LIMIT = 512
UPDATED_BY = "Firebreak"
# Only a playbook whose containment is the remedy resolves the finding; an isolated instance or a revoked key still
# needs a person (forensics, rotation), so those findings are marked NOTIFIED even when fully contained.
RESOLVING_PLAYBOOKS = frozenset({Playbook.BLOCK_IP})


def workflow_status(status: IncidentStatus, triage: Triage) -> str:
    if status is IncidentStatus.CONTAINED and triage.playbook in RESOLVING_PLAYBOOKS:
        return "RESOLVED"
    return "NOTIFIED"


def finding_identifier(triage: Triage, guardduty_too: bool) -> dict[str, str] | None:
    """The finding's Security Hub identifier, or None when it has none or GuardDuty write-back is off."""
    incident = triage.incident
    if incident.source == "securityhub":
        return {"Id": incident.finding_id, "ProductArn": incident.product_arn} if incident.product_arn else None
    if not guardduty_too or not incident.finding_arn or incident.finding_arn.count(":") < 3:
        return None
    partition = incident.finding_arn.split(":")[1]
    product = f"arn:{partition}:securityhub:{incident.region}::product/aws/guardduty"
    return {"Id": incident.finding_arn, "ProductArn": product}


def note(status: IncidentStatus, triage: Triage, actions: tuple[Action, ...], execution_arn: str) -> str:
    done = sum(1 for action in actions if action.outcome in (Outcome.APPLIED, Outcome.ALREADY_APPLIED))
    failed = sum(1 for action in actions if action.outcome is Outcome.FAILED)
    text = (
        f"Firebreak incident {triage.incident_id}: {status.value} by playbook {triage.playbook.value} "
        f"(mode {triage.mode.value}); {done} actions done, {failed} failed. Execution {execution_arn}"
    )
    return text[:NOTE_LIMIT]


def planned(identifier: dict[str, str], status: IncidentStatus, triage: Triage) -> Action:
    """Dry runs change nothing, the finding's workflow included."""
    reason = f"would set Security Hub workflow {workflow_status(status, triage)} and add a note (BatchUpdateFindings)"
    return Action(ActionType.NOTIFY, identifier["Id"], Outcome.PLANNED, reason)


def write_back(
    securityhub: Any,
    identifier: dict[str, str],
    status: IncidentStatus,
    triage: Triage,
    actions: tuple[Action, ...],
    execution_arn: str,
) -> Action:
    """One BatchUpdateFindings; a refusal (an error, or the finding listed as unprocessed) is a failed action."""
    workflow = workflow_status(status, triage)
    try:
        response = securityhub.batch_update_findings(
            FindingIdentifiers=[identifier],
            Workflow={"Status": workflow},
            Note={"Text": note(status, triage, actions, execution_arn), "UpdatedBy": UPDATED_BY},
        )
    except ClientError as error:
        # Telling Security Hub is secondary to telling the responders: the failure is reported, not raised.
        details = error.response.get("Error", {})
        reason = f"Security Hub refused the update: {details.get('Code')}: {details.get('Message', '')}"
        return Action(ActionType.NOTIFY, identifier["Id"], Outcome.FAILED, reason)
    unprocessed = response.get("UnprocessedFindings") or []
    if unprocessed:
        first = unprocessed[0]
        reason = f"Security Hub did not update the finding: {first.get('ErrorCode')}: {first.get('ErrorMessage')}"
        return Action(ActionType.NOTIFY, identifier["Id"], Outcome.FAILED, reason)
    return Action(ActionType.NOTIFY, identifier["Id"], Outcome.APPLIED, f"Security Hub workflow {workflow}, note added")
