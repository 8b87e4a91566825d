"""Sync Feed: {feed, names} -> FeedReport; fetches one feed, validates every entry and syncs the feed IPSets.

A feed that cannot be fetched or parsed raises FeedFetchFailed or FeedParseFailed before anything is written, so its
addresses stay as they were; the state machine catches the error and alerts.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Mode
from firebreak.core.settings import Settings
from firebreak.feeds.config import Feed, FeedSettings
from firebreak.feeds.sync import FeedReport, fetch_and_sync

logger = Logger()
metrics = Metrics()


def record_metrics(report: FeedReport) -> None:
    metrics.add_dimension(name="feed", value=report.feed)
    metrics.add_metric(name="FeedIndicatorsAdded", unit=MetricUnit.Count, value=len(report.added))
    metrics.add_metric(name="FeedIndicatorsRemoved", unit=MetricUnit.Count, value=len(report.removed))
    metrics.add_metric(name="FeedIndicatorsRejected", unit=MetricUnit.Count, value=len(report.rejections))
    metrics.add_metric(name="FeedIndicatorsUnchanged", unit=MetricUnit.Count, value=report.unchanged)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    feed = Feed.from_dict(event["input"]["feed"])
    names = list(event["input"].get("names") or [feed.name])
    dry_run = Settings.from_env().response_mode is Mode.DRY_RUN
    report: FeedReport | None = None
    try:
        report = fetch_and_sync(feed, names, FeedSettings.from_env(), aws.client, dry_run)
    finally:
        if report is None:
            # Counted, and the error left to propagate: the state machine's Catch turns it into the alert.
            metrics.add_dimension(name="feed", value=feed.name)
            metrics.add_metric(name="FeedSyncFailed", unit=MetricUnit.Count, value=1)
    record_metrics(report)
    logger.info("Synced feed", extra={"feed": feed.name, **{k: v for k, v in report.to_dict().items() if k != "feed"}})
    return report.to_dict()
