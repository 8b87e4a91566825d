"""The circuit breaker on the real entry machine: past either hourly budget, Firebreak alerts and asks approval."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from firebreak_local.engine import Approvals, Engine
from firebreak_local.storm import attackers, findings, run_storm
from tests.support import TEMPLATE, load_event

# The storm is 200 findings from 50 attackers (`make bench-storm`); 30 from 25 still outnumber
# MaxContainmentsPerHour (20), which used to hold all but the first 20 for approval, and stay quick and steady on a
# loaded two-core machine (60 concurrent findings timed out there once in six runs).
STORM_FINDINGS, STORM_ATTACKERS = 30, 25


def brute_force_from(number: int) -> dict[str, Any]:
    """A distinct finding (id and public source address) of the SSH brute-force sample."""
    event = copy.deepcopy(load_event("eventbridge/guardduty_ssh_brute_force"))
    detail = event["detail"]
    detail["id"] = f"flood{number:027d}"
    remote = detail["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]
    remote["ipAddressV4"] = f"45.155.{number // 200}.{number % 200 + 1}"
    return event


def test_flood_of_destructive_findings_blocks_up_to_the_limit_then_waits_for_approval_and_alerts() -> None:
    # GIVEN a stack allowing 10 blocked addresses per hour
    with Engine(TEMPLATE, {"MaxBlockedAddressesPerHour": "10"}) as engine:
        # WHEN 100 distinct brute-force findings from 100 public addresses arrive, and nobody answers: the first 10
        # one by one, the other 90 together (as a flood does), each reported once it ends or waits for approval
        events = [brute_force_from(number) for number in range(100)]
        rules = [engine.matching_rule(event) for event in events]
        assert None not in rules
        deliveries = list(zip(rules, events, strict=True))
        executions = [engine.start(rule, event, Approvals.REPORT) for rule, event in deliveries[:10]]  # type: ignore[arg-type]
        executions += engine.start_many(deliveries[10:], Approvals.REPORT)  # type: ignore[arg-type]
        assert all(execution.status in {"SUCCEEDED", "RUNNING"} for execution in executions)
        reports = [execution.output for execution in executions]

        # THEN exactly the first 10 were blocked and the other 90 wait for a person with the breaker's reason
        statuses = [report["status"] for report in reports]
        assert statuses == ["CONTAINED"] * 10 + ["AWAITING_APPROVAL"] * 90
        assert len(engine.blocked_ips()) == 10
        waiting = reports[10:]
        assert {(report["playbook"], report["mode"]) for report in waiting} == {("block-ip", "approval")}
        assert {report["reason"] for report in waiting} == {
            "circuit breaker open: 1 more addresses would pass MaxBlockedAddressesPerHour (10 an hour); "
            "each further block waits for approval"
        }
        assert {(a["type"], a["outcome"]) for report in waiting for a in report["actions"]} == {
            ("block_ip", "awaiting_approval")
        }

        # AND the responders got one alert, 10 containment reports and 90 approval requests naming the breaker
        messages = engine.notifications()
        subjects = [message["subject"] for message in messages]
        assert subjects.count("Firebreak ALERT: circuit breaker open for address blocks in account 123456789012") == 1
        assert subjects.count("Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce") == 10
        requests = [json.loads(m["message"]) for m in messages if m["subject"].startswith("Firebreak AWAITING")]
        assert len(requests) == 90 == len(messages) - 11
        assert all("MaxBlockedAddressesPerHour (10 an hour)" in r["approval"]["reason"] for r in requests)


def test_finding_held_by_the_open_breaker_acts_once_a_responder_approves_it() -> None:
    # GIVEN a limit of 1, used up by a first brute force, and a second one held by the breaker
    with Engine(TEMPLATE, {"MaxBlockedAddressesPerHour": "1"}) as engine:
        first, second = brute_force_from(1), brute_force_from(2)
        assert engine.start(engine.matching_rule(first), first).output["status"] == "CONTAINED"  # type: ignore[arg-type,index]
        held = engine.start(engine.matching_rule(second), second, Approvals.REPORT)  # type: ignore[arg-type]
        assert held.output is not None and held.output["status"] == "AWAITING_APPROVAL"
        assert len(engine.blocked_ips()) == 1

        # WHEN a responder approves it with the token from the request
        (request,) = engine.approval_requests(held.arn)
        assert engine.answer_approval(request["approval"]["request"]["token"], "approve")["status"] == "APPROVED"
        done = engine.wait(held.arn)

        # THEN it is contained: a person's approval is not counted against the breaker
        assert done.output is not None and done.output["status"] == "CONTAINED"
        assert len(engine.blocked_ips()) == 2


def test_dry_run_and_notify_only_findings_take_no_slot() -> None:
    # GIVEN a limit of 1 and a stack in dry-run
    with Engine(TEMPLATE, {"MaxBlockedAddressesPerHour": "1", "ResponseMode": "dry-run"}) as engine:
        # WHEN two brute-force findings run
        outputs = [engine.start(engine.matching_rule(e), e).output for e in (brute_force_from(1), brute_force_from(2))]  # type: ignore[arg-type]

        # THEN both are planned: nothing that changes nothing is counted against the breaker
        assert [output["status"] for output in outputs] == ["DRY_RUN", "DRY_RUN"]
        assert [output["escalation"] for output in outputs] == [None, None]


def test_isolations_past_their_budget_wait_while_address_blocks_go_on() -> None:
    # GIVEN a stack allowing one isolation or revocation per hour, and its address budget at the default
    with Engine(TEMPLATE, {"MaxContainmentsPerHour": "1"}) as engine:
        first = load_event("eventbridge/guardduty_c2_outbound")
        second = copy.deepcopy(first)
        second["id"], second["detail"]["id"] = "c2-second-delivery", "e8b6a0c2d4f57791e3a2c1b0f9e85747"

        # WHEN an instance talking to a C2 address is contained, a second finding about it arrives, then a brute force
        contained = engine.start(engine.matching_rule(first), first)  # type: ignore[arg-type]
        held = engine.start(engine.matching_rule(second), second, Approvals.REPORT)  # type: ignore[arg-type]
        brute_force = brute_force_from(1)
        blocked = engine.start(engine.matching_rule(brute_force), brute_force)  # type: ignore[arg-type]

        # THEN the first isolation acts (its C2 address blocked with it, riding on its workload slot), the second
        # waits for a person, naming the workload budget, and the brute force is still blocked on its own budget
        assert contained.output is not None and contained.output["status"] == "CONTAINED"
        assert held.output is not None and held.output["status"] == "AWAITING_APPROVAL"
        assert held.output["reason"] == (
            "circuit breaker open: 1 isolations and revocations this hour reached MaxContainmentsPerHour; "
            "each further one waits for approval"
        )
        assert blocked.output is not None and blocked.output["status"] == "CONTAINED"
        assert {"193.233.20.15/32", "45.155.0.2/32"} <= set(engine.blocked_ips())
        # AND only the workload budget alerted, once
        subjects = [message["subject"] for message in engine.notifications()]
        assert [s for s in subjects if s.startswith("Firebreak ALERT")] == [
            "Firebreak ALERT: circuit breaker open in account 123456789012"
        ]


def test_storm_with_default_parameters_blocks_every_attacker_once_and_nothing_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the stack with its default parameters (enforce mode, both breaker budgets at their defaults), and a
    # storm of brute-force findings from 25 attackers, more findings than MaxContainmentsPerHour (metrics off: in
    # one process, concurrent handlers would flush each other's metrics, which Lambda never does)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    events = findings(load_event("eventbridge/guardduty_ssh_brute_force"), STORM_FINDINGS, attackers(STORM_ATTACKERS))
    with Engine(TEMPLATE) as engine:
        # WHEN they all start at once
        storm = run_storm(engine, events)

        # THEN every attacker is blocked exactly once, no incident fails and none waits for approval
        assert len(storm.expected) == STORM_ATTACKERS
        assert sorted(set(storm.blocked)) == sorted(storm.expected)
        assert not storm.lost and not storm.duplicated
        assert sum(storm.applied.values()) == STORM_ATTACKERS
        assert not storm.failed, [json.dumps(e.output)[:300] for e in storm.failed]
        assert not storm.waiting
        assert {e.output["status"] for e in storm.executions} == {"CONTAINED"}
        # AND the breaker never opened: no alert
        subjects = [message["subject"] for message in engine.notifications()]
        assert not [subject for subject in subjects if subject.startswith("Firebreak ALERT: circuit breaker open")]
