"""Incident identity and the one rule that turns a playbook's actions into the incident's final status."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from firebreak.core.models import Action, ActionType, Incident, IncidentStatus, Mode, Outcome, Playbook

# Actions that change the account; enrichment, notification and records do not contain anything.
CONTAINMENT_ACTIONS = frozenset(
    {
        ActionType.ISOLATE_INSTANCE,
        ActionType.REVOKE_CREDENTIALS,
        ActionType.BLOCK_IP,
        ActionType.PROTECT_BUCKET,
        ActionType.CONTAIN_FUNCTION,
        ActionType.CONTAIN_DATABASE,
        ActionType.CONTAIN_TASK,
    }
)
_DONE = frozenset({Outcome.APPLIED, Outcome.ALREADY_APPLIED})
# A playbook whose main action was refused (a protected principal, a service-linked role) has not contained the
# incident, whatever else it blocked.
_MAIN_ACTION = {
    Playbook.REVOKE_CREDENTIALS: ActionType.REVOKE_CREDENTIALS,
    Playbook.PROTECT_BUCKET: ActionType.PROTECT_BUCKET,
    Playbook.CONTAIN_FUNCTION: ActionType.CONTAIN_FUNCTION,
    Playbook.CONTAIN_DATABASE: ActionType.CONTAIN_DATABASE,
    # contain-task: addresses blocked while the task itself stayed on its network is not containment.
    Playbook.CONTAIN_TASK: ActionType.CONTAIN_TASK,
}


def incident_id_for(incident: Incident) -> str:
    """Stable per account, region and finding id, so every redelivery of a finding maps to one record."""
    key = f"{incident.account_id}|{incident.region}|{incident.finding_id}"
    return "fb-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _is_step(playbook: Playbook, action: Action) -> bool:
    """Whether the action is one of the playbook's steps, whose failure the status must show. Evidence a playbook
    keeps (contain-database's snapshot, contain-task's task record) contains nothing, so it never makes an incident
    CONTAINED, but evidence that could not be kept is a failed step: hiding it would let a responder believe it is
    there. The entry machine's own records (a rejection, the incident table) are never passed here."""
    if action.type in CONTAINMENT_ACTIONS:
        return True
    return action.type is ActionType.RECORD and playbook is not Playbook.NOTIFY_ONLY


def final_status(playbook: Playbook, mode: Mode, actions: Iterable[Action], suppressed: bool) -> IncidentStatus:
    """CONTAINED only when every containment action took effect; never claims what did not happen."""
    if suppressed:
        return IncidentStatus.SUPPRESSED
    every = list(actions)
    containment = [action for action in every if action.type in CONTAINMENT_ACTIONS]
    done = [action for action in containment if action.outcome in _DONE]
    failed = [action for action in every if action.outcome is Outcome.FAILED and _is_step(playbook, action)]
    if failed:
        return IncidentStatus.PARTIALLY_CONTAINED if done else IncidentStatus.FAILED
    if any(action.outcome is Outcome.AWAITING_APPROVAL for action in containment):
        return IncidentStatus.AWAITING_APPROVAL
    if mode is Mode.DRY_RUN and playbook is not Playbook.NOTIFY_ONLY:
        return IncidentStatus.DRY_RUN
    if any(action.left_open for action in containment):
        return IncidentStatus.PARTIALLY_CONTAINED if done else IncidentStatus.NOTIFIED
    main = _MAIN_ACTION.get(playbook)
    if done and main is not None and not any(action.type is main for action in done):
        return IncidentStatus.PARTIALLY_CONTAINED
    return IncidentStatus.CONTAINED if done else IncidentStatus.NOTIFIED
