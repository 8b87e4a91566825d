"""The final status rule, for the outcomes this issue adds: waiting for approval is told as such, never contained."""

from __future__ import annotations

from firebreak.core.models import Action, ActionType, IncidentStatus, Mode, Outcome, Playbook
from firebreak.triage.incidents import final_status


def block(outcome: Outcome) -> Action:
    return Action(ActionType.BLOCK_IP, "203.0.113.7/32", outcome)


def test_a_block_waiting_for_approval_makes_the_incident_await_approval() -> None:
    status = final_status(Playbook.BLOCK_IP, Mode.APPROVAL, [block(Outcome.AWAITING_APPROVAL)], suppressed=False)
    assert status is IncidentStatus.AWAITING_APPROVAL


def test_a_failure_outranks_waiting() -> None:
    actions = [block(Outcome.AWAITING_APPROVAL), block(Outcome.FAILED)]
    assert final_status(Playbook.BLOCK_IP, Mode.APPROVAL, actions, suppressed=False) is IncidentStatus.FAILED
