"""Publish Threat Intel Set: {} -> Publication; the feed IPSets' entries as a GuardDuty ThreatIntelSet, when enabled.

Off unless THREAT_INTEL_DETECTOR_ID names a GuardDuty detector; GuardDuty then raises findings on traffic with these
addresses even where no web ACL sits in front.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.waf import IpSetRef
from firebreak.feeds.config import FeedSettings
from firebreak.feeds.threat_intel import Publication, publish

logger = Logger()


def feed_entries(waf: Any, settings: FeedSettings) -> list[str]:
    entries: list[str] = []
    for arn in (settings.ipv4_set_arn, settings.ipv6_set_arn):
        ipset = IpSetRef.from_arn(arn)
        entries += waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)["IPSet"]["Addresses"]
    return entries


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    detector_id = os.environ.get("THREAT_INTEL_DETECTOR_ID", "")
    if not detector_id:
        return Publication("DISABLED", 0).to_dict()
    entries = feed_entries(aws.client("wafv2"), FeedSettings.from_env())
    bucket = os.environ["FEED_BUCKET_NAME"]
    result = publish(entries, bucket, detector_id, aws.client("s3"), aws.client("guardduty"))
    logger.info("Published threat intel set", extra={**result.to_dict(), "detector_id": detector_id})
    return result.to_dict()
