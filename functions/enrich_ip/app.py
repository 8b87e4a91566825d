"""Enrich Addresses: {incident} -> {verdicts: [Verdict], actions: [enrich_ip Action]} for every remote address.

Answers within ENRICHMENT_DEADLINE_SECONDS whatever the providers do: a provider that fails, hangs or is rate limited
is recorded in the action's evidence and never fails the step.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Action, ActionType, Incident, Outcome
from firebreak.core.settings import EnrichmentSettings, Settings
from firebreak.intel.cache import CachedProvider, ResultCache
from firebreak.intel.enrichment import Assessment, assess_all
from firebreak.intel.providers import Provider, ReverseDns, configured
from firebreak.intel.remote_config import address_lists, provider_keys

logger = Logger()

WITHHELD = "third parties not asked: ShareAddressesWithThirdParties is false"
# Room left after the deadline for the answer to get back to Step Functions before the Lambda timeout.
_RETURN_MARGIN_SECONDS = 2.0


def sources(config: EnrichmentSettings) -> tuple[list[Provider], list[str]]:
    """Reverse DNS and every provider with a key, behind the cache, and what kept any off; none unless sharing is on."""
    if not config.share_with_third_parties:
        return [], []
    keys = provider_keys(aws.client("secretsmanager"), config.provider_keys_secret)
    providers: list[Provider] = [ReverseDns(), *configured(keys.configs)]
    if config.cache_table:
        cache = ResultCache(aws.client("dynamodb"), config.cache_table, config.cache_seconds)
        providers = [CachedProvider(provider, cache) for provider in providers]
    return providers, list(keys.problems)


def to_action(assessment: Assessment) -> Action:
    verdict = assessment.verdict
    return Action(ActionType.ENRICH_IP, verdict.address, Outcome.APPLIED, assessment.reason(), after=assessment.after())


def to_actions(assessments: list[Assessment], limit: int) -> list[Action]:
    """Evidence for the first `limit` addresses, one line for the rest: a thousand would burst the 256 KiB payload."""
    actions = [to_action(assessment) for assessment in assessments[:limit]]
    rest = len(assessments) - limit
    if rest > 0:
        reason = f"evidence not kept: over the cap of {limit} addresses per incident (verdicts still given)"
        actions.append(Action(ActionType.ENRICH_IP, f"{rest} more addresses", Outcome.SKIPPED, reason))
    return actions


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    incident = Incident.from_dict(event["input"]["incident"])
    settings, config = Settings.from_env(), EnrichmentSettings.from_env()
    budget = min(config.deadline_seconds, context.get_remaining_time_in_millis() / 1000 - _RETURN_MARGIN_SECONDS)
    deadline = time.monotonic() + budget
    lists = address_lists(
        aws.client("ssm"), config.allow_list_parameter, config.deny_list_parameter, settings.allow_list
    )
    providers, key_problems = sources(config)
    problems = (*lists.problems, *key_problems)
    if problems:
        logger.warning("Enrichment degraded", extra={"problems": problems})
    notes = problems if config.share_with_third_parties else (*problems, WITHHELD)
    assessments = assess_all(incident, lists, providers, deadline, settings.max_addresses_per_incident, notes)
    logger.info("Enriched addresses", extra={"verdicts": {a.verdict.address: a.verdict.verdict for a in assessments}})
    return {
        "verdicts": [assessment.verdict.to_dict() for assessment in assessments],
        "actions": [action.to_dict() for action in to_actions(assessments, settings.max_addresses_per_incident)],
    }
