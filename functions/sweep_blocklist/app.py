"""Sweep (EventBridge Scheduler): {} -> {expired, lifted, drift_removed, drift_restored, failures, ...}."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.sweeping import SweepReport, network_acl_client, sweep
from firebreak.core import aws
from firebreak.core.settings import Settings
from firebreak.core.waf import client_for
from firebreak.incident.events import METRICS_NAMESPACE

logger = Logger()
# Named here, not only by the environment: the module may be imported before the environment is set.
metrics = Metrics(namespace=METRICS_NAMESPACE)


def tell_responders(sns: Any, topic_arn: str, report: SweepReport) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject="Firebreak DRIFT: block lists changed by hand were repaired",
        Message=report.message(),
        MessageAttributes={"status": {"DataType": "String", "StringValue": "DRIFT"}},
    )


@metrics.log_metrics
@logger.inject_lambda_context
@aws.member_sessions
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_env()
    blocklist = Blocklist(aws.client("dynamodb"), settings.blocklist_table)
    report = sweep(blocklist, client_for, network_acl_client(blocklist), settings, int(time.time()))
    if report.drift:
        logger.warning("Repaired drift", extra={"removed": report.drift_removed, "restored": report.drift_restored})
        tell_responders(aws.client("sns"), settings.responder_topic_arn, report)
    metrics.add_metric(name="BlocklistUsagePercent", unit=MetricUnit.Percent, value=report.usage_percent)
    metrics.add_metric(name="BlocksExpired", unit=MetricUnit.Count, value=len(report.expired))
    logger.info("Swept block lists", extra=report.to_dict())
    return report.to_dict()
