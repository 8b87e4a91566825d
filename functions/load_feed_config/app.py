"""Load Feed Config: {} -> {feeds: [Feed], names: [str]}; reads the SSM parameter and validates it (JSON Schema)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.feeds.config import FeedSettings, parse_config

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    parameter = FeedSettings.from_env().config_parameter
    text = aws.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    feeds = parse_config(text)
    logger.info("Loaded feed configuration", extra={"parameter": parameter, "feeds": [f.name for f in feeds]})
    return {"feeds": [feed.to_dict() for feed in feeds], "names": [feed.name for feed in feeds]}
