"""Enrich Addresses: {incident} -> {verdicts: [Verdict], actions: [enrich_ip Action]} for every remote address."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.enrichment import verdict_for
from firebreak.models import Action, ActionType, Incident, Outcome, Verdict
from firebreak.settings import Settings

logger = Logger()


def enrich(incident: Incident, settings: Settings) -> tuple[list[Verdict], list[Action]]:
    verdicts = [verdict_for(address, incident, settings.allow_list) for address in incident.remote_ips]
    actions = [
        Action(
            ActionType.ENRICH_IP,
            v.address,
            Outcome.APPLIED,
            f"{v.verdict} ({v.score}): " + "; ".join(v.evidence),
            after={"verdict": v.verdict, "score": v.score, "evidence": list(v.evidence)},
        )
        for v in verdicts
    ]
    return verdicts, actions


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    verdicts, actions = enrich(Incident.from_dict(event["input"]["incident"]), Settings.from_env())
    logger.info("Enriched addresses", extra={"verdicts": {v.address: v.verdict for v in verdicts}})
    return {"verdicts": [v.to_dict() for v in verdicts], "actions": [a.to_dict() for a in actions]}
