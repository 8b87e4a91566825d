"""Parse Finding: EventBridge detail -> Triage (incident, id, playbook, mode); raises FindingRejected."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.approvals import decide_mode
from firebreak.findings import normalise
from firebreak.incidents import incident_id_for
from firebreak.models import Incident, Playbook, Triage
from firebreak.routing import route
from firebreak.settings import Settings

logger = Logger()

EXEMPT_TAG = "firebreak:exempt"
# The playbooks this stack has a state machine for; a finding routed elsewhere is escalated to a person.
DEPLOYED_PLAYBOOKS = frozenset({Playbook.BLOCK_IP, Playbook.NOTIFY_ONLY})


def escalation_for(playbook: Playbook, rule: str) -> str | None:
    """Why a person, not Firebreak, must act on this incident; None when Firebreak may act itself."""
    if playbook not in DEPLOYED_PLAYBOOKS:
        return f"routed to {playbook.value} (rule {rule}), which this stack does not run: act by hand"
    return None


def triage(incident: Incident, settings: Settings) -> Triage:
    """Route the incident; exempt resources are never touched, and decide_mode says whether it plans, acts or waits."""
    routed = route(incident)
    exempt = (incident.tag(EXEMPT_TAG) or "").lower() == "true"
    escalation = escalation_for(routed.playbook, routed.name)
    playbook = Playbook.NOTIFY_ONLY if exempt or escalation else routed.playbook
    mode, approval = decide_mode(incident, playbook, settings)
    return Triage(
        incident_id=incident_id_for(incident),
        incident=incident,
        playbook=playbook,
        mode=mode,
        suppressed_reason=f"resource tagged {EXEMPT_TAG}=true" if exempt else None,
        escalation=escalation,
        approval=approval,
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    result = triage(normalise(event.get("input") or {}), Settings.from_env())
    logger.info(
        "Triaged finding",
        extra={"incident_id": result.incident_id, "playbook": result.playbook.value, "mode": result.mode.value},
    )
    return result.to_dict()
