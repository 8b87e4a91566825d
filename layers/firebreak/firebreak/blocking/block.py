"""The block step: which addresses an incident may block, their record in the block list, and the WAF IPSets.

Every address is recorded in the blocklist table first. With the stack's IPSet writer (Settings.ipset_writer), an
address some IPSet lacks is recorded as pending and the step waits until the writer, which coalesces every pending
address of a batch window into one UpdateIPSet per IPSet, has put it in place; only then is it reported applied.
Without the writer (or past the step's deadline) the step brings the IPSets up to the table's state itself.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from firebreak.blocking.blocklist import Blocklist, Recorded
from firebreak.core.addresses import host_cidr, partition
from firebreak.core.errors import BlockFailed
from firebreak.core.models import Action, ActionType, Mode, Outcome, Verdict
from firebreak.core.settings import Settings
from firebreak.core.waf import Convergence, IpSetRef, converge, present_addresses

WafFor = Callable[[IpSetRef], Any]
# What a step keeps of its Lambda's remaining time for a write of its own (LockToken retries included) and the answer.
WRITE_RESERVE_SECONDS = 10.0
# How a step asks whether the writer has placed its addresses: first at Lambda's pace of looking at a stream (about 4
# times a second; a lone block's writer starts only once its 1 s batch window closes), then less often, a few times
# per batch window (a storm's window, opened by earlier blocks, may close at any moment).
FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 0.5
OVER_THE_CAP = "over the cap of"
CAPPED_SHOWN = 10


@dataclass(frozen=True)
class Blocked:
    """What the step did: one action per address, the CIDRs that passed every guard, and the fullest set's usage."""

    actions: tuple[Action, ...]
    accepted: tuple[str, ...]
    usage_percent: float


def block(
    verdicts: Sequence[Verdict],
    mode: Mode,
    incident_id: str,
    settings: Settings,
    blocklist: Blocklist,
    waf_for: WafFor,
    owned: Mapping[str, str],
    now: int,
    wait_seconds: float,
) -> Blocked:
    """Guards first (non-global, allow list, own addresses, cap, headroom), then the record and the IPSets.

    wait_seconds bounds how long the step waits for the IPSets' writer before writing its addresses itself.
    """
    cidrs, skipped = choose(verdicts, settings, owned)
    active = blocklist.active(now)
    accepted, refused = within_headroom(cidrs, active, settings)
    if mode is Mode.DRY_RUN:
        actions = plan(accepted, settings)
    else:
        actions = enforce(accepted, incident_id, settings, blocklist, waf_for, now, wait_seconds)
    return Blocked(tuple(skipped + refused + actions), tuple(accepted), usage_percent(active, accepted, settings))


def family(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).version


def when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def choose(verdicts: Sequence[Verdict], settings: Settings, owned: Mapping[str, str]) -> tuple[list[str], list[Action]]:
    """The host CIDRs to block, and a skipped action with its reason for every address that must not be."""
    skipped = [
        Action(ActionType.BLOCK_IP, v.address, Outcome.SKIPPED, "; ".join(v.evidence) or f"verdict {v.verdict}")
        for v in verdicts
        if not v.blocks
    ]
    allowed, refused = partition(
        [v.address for v in verdicts if v.blocks], settings.allow_list, settings.max_addresses_per_incident, owned
    )
    capped = [r for r in refused if r.reason.startswith(OVER_THE_CAP)]
    skipped += [Action(ActionType.BLOCK_IP, r.address, Outcome.SKIPPED, r.reason) for r in refused if r not in capped]
    if capped:
        # One line for a port probe's thousand addresses: one each would burst the 256 KiB state payload.
        shown = ", ".join(r.address for r in capped[:CAPPED_SHOWN]) + (", ..." if len(capped) > CAPPED_SHOWN else "")
        target = f"{len(capped)} more addresses ({shown})"
        skipped.append(Action(ActionType.BLOCK_IP, target, Outcome.SKIPPED, capped[0].reason))
    return [host_cidr(address) for address in allowed], skipped


def within_headroom(
    cidrs: Iterable[str], active: Mapping[int, set[str]], settings: Settings
) -> tuple[list[str], list[Action]]:
    """Refuse the new CIDRs that would take an IPSet past its limit; re-sightings of blocked ones always pass."""
    accepted: list[str] = []
    refused: list[Action] = []
    growth = {4: 0, 6: 0}
    for cidr in cidrs:
        version = family(cidr)
        blocked = active.get(version, set())
        if cidr not in blocked and len(blocked) + growth[version] >= settings.ipset_limit:
            reason = (
                f"IPv{version} block list is full: {len(blocked) + growth[version]} of {settings.ipset_limit} addresses"
                f" ({settings.ipset_headroom} kept free below WAF's 10,000 per IPSet)"
            )
            refused.append(Action(ActionType.BLOCK_IP, cidr, Outcome.SKIPPED, reason))
            continue
        growth[version] += cidr not in blocked
        accepted.append(cidr)
    return accepted, refused


def usage_percent(active: Mapping[int, set[str]], cidrs: Iterable[str], settings: Settings) -> float:
    """How full the fullest block list is, counting these CIDRs in, as a share of the usable limit."""
    sizes = {version: set(blocked) for version, blocked in active.items()}
    for cidr in cidrs:
        sizes.setdefault(family(cidr), set()).add(cidr)
    return max((100.0 * len(blocked) / settings.ipset_limit for blocked in sizes.values()), default=0.0)


