"""Export Stix Bundle: {incident_id, incident, status, actions, finding} -> {exported, indicators}.

Stores the incident's indicators as a STIX 2.1 bundle on its record (attribute stix_bundle), for a TAXII server or
MISP; sample findings and incidents without a shareable address export nothing.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Incident, actions_from
from firebreak.core.settings import Settings
from firebreak.intel.sharing import incident_bundle, seen_times

logger = Logger()


def store(dynamodb: Any, table: str, incident_id: str, bundle: dict[str, Any]) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"incident_id": {"S": incident_id}},
        UpdateExpression="SET stix_bundle = :bundle",
        ConditionExpression="attribute_exists(incident_id)",
        ExpressionAttributeValues={":bundle": {"S": json.dumps(bundle, separators=(",", ":"))}},
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = event["input"]
    settings = Settings.from_env()
    incident_id = request["incident_id"]
    first_seen, last_seen = seen_times(request.get("finding"))
    bundle = incident_bundle(
        incident_id,
        Incident.from_dict(request["incident"]),
        str(request.get("status", "")),
        actions_from(request.get("actions")),
        first_seen,
        last_seen,
        settings.allow_list,
    )
    if bundle is None:
        logger.info("Nothing to share", extra={"incident_id": incident_id})
        return {"exported": False, "indicators": 0}
    store(aws.client("dynamodb"), settings.incident_table, incident_id, bundle)
    indicators = sum(1 for item in bundle["objects"] if item["type"] == "indicator")
    logger.info("Exported STIX bundle", extra={"incident_id": incident_id, "indicators": indicators})
    return {"exported": True, "indicators": indicators}
