"""Block In Network Acls: {incident_id, mode, addresses, incident} -> {actions}; deny rules in the subnet's ACL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.nacl import RuleRange, deny, network_acls_of
from firebreak.core import aws
from firebreak.core.errors import NetworkAclBusy
from firebreak.core.models import Action, ActionType, Incident, Mode, Outcome
from firebreak.core.settings import Settings

logger = Logger()
# Refusals of one ACL's writes that must show as failed blocks; anything else (throttling) goes to the ASL Retry.
ACL_REFUSALS = {"NetworkAclEntryLimitExceeded", "NetworkAclEntryAlreadyExists", "InvalidNetworkAclID.NotFound"}


def deny_in(
    ec2: Any, blocklist: Blocklist, acl: str, subnet: str, cidrs: Sequence[str], rules: RuleRange
) -> list[Action]:
    def action(cidr: str, outcome: Outcome, reason: str, **after: Any) -> Action:
        return Action(ActionType.BLOCK_IP, f"{cidr} in network ACL of {subnet}", outcome, reason, {}, after)

    try:
        before, after = deny(ec2, blocklist, acl, cidrs, rules, time.time())
    except NetworkAclBusy as error:
        return [action(cidr, Outcome.FAILED, str(error)) for cidr in cidrs]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ACL_REFUSALS:
            raise
        return [action(cidr, Outcome.FAILED, f"{acl}: {error.response['Error']['Message']}") for cidr in cidrs]
    actions = []
    for cidr in cidrs:
        if cidr not in after:
            reason = f"rules {rules} of {acl} hold newer attackers; the range keeps the newest, this one was evicted"
            actions.append(action(cidr, Outcome.SKIPPED, reason))
        else:
            outcome = Outcome.ALREADY_APPLIED if cidr in before else Outcome.APPLIED
            reason = f"denied inbound and outbound by rule {after[cidr]} of {acl}"
            actions.append(action(cidr, outcome, reason, network_acl=acl, rule=after[cidr]))
    return actions


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = event["input"]
    settings = Settings.from_env()
    cidrs = list(request.get("addresses") or ())
    ec2 = aws.client("ec2")
    rules = RuleRange(*settings.nacl_rules)
    subnets = [eni.subnet_id for eni in Incident.from_dict(request["incident"]).network_interfaces]
    acls = network_acls_of(ec2, [subnet for subnet in subnets if subnet])
    actions = []
    if not acls:
        reason = "the finding names no subnet, so no network ACL to deny in"
        actions = [Action(ActionType.BLOCK_IP, f"{cidr} in network ACL", Outcome.SKIPPED, reason) for cidr in cidrs]
    for acl, subnet in acls.items():
        if Mode(request["mode"]) is Mode.DRY_RUN:
            reason = (
                f"would deny inbound and outbound within rules {rules} of {acl} (oldest Firebreak rule evicted if full)"
            )
            actions += [
                Action(ActionType.BLOCK_IP, f"{c} in network ACL of {subnet}", Outcome.PLANNED, reason) for c in cidrs
            ]
            continue
        actions += deny_in(ec2, Blocklist(aws.client("dynamodb"), settings.blocklist_table), acl, subnet, cidrs, rules)
    logger.info("Denied in network ACLs", extra={"outcomes": {a.target: a.outcome.value for a in actions}})
    return {"actions": [action.to_dict() for action in actions]}
