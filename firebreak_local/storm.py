"""`make bench-storm`: a finding storm through the local engine — many findings, few attackers, all at once.

Runs with the template's default parameters, on the engine's simulated clock (waits, retries, batch windows take
no real time, and are counted as AWS would spend them). Prints how many addresses ended up blocked (each once), how
many were lost, per attacker the simulated time from its first finding to its block (median, p95, max), how many
UpdateIPSet calls the storm cost, how many Lambda invokes were throttled past a function's reserved concurrency (the
playbooks retry them), how many executions failed or wait for approval, and the wall time with the machine's load.
The figures are measured, never asserted here; the storm tests assert them on smaller storms.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firebreak_local import runtime
from firebreak_local.engine import Engine, Execution

BASE_EVENT = Path("events/eventbridge/guardduty_ssh_brute_force.json")


@dataclass(frozen=True)
class StormResult:
    expected: frozenset[str]
    blocked: tuple[str, ...]
    applied: Counter[str]
    executions: tuple[Execution, ...]
    update_ip_set_calls: int
    throttled_invokes: int
    wall_seconds: float
    # Simulated seconds from the storm's start (every finding at once) to the address in every IPSet that got it.
    time_to_block: dict[str, float] = field(default_factory=dict)
    simulated_seconds: float = 0.0  # to the last execution's end
    clock_stalls: int = 0

    @property
    def lost(self) -> frozenset[str]:
        """Addresses some execution blocked that are not in the block lists now."""
        return self.expected - set(self.blocked)

    @property
    def duplicated(self) -> dict[str, int]:
        """Addresses listed more than once in one IPSet, or reported as newly applied by more than one incident."""
        listed = Counter(self.blocked)
        return {
            cidr: max(listed[cidr], self.applied[cidr])
            for cidr in self.expected
            if max(listed[cidr], self.applied[cidr]) != 1
        }

    @property
    def waiting(self) -> tuple[Execution, ...]:
        """Executions held for a person's approval (the circuit breaker, for one): still running, not failed."""
        return tuple(e for e in self.executions if _status(e) == "AWAITING_APPROVAL")

    @property
    def failed(self) -> tuple[Execution, ...]:
        return tuple(
            e
            for e in self.executions
            if e not in self.waiting and (e.status != "SUCCEEDED" or _status(e) in {"FAILED", "PARTIALLY_CONTAINED"})
        )


def attackers(count: int) -> list[str]:
    """count public attacker addresses, IPv4 and IPv6 alternating."""
    addresses = []
    for index in range(count):
        if index % 2:
            addresses.append(str(ipaddress.IPv6Address(f"2a0e:97c0:3e3:2a2::{index + 1:x}")))
        else:
            addresses.append(f"45.155.{205 + index // 250}.{index % 250 + 1}")
    return addresses


def findings(base: dict[str, Any], count: int, addresses: Sequence[str], seed: int = 5) -> list[dict[str, Any]]:
    """count distinct brute-force findings spread over the addresses (each address at least once), shuffled."""
    order = [addresses[index % len(addresses)] for index in range(count)]
    random.Random(seed).shuffle(order)
    events = []
    for index, address in enumerate(order):
        event = copy.deepcopy(base)
        event["id"] = f"storm-event-{index:05d}"
        detail = event["detail"]
        detail["id"] = f"storm{index:05d}{detail['id'][10:]}"
        remote = detail["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]
        remote.pop("ipAddressV4", None)
        remote["ipAddressV6" if ":" in address else "ipAddressV4"] = address
        detail["title"] = f"{address} is performing SSH brute force attacks."
        events.append(event)
    return events


def run_storm(engine: Engine, events: Sequence[dict[str, Any]]) -> StormResult:
    """Start every event at once and measure what the block lists hold afterwards (and, on an engine with the
    simulated clock, when each address went into its IPSets)."""
    runs = []
    for event in events:
        rule = engine.matching_rule(event)
        if rule is None:
            raise ValueError("a storm event matched no rule of the template")
        runs.append((rule, event))
    throttled_before = sum(engine.dispatcher.throttled.values())
    clock = engine.clock
    writes: list[tuple[float, str, list[str]]] = []

    def watch(event_name: str, request: Any) -> None:
        if clock is not None and event_name.endswith(".wafv2.UpdateIPSet"):
            body = json.loads(request.body or b"{}")
            writes.append((clock.elapsed(), str(body.get("Id")), list(body.get("Addresses") or ())))

    begun = clock.elapsed() if clock is not None else 0.0
    runtime.add_guard(watch)
    started = time.perf_counter()
    try:
        executions = engine.start_many(runs)
    finally:
        runtime.remove_guard(watch)
    wall = time.perf_counter() - started
    # Overlapping executions' calls cannot be told apart: each execution reports those of the whole storm.
    calls = executions[0].api_calls if executions else {}
    applied: Counter[str] = Counter(
        action["target"]
        for execution in executions
        for action in (execution.output or {}).get("actions") or ()
        if action["type"] == "block_ip" and action["outcome"] == "applied"
    )
    expected = frozenset(_host(event) for event in events)
    return StormResult(
        expected=expected,
        blocked=tuple(engine.blocked_ips()),
        applied=applied,
        executions=tuple(executions),
        update_ip_set_calls=calls.get("wafv2.UpdateIPSet", 0),
        throttled_invokes=sum(engine.dispatcher.throttled.values()) - throttled_before,
        wall_seconds=wall,
        time_to_block=_time_to_block(writes, expected, begun),
        clock_stalls=clock.stalls if clock is not None else 0,
        simulated_seconds=max((clock.ended.get(e.arn, begun) - begun for e in executions), default=0.0)
        if clock
        else 0.0,
    )


def _time_to_block(
    writes: Sequence[tuple[float, str, list[str]]], cidrs: Iterable[str], begun: float
) -> dict[str, float]:
    """Per CIDR, when the last IPSet that holds it first got it, from the storm's start."""
    first: dict[tuple[str, str], float] = {}
    for at, ipset_id, addresses in writes:
        for address in addresses:
            cidr = ipaddress.ip_network(address, strict=False).compressed
            first.setdefault((cidr, ipset_id), at - begun)
    wanted = set(cidrs)
    times: dict[str, float] = {}
    for (cidr, _), at in first.items():
        if cidr in wanted:
            times[cidr] = max(times.get(cidr, 0.0), at)
    return times


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (share 0.5 the median, 0.95 the p95) of values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _host(event: dict[str, Any]) -> str:
    remote = event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]
    address = ipaddress.ip_address(remote.get("ipAddressV4") or remote["ipAddressV6"])
    return f"{address.compressed}/{address.max_prefixlen}"


