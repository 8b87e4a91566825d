"""Block Addresses: {incident, mode, verdicts} -> {actions: [block_ip Action]}; adds attackers to the WAF IPSets."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak import aws
from firebreak.addresses import canonical, host_cidr, partition
from firebreak.errors import BlockFailed
from firebreak.models import Action, ActionType, Mode, Outcome, Verdict
from firebreak.settings import Settings
from firebreak.waf import IpSetRef, add_addresses

logger = Logger()
OVER_THE_CAP = "over the cap of"
CAPPED_SHOWN = 10


def choose(verdicts: Sequence[Verdict], settings: Settings) -> tuple[list[str], list[Action]]:
    """The addresses to block, and a skipped action with its reason for every one that must not be."""
    skipped = [
        Action(ActionType.BLOCK_IP, v.address, Outcome.SKIPPED, "; ".join(v.evidence) or f"verdict {v.verdict}")
        for v in verdicts
        if not v.blocks
    ]
    allowed, refused = partition(
        [v.address for v in verdicts if v.blocks], settings.allow_list, settings.max_addresses_per_incident
    )
    capped = [r for r in refused if r.reason.startswith(OVER_THE_CAP)]
    skipped += [Action(ActionType.BLOCK_IP, r.address, Outcome.SKIPPED, r.reason) for r in refused if r not in capped]
    if capped:
        # One line for a port probe's thousand addresses: one each would burst the 256 KiB state payload.
        shown = ", ".join(r.address for r in capped[:CAPPED_SHOWN]) + (", ..." if len(capped) > CAPPED_SHOWN else "")
        target = f"{len(capped)} more addresses ({shown})"
        skipped.append(Action(ActionType.BLOCK_IP, target, Outcome.SKIPPED, capped[0].reason))
    return list(allowed), skipped


def ipset_for(address: str, settings: Settings) -> IpSetRef:
    version = ipaddress.ip_address(canonical(address)).version
    return IpSetRef.from_arn(settings.blocked_ipv4_set_arn if version == 4 else settings.blocked_ipv6_set_arn)


def block(addresses: Sequence[str], mode: Mode, settings: Settings) -> list[Action]:
    """One read-merge-write per IPSet for all of the incident's addresses of that family."""
    by_set: dict[IpSetRef, list[str]] = {}
    for address in addresses:
        by_set.setdefault(ipset_for(address, settings), []).append(host_cidr(address))
    actions: list[Action] = []
    for ipset, cidrs in by_set.items():
        if mode is Mode.DRY_RUN:
            reason = f"would add to WAF IPSet {ipset.name} (GetIPSet, UpdateIPSet)"
            actions += [Action(ActionType.BLOCK_IP, cidr, Outcome.PLANNED, reason) for cidr in cidrs]
            continue
        try:
            result = add_addresses(aws.client("wafv2"), ipset, cidrs)
        except BlockFailed as error:
            logger.warning("Block failed", extra={"ipset": ipset.name, "error": str(error)})
            actions += [Action(ActionType.BLOCK_IP, cidr, Outcome.FAILED, str(error)) for cidr in cidrs]
            continue
        before, after = {"ipset": ipset.arn, "present": False}, {"ipset": ipset.arn, "present": True}
        actions += [
            Action(ActionType.BLOCK_IP, cidr, Outcome.APPLIED, f"added to WAF IPSet {ipset.name}", before, after)
            for cidr in result.added
        ]
        # The incident relies on these blocks too; release keeps them while it is open (firebreak.release).
        held = {"ipset": ipset.arn, "present": True}
        actions += [
            Action(ActionType.BLOCK_IP, cidr, Outcome.ALREADY_APPLIED, f"already in WAF IPSet {ipset.name}", held, held)
            for cidr in result.already_present
        ]
    return actions


@logger.inject_lambda_context
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = event["input"]
    settings = Settings.from_env()
    verdicts = [Verdict.from_dict(item) for item in request.get("verdicts") or ()]
    addresses, skipped = choose(verdicts, settings)
    actions = skipped + block(addresses, Mode(request["mode"]), settings)
    logger.info("Blocked addresses", extra={"outcomes": {a.target: a.outcome.value for a in actions}})
    return {"actions": [action.to_dict() for action in actions]}
