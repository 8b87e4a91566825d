"""The blocklist table's stream (one invocation at a time, per batch window): {Records} -> {placed, failures, ...}.

The records only say that something is pending; the writer reads the table, which is the truth, and writes every
pending address of the window in one UpdateIPSet per IPSet.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.writer import write_pending
from firebreak.core import aws
from firebreak.core.settings import Settings
from firebreak.core.waf import client_for

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_env()
    blocklist = Blocklist(aws.client("dynamodb"), settings.blocklist_table)
    # An error raised here (throttling that outlasted the client's retries) makes Lambda retry the batch.
    written = write_pending(blocklist, client_for, settings, int(time.time()))
    if written.failures:
        logger.warning("IPSets not written", extra={"failures": list(written.failures)})
    logger.info("Wrote IPSets", extra={"records": len(event.get("Records") or ()), **written.to_dict()})
    return written.to_dict()
