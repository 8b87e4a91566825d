"""Parse Finding: EventBridge detail -> Triage (incident, id, playbook, mode); raises FindingRejected."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak import aws
from firebreak.breaker import open_message, take_slot
from firebreak.credentials import manual_steps
from firebreak.findings import normalise
from firebreak.incidents import incident_id_for
from firebreak.models import Incident, Mode, Playbook, Triage
from firebreak.routing import route
from firebreak.settings import Settings

logger = Logger()

EXEMPT_TAG = "firebreak:exempt"
# The playbooks this stack has a state machine for; a finding routed elsewhere is escalated to a person.
DEPLOYED_PLAYBOOKS = frozenset(
    {Playbook.BLOCK_IP, Playbook.CONTAIN_INSTANCE, Playbook.REVOKE_CREDENTIALS, Playbook.NOTIFY_ONLY}
)


def product_company(incident: Incident) -> str | None:
    """The <company> of a Security Hub product ARN (arn:aws:securityhub:region:account:product/<company>/<name>)."""
    _, _, product = (incident.product_arn or "").partition(":product/")
    return product.split("/", 1)[0] or None


def escalation_for(incident: Incident, playbook: Playbook, rule: str, settings: Settings) -> str | None:
    """Why a person, not Firebreak, must act on this incident; None when Firebreak may act itself."""
    if incident.source == "securityhub" and product_company(incident) not in settings.trusted_product_companies:
        # Anyone with securityhub:BatchImportFindings can write a finding: untrusted products never act alone.
        return f"finding from untrusted product {incident.product_arn or 'unknown'}: review it and act by hand"
    if playbook not in DEPLOYED_PLAYBOOKS:
        return f"routed to {playbook.value} (rule {rule}), which this stack does not run: act by hand"
    return None


def triage(incident: Incident, settings: Settings) -> Triage:
    """Route the incident; samples never act, exempt resources are never touched, untrusted findings escalate."""
    routed = route(incident)
    exempt = (incident.tag(EXEMPT_TAG) or "").lower() == "true"
    escalation = escalation_for(incident, routed.playbook, routed.name, settings)
    playbook = Playbook.NOTIFY_ONLY if exempt or escalation else routed.playbook
    if escalation is None and playbook is Playbook.NOTIFY_ONLY:
        # Root, AWS service and federated principals: no policy here can stop them, so tell a person what to do.
        escalation = manual_steps(incident)
    return Triage(
        incident_id=incident_id_for(incident),
        incident=incident,
        playbook=playbook,
        mode=Mode.DRY_RUN if incident.sample else settings.mode_for(playbook),
        suppressed_reason=f"resource tagged {EXEMPT_TAG}=true" if exempt else None,
        escalation=escalation,
    )


def destructive(result: Triage) -> bool:
    """Whether the playbook will change the account: anything but notify-only, outside dry-run."""
    return result.playbook is not Playbook.NOTIFY_ONLY and result.mode is not Mode.DRY_RUN


def through_breaker(result: Triage, settings: Settings) -> Triage:
    """The triage unchanged while the hour's budget lasts; past it, escalated to a person and never acted on."""
    if not destructive(result) or not settings.breaker_table:
        return result
    slot = take_slot(
        aws.client("dynamodb"),
        settings.breaker_table,
        result.incident.account_id,
        settings.max_containments_per_hour,
        datetime.now(UTC),
    )
    if slot.granted:
        return result
    # Until the approval workflow exists, "switch to approval" means notify-only with the reason: never act.
    logger.warning("Circuit breaker open", extra={"incident_id": result.incident_id, "used": slot.used})
    return dataclasses.replace(result, playbook=Playbook.NOTIFY_ONLY, escalation=open_message(slot.used))


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    settings = Settings.from_env()
    result = through_breaker(triage(normalise(event.get("input") or {}), settings), settings)
    logger.info(
        "Triaged finding",
        extra={"incident_id": result.incident_id, "playbook": result.playbook.value, "mode": result.mode.value},
    )
    return result.to_dict()