def _status(execution: Execution) -> str | None:
    output = execution.output if isinstance(execution.output, dict) else {}
    status = output.get("status")
    return str(status) if status is not None else None


def _why(execution: Execution) -> str:
    """The first failed action's reason, or the execution's own error."""
    report = execution.output
    if not isinstance(report, dict):
        try:
            report = json.loads(execution.cause or "")
        except ValueError:
            report = {}
    actions = report.get("actions") or () if isinstance(report, dict) else ()
    failed = [f"{a['target']}: {a.get('reason', '')}" for a in actions if a.get("outcome") == "failed"]
    return (failed[0] if failed else f"{execution.status} {execution.error}: {execution.cause}")[:300]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak_local.storm", description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=200)
    parser.add_argument("--addresses", type=int, default=50)
    args = parser.parse_args(argv)
    root = Path("template.yaml").resolve().parent
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    out = sys.stdout
    sys.stdout = sys.stderr  # handler logs stay off the figures
    base = json.loads((root / BASE_EVENT).read_text())
    events = findings(base, args.findings, attackers(args.addresses))
    # Default parameters: the circuit breaker's address budget (MaxBlockedAddressesPerHour) is meant to let a storm
    # through, and this shows it does; a storm larger than it reports the findings that wait for approval.
    load_before = os.getloadavg()
    with Engine(root / "template.yaml", simulated_time=True) as engine:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        result = run_storm(engine, events)
    statuses = Counter(_status(e) or e.status for e in result.executions)
    families = Counter("IPv6" if ":" in cidr else "IPv4" for cidr in result.expected)
    out.write(
        f"storm: {len(events)} findings from {len(result.expected)} attacker addresses "
        f"({families['IPv4']} IPv4, {families['IPv6']} IPv6), all started at once"
        " (default parameters)\n"
    )
    out.write(
        f"addresses blocked:   {len(set(result.blocked))} of {len(result.expected)}"
        f" (listed or applied more than once: {len(result.duplicated)})\n"
    )
    out.write(f"lost updates:        {len(result.lost)}\n")
    times = list(result.time_to_block.values())
    if times:
        out.write(
            f"time to block:       median {percentile(times, 0.5):.2f} s, p95 {percentile(times, 0.95):.2f} s,"
            f" max {max(times):.2f} s (simulated, per attacker: first finding to its address in every IPSet;"
            f" {len(times)} of {len(result.expected)} measured)\n"
        )
    out.write(
        f"simulated time:      {result.simulated_seconds:.2f} s, from the first start to the last execution's end"
        f" (clock stalls: {result.clock_stalls})\n"
    )
    out.write(f"UpdateIPSet calls:   {result.update_ip_set_calls} (for {len(events)} blocks)\n")
    out.write(f"Lambda throttles:    {result.throttled_invokes} (past reserved concurrency, retried by the ASL)\n")
    out.write(f"executions failed:   {len(result.failed)}\n")
    out.write(f"awaiting approval:   {len(result.waiting)}\n")
    load_after = os.getloadavg()
    out.write(
        f"wall time:           {result.wall_seconds:.1f} s (load average {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after, {os.cpu_count()} cores)\n"
    )
    out.write(f"incident statuses:   {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}\n")
    for reason, count in Counter(_why(execution) for execution in result.failed).most_common(5):
        out.write(f"  failed x{count}: {reason}\n")
    return 0 if not (result.lost or result.failed or result.duplicated or result.waiting) else 1


if __name__ == "__main__":
    raise SystemExit(main())
