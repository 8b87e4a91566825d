"""Enrich Addresses: {incident} -> {verdicts: [Verdict], actions: [enrich_ip Action]} for every remote address.

Answers within ENRICHMENT_DEADLINE_SECONDS whatever the providers do: a provider that fails, hangs or is rate limited
is recorded in the action's evidence and never fails the step.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Incident
from firebreak.core.settings import EnrichmentSettings, Settings
from firebreak.intel.enrichment import enrich

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    incident = Incident.from_dict(event["input"]["incident"])
    remaining_seconds = context.get_remaining_time_in_millis() / 1000
    result = enrich(incident, Settings.from_env(), EnrichmentSettings.from_env(), aws.client, remaining_seconds)
    if result.problems:
        logger.warning("Enrichment degraded", extra={"problems": result.problems})
    verdicts = {assessment.verdict.address: assessment.verdict.verdict for assessment in result.assessments}
    logger.info("Enriched addresses", extra={"verdicts": verdicts})
    return result.to_dict()
