"""Block Addresses: {incident_id, mode, verdicts, account, region} -> {actions, nacl_addresses}; once in WAF."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.blocking.block import WRITE_RESERVE_SECONDS, block
from firebreak.blocking.blocklist import Blocklist
from firebreak.core import aws
from firebreak.core.account import guarded_addresses
from firebreak.core.models import Mode, Outcome, Verdict
from firebreak.core.settings import Settings
from firebreak.core.waf import client_for
from firebreak.incident.events import METRICS_NAMESPACE

logger = Logger()
# Named here, not only by the environment: the module may be imported before the environment is set.
metrics = Metrics(namespace=METRICS_NAMESPACE)


@metrics.log_metrics
@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = event["input"]
    settings = Settings.from_env()
    verdicts = [Verdict.from_dict(item) for item in request.get("verdicts") or ()]
    blocklist = Blocklist(aws.client("dynamodb"), settings.blocklist_table)
    incident_id, mode = request["incident_id"], Mode(request["mode"])
    where = (request.get("account", ""), request.get("region", ""), incident_id)
    owned = guarded_addresses(*where) if any(v.blocks for v in verdicts) else {}
    # The IPSets' writer places them in a batch window or two; past what this invocation affords, it writes itself.
    wait = max(0.0, context.get_remaining_time_in_millis() / 1000 - WRITE_RESERVE_SECONDS)
    result = block(verdicts, mode, incident_id, settings, blocklist, client_for, owned, int(time.time()), wait)
    # The alarm on this metric warns the responders before a block list reaches its limit.
    metrics.add_metric(name="BlocklistUsagePercent", unit=MetricUnit.Percent, value=result.usage_percent)
    new = sum(action.outcome is Outcome.APPLIED for action in result.actions)
    metrics.add_metric(name="AddressesBlocked", unit=MetricUnit.Count, value=new)
    logger.info("Blocked addresses", extra={"outcomes": {a.target: a.outcome.value for a in result.actions}})
    return {
        "actions": [action.to_dict() for action in result.actions],
        "nacl_addresses": list(result.accepted) if settings.nacl_blocking else [],
    }
