"""Export Stix Bundle: {incident_id, incident, status, actions, finding} -> {exported, indicators}.

Stores the incident's indicators as a STIX 2.1 bundle on its record (attribute stix_bundle), for a TAXII server or
MISP; sample findings and incidents without a shareable address export nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.models import Incident, actions_from
from firebreak.core.settings import Settings
from firebreak.intel.sharing import export_bundle

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = event["input"]
    settings = Settings.from_env()
    incident_id = request["incident_id"]
    result = export_bundle(
        aws.client("dynamodb"),
        settings.incident_table,
        incident_id,
        Incident.from_dict(request["incident"]),
        str(request.get("status", "")),
        actions_from(request.get("actions")),
        request.get("finding"),
        settings.allow_list,
    )
    if result.exported:
        logger.info("Exported STIX bundle", extra={"incident_id": incident_id, "indicators": result.indicators})
    else:
        logger.info("Nothing to share", extra={"incident_id": incident_id})
    return result.to_dict()
