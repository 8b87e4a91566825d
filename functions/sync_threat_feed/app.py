"""Sync Feed: {feed, names} -> FeedReport; fetches one feed, validates every entry and syncs the feed IPSets.

A feed that cannot be fetched or parsed raises FeedFetchFailed or FeedParseFailed before anything is written, so its
addresses stay as they were; the state machine catches the error and alerts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.errors import FeedParseFailed
from firebreak.core.models import Mode
from firebreak.core.settings import Settings
from firebreak.feeds.config import Feed, FeedSettings, screen
from firebreak.feeds.formats import parse_document
from firebreak.feeds.sources import fetch
from firebreak.feeds.sync import FeedReport, sync_feed

logger = Logger()
metrics = Metrics()


def run(feed: Feed, configured: list[str], settings: FeedSettings, dry_run: bool) -> FeedReport:
    document = fetch(feed, aws.client("secretsmanager"), aws.client("s3"))
    parsed = parse_document(feed, document, datetime.now(UTC))
    if not parsed.candidates and not feed.allow_empty:
        # An error page or an emptied file must not read as "the feed now lists nothing" and empty the set.
        raise FeedParseFailed(f"feed {feed.name} has no entries ({len(parsed.rejections)} refused); set allow_empty")
    screened = screen(parsed.candidates, settings, settings.cap_for(feed))
    rejections = parsed.rejections + screened.rejections
    return sync_feed(
        feed, screened.accepted, rejections, configured, settings, aws.client("dynamodb"), aws.client("wafv2"), dry_run
    )


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
    request = event["input"]
    feed = Feed.from_dict(request["feed"])
    dry_run = Settings.from_env().response_mode is Mode.DRY_RUN
    report: FeedReport | None = None
    try:
        report = run(feed, list(request.get("names") or [feed.name]), FeedSettings.from_env(), dry_run)
    finally:
        if report is None:
            # Counted, and the error left to propagate: the state machine's Catch turns it into the alert.
            metrics.add_dimension(name="feed", value=feed.name)
            metrics.add_metric(name="FeedSyncFailed", unit=MetricUnit.Count, value=1)
    record_metrics(report)
    counts = {key: value for key, value in report.to_dict().items() if key != "feed"}
    logger.info("Synced feed", extra={"feed": feed.name, **counts})
    return report.to_dict()
