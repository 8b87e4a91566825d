"""Block In Network Acls: {incident_id, mode, addresses, incident} -> {actions}; deny rules in the subnet's ACL."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.nacl import RuleRange, block_in_network_acls
from firebreak.core import aws
from firebreak.core.members import workload_client
from firebreak.core.models import Incident, Mode
from firebreak.core.settings import Settings

logger = Logger()
FUNCTION = "block_in_network_acl"


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = event["input"]
    settings = Settings.from_env()
    incident = Incident.from_dict(request["incident"])
    actions = block_in_network_acls(
        lambda: workload_client("ec2", incident.account_id, incident.region, FUNCTION, request["incident_id"]),
        Blocklist(aws.client("dynamodb"), settings.blocklist_table),
        incident,
        list(request.get("addresses") or ()),
        RuleRange(*settings.nacl_rules),
        Mode(request["mode"]),
    )
    logger.info("Denied in network ACLs", extra={"outcomes": {a.target: a.outcome.value for a in actions}})
    return {"actions": [action.to_dict() for action in actions]}