def plan(cidrs: Sequence[str], settings: Settings) -> list[Action]:
    """Dry-run: what enforce would do, call by call, with nothing changed."""
    expiry = f"for {settings.block_ttl_hours} h" if settings.block_ttl_hours else "without expiry"
    actions = []
    for cidr in cidrs:
        names = ", ".join(IpSetRef.from_arn(arn).name for arn in settings.ipset_arns(family(cidr)))
        reason = f"would record {expiry} in the block list (UpdateItem) and add to WAF IPSet {names} (UpdateIPSet)"
        actions.append(Action(ActionType.BLOCK_IP, cidr, Outcome.PLANNED, reason))
    return actions


def enforce(
    cidrs: Sequence[str],
    incident_id: str,
    settings: Settings,
    blocklist: Blocklist,
    waf_for: WafFor,
    now: int,
    wait_seconds: float,
) -> list[Action]:
    """Record every CIDR, have the IPSets of their IP versions hold them, and say per CIDR what is really in place."""
    ttl = settings.block_ttl_hours * 3600
    # Read before recording: a CIDR already listed while the table held no block for it was put there by a person.
    versions = {arn: version for version in sorted({family(c) for c in cidrs}) for arn in settings.ipset_arns(version)}
    listed = {arn: present_addresses(waf_for(IpSetRef.from_arn(arn)), IpSetRef.from_arn(arn)) for arn in versions}
    missing = [cidr for cidr in cidrs if not all(cidr in listed[arn] for arn in settings.ipset_arns(family(cidr)))]
    pending = settings.ipset_writer
    recorded = {
        cidr: blocklist.record(cidr, family(cidr), incident_id, now, ttl, pending=pending and cidr in missing)
        for cidr in cidrs
    }
    # Placed by the writer: in every IPSet of its version. The rest (no writer, or it has not answered in time) the
    # step writes itself; the LockToken keeps that write from undoing the writer's.
    unplaced = await_writer(blocklist, missing, wait_seconds) if pending and missing else set(missing)
    placed = set(missing) - unplaced
    results: dict[str, Convergence | BlockFailed] = {}
    for arn, version in versions.items():
        ipset = IpSetRef.from_arn(arn)
        mine = [cidr for cidr in cidrs if cidr in unplaced and family(cidr) == version]
        if not mine:
            after = listed[arn] | {cidr for cidr in placed if family(cidr) == version}
            results[arn] = Convergence(ipset, listed[arn], after, 0)
            continue

        def desired(version: int = version) -> set[str]:
            return blocklist.active(now)[version]

        try:
            # time.sleep read now, not converge's default bound at import: the local engine's clock replaces it.
            results[arn] = converge(waf_for(ipset), ipset, desired, prune=False, required=mine, sleep=time.sleep)
        except BlockFailed as error:
            results[arn] = error
    return [_outcome(recorded[cidr], settings, results, listed) for cidr in cidrs]


def await_writer(
    blocklist: Blocklist,
    cidrs: Sequence[str],
    seconds: float,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> set[str]:
    """Wait up to seconds for the IPSets' writer to place the CIDRs; those it has not placed by then.

    The writer clears a CIDR's pending mark only once every IPSet of its version holds it, so a cleared mark, read
    consistently, is proof the address is blocked; one poll reads every CIDR of the step at once. A CIDR the writer
    said it could not write is not waited for any longer.
    """
    sleep, monotonic = sleep or time.sleep, monotonic or time.monotonic
    deadline = monotonic() + seconds
    pause = FIRST_POLL_SECONDS
    pending = dict.fromkeys(cidrs, "")
    while any(not reason for reason in pending.values()):
        remaining = deadline - monotonic()
        if remaining <= 0:
            break
        sleep(min(pause, remaining))
        pending = blocklist.pending(pending)
        pause = min(pause * 2, MAX_POLL_SECONDS)
    return set(pending)


def _outcome(
    recorded: Recorded,
    settings: Settings,
    results: Mapping[str, Convergence | BlockFailed],
    listed: Mapping[str, frozenset[str]],
) -> Action:
    """Applied only when the CIDR is in every IPSet of its version after the writes; failed, with why, otherwise."""
    cidr = recorded.cidr
    arns = settings.ipset_arns(family(cidr))
    names = ", ".join(IpSetRef.from_arn(arn).name for arn in arns)
    missing = []
    for arn in arns:
        result = results[arn]
        if isinstance(result, BlockFailed):
            missing.append(str(result))
        elif cidr not in result.after:
            missing.append(f"not in WAF IPSet {result.ipset.name} after the update")
    if missing:
        return Action(ActionType.BLOCK_IP, cidr, Outcome.FAILED, "; ".join(missing))
    until = f"until {when(recorded.expires_at)}" if recorded.expires_at else "without expiry"
    # "ipset" is the release contract's key (incident.release); "ipsets" adds the CLOUDFRONT set when there is one.
    after = {"ipset": arns[0], "ipsets": list(arns), "present": True, "expires_at": recorded.expires_at or None}
    if recorded.new and all(cidr in listed[arn] for arn in arns):
        # Release leaves what Firebreak did not put there (incident.release); the table keeps it until it expires.
        reason = f"already in WAF IPSet {names}, put there outside Firebreak; recorded {until}"
        return Action(ActionType.BLOCK_IP, cidr, Outcome.ALREADY_APPLIED, reason, after, after)
    if recorded.new:
        before = {"ipset": arns[0], "ipsets": list(arns), "present": False}
        return Action(
            ActionType.BLOCK_IP, cidr, Outcome.APPLIED, f"blocked in WAF IPSet {names} {until}", before, after
        )
    reason = f"already blocked since {when(recorded.first_blocked)}; block extended, now {until}"
    return Action(ActionType.BLOCK_IP, cidr, Outcome.ALREADY_APPLIED, reason, after, after)
