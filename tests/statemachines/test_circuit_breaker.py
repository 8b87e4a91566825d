"""The circuit breaker on the real entry machine: past MaxContainmentsPerHour, Firebreak escalates and never acts."""

from __future__ import annotations

import copy
import json
from typing import Any

from firebreak_local.engine import Engine
from tests.support import TEMPLATE, load_event


def brute_force_from(number: int) -> dict[str, Any]:
    """A distinct finding (id and public source address) of the SSH brute-force sample."""
    event = copy.deepcopy(load_event("eventbridge/guardduty_ssh_brute_force"))
    detail = event["detail"]
    detail["id"] = f"flood{number:027d}"
    remote = detail["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]
    remote["ipAddressV4"] = f"45.155.{number // 200}.{number % 200 + 1}"
    return event


def test_flood_of_destructive_findings_blocks_up_to_the_limit_then_escalates() -> None:
    # GIVEN a stack allowing 10 destructive responses per hour
    with Engine(TEMPLATE, {"MaxContainmentsPerHour": "10"}) as engine:
        # WHEN 100 distinct brute-force findings from 100 public addresses arrive
        reports = []
        for number in range(100):
            event = brute_force_from(number)
            rule = engine.matching_rule(event)
            assert rule is not None
            execution = engine.start(rule, event)
            assert execution.status == "SUCCEEDED", execution.cause
            reports.append(execution.output)

        # THEN exactly 10 were blocked and the other 90 escalated to a person with the breaker's reason
        statuses = [report["status"] for report in reports]
        assert statuses.count("CONTAINED") == 10
        assert statuses.count("NOTIFIED") == 90
        assert statuses[:10] == ["CONTAINED"] * 10
        assert len(engine.blocked_ips()) == 10
        escalated = [report for report in reports if report["status"] == "NOTIFIED"]
        assert {report["playbook"] for report in escalated} == {"notify-only"}
        assert {report["escalation"] for report in escalated} == {
            "circuit breaker open: 10 destructive responses this hour; approve by hand"
        }
        messages = engine.notifications()
        assert len(messages) == 100
        told = [json.loads(message["message"]) for message in messages]
        assert sum(1 for m in told if (m["escalation"] or "").startswith("circuit breaker open: 10 ")) == 90
        assert not any(a["type"] == "block_ip" for report in escalated for a in report["actions"])


def test_dry_run_and_notify_only_findings_take_no_slot() -> None:
    # GIVEN a limit of 1 and a stack in dry-run
    with Engine(TEMPLATE, {"MaxContainmentsPerHour": "1", "ResponseMode": "dry-run"}) as engine:
        # WHEN two brute-force findings run
        outputs = [engine.start(engine.matching_rule(e), e).output for e in (brute_force_from(1), brute_force_from(2))]  # type: ignore[arg-type]

        # THEN both are planned: nothing that changes nothing is counted against the breaker
        assert [output["status"] for output in outputs] == ["DRY_RUN", "DRY_RUN"]
        assert [output["escalation"] for output in outputs] == [None, None]
