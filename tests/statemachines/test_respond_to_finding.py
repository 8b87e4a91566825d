"""The real entry and block-ip state machines on the local engine, with the real handlers against moto."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firebreak_local.engine import Engine, Execution
from tests.support import BLOCK_IP_STATES, incident_record, load_event, report_of, start

PLAYBOOK_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    *BLOCK_IP_STATES,
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
]


def run(engine: Engine, name: str, event: dict[str, Any] | None = None) -> Execution:
    return start(engine, event or load_event(f"eventbridge/{name}"))


def subjects(engine: Engine) -> list[str]:
    return [message["subject"] for message in engine.notifications()]


def outcomes(execution: Execution, action_type: str) -> dict[str, str]:
    return {a["target"]: a["outcome"] for a in report_of(execution)["actions"] if a["type"] == action_type}


def test_happy_path_blocks_the_brute_force_address_records_and_notifies(engine: Engine) -> None:
    # GIVEN an inbound SSH brute force from a public address
    # WHEN the finding runs through the stack
    execution = run(engine, "guardduty_ssh_brute_force")

    # THEN every step ran in order, the address is in the IPv4 block list, and the record and message say CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == [*PLAYBOOK_STATES, "Response Complete"]
    assert report_of(execution)["status"] == "CONTAINED"
    assert outcomes(execution, "block_ip") == {"45.155.205.233/32": "applied"}
    assert engine.blocked_ips() == ["45.155.205.233/32"]
    stored = incident_record(engine, report_of(execution)["incident_id"])
    assert stored["status"] == "CONTAINED"
    assert stored["deliveries"] == 1
    assert {a["target"] for a in stored["actions"] if a["type"] == "block_ip"} == {"45.155.205.233/32"}
    assert subjects(engine) == ["Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"]


def test_second_delivery_is_a_duplicate_that_repeats_no_action(engine: Engine) -> None:
    # GIVEN a finding that was already handled
    first = run(engine, "guardduty_ssh_brute_force")

    # WHEN GuardDuty republishes it with a higher count
    second = run(engine, "guardduty_ssh_brute_force_redelivered")

    # THEN the second run only counts the delivery: same incident, no second block, no second message
    assert second.states == ["Parse Finding", "Open Incident", "Record Duplicate"]
    assert report_of(second)["status"] == "DUPLICATE"
    assert report_of(second)["incident_id"] == report_of(first)["incident_id"]
    assert engine.blocked_ips() == ["45.155.205.233/32"]
    assert incident_record(engine, report_of(first)["incident_id"])["deliveries"] == 2
    assert len(subjects(engine)) == 1


def test_sample_finding_is_planned_and_changes_nothing(engine: Engine) -> None:
    # GIVEN a GuardDuty sample finding (sample: true) from a public address
    execution = run(engine, "guardduty_sample_rdp_brute_force")

    # THEN the block is planned, not applied, and the block lists stay empty
    assert report_of(execution)["status"] == "DRY_RUN"
    assert report_of(execution)["mode"] == "dry-run"
    assert outcomes(execution, "block_ip") == {"185.220.101.47/32": "planned"}
    assert engine.blocked_ips() == []


def test_port_probe_blocks_public_v4_and_v6_and_refuses_the_private_address(engine: Engine) -> None:
    # GIVEN a port probe from two public addresses (IPv4, IPv6) and one private one
    execution = run(engine, "guardduty_port_probe_high")

    # THEN each public address lands in its own family's set and the private one is skipped with a reason
    assert report_of(execution)["status"] == "CONTAINED"
    assert outcomes(execution, "block_ip") == {
        "194.26.29.102/32": "applied",
        "2a0e:97c0:3e3:2a2::1/128": "applied",
        "10.0.0.9": "skipped",
    }
    assert engine.blocked_ips() == ["194.26.29.102/32", "2a0e:97c0:3e3:2a2::1/128"]


def test_malformed_finding_is_recorded_and_notified_as_rejected(engine: Engine) -> None:
    # GIVEN a GuardDuty event that matches the rule but has no finding id
    execution = run(engine, "guardduty_malformed")

    # THEN it ends REJECTED, with a record and a message naming the problem, and nothing else ran
    assert execution.status == "SUCCEEDED"
    assert execution.states == ["Parse Finding", "Record Rejection", "Notify Rejection"]
    rejected = report_of(execution)
    assert rejected["status"] == "REJECTED"
    assert "detail.id" in rejected["reason"]
    assert incident_record(engine, rejected["incident_id"])["status"] == "REJECTED"
    assert subjects(engine) == ["Firebreak REJECTED: unreadable finding"]


def test_finding_for_an_undeployed_playbook_is_escalated_not_reported_as_contained(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN crypto mining on an instance, which routes to contain-instance, in a stack that does not run that playbook
    from firebreak.core.models import Playbook
    from firebreak.triage import decision

    monkeypatch.setattr(decision, "DEPLOYED_PLAYBOOKS", frozenset({Playbook.BLOCK_IP, Playbook.NOTIFY_ONLY}))
    execution = run(engine, "guardduty_crypto_mining")

    # THEN responders are told to act by hand and the status claims nothing was contained
    outcome = report_of(execution)
    assert outcome["playbook"] == "notify-only"
    assert outcome["status"] == "NOTIFIED"
    assert "contain-instance" in outcome["escalation"]
    assert "Run Block Ip Playbook" not in execution.states
    assert "Run Contain Instance Playbook" not in execution.states


def test_permanent_block_error_fails_the_incident_truthfully(engine: Engine) -> None:
    # GIVEN WAF refuses the update (a permanent error, not throttling)
    def denied(event: dict[str, Any], context: Any) -> Any:
        error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
        raise ClientError(error, "UpdateIPSet")  # type: ignore[arg-type]

    engine.dispatcher.override("firebreak-BlockIpFunction", denied)

    # WHEN the brute force runs
    execution = run(engine, "guardduty_ssh_brute_force")

    # THEN the execution fails, the record and the message say FAILED, and nothing was blocked
    assert execution.status == "FAILED"
    assert execution.states[-4:] == ["Record Outcome", "Export Stix Bundle", "Did Response Fail?", "Response Failed"]
    failed = report_of(execution)
    assert failed["status"] == "FAILED"
    assert outcomes(execution, "block_ip") == {"45.155.205.233": "failed"}
    assert incident_record(engine, failed["incident_id"])["status"] == "FAILED"
    assert subjects(engine) == ["Firebreak FAILED: UnauthorizedAccess:EC2/SSHBruteForce"]
    assert engine.blocked_ips() == []


def test_one_family_failing_reports_partial_containment(engine: Engine) -> None:
    # GIVEN the IPv6 set cannot be written while the IPv4 set can (forced: a rare error)
    from functions.block_ip import app as block_ip

    def half(event: dict[str, Any], context: Any) -> Any:
        result = block_ip.lambda_handler(event, context)
        for action in result["actions"]:
            if action["target"].endswith("/128"):
                action.update(outcome="failed", reason="IPSet stayed locked")
        return result

    engine.dispatcher.override("firebreak-BlockIpFunction", half)

    # WHEN the port probe with both families runs
    execution = run(engine, "guardduty_port_probe_high")

    # THEN the status is PARTIALLY_CONTAINED, never CONTAINED
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert execution.status == "SUCCEEDED"


def test_failed_notification_is_recorded_and_ends_in_the_failure_path(engine: Engine) -> None:
    # GIVEN the notify step crashes
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("SNS endpoint unreachable")

    engine.dispatcher.override("firebreak-NotifyRespondersFunction", broken)

    # WHEN a finding runs
    execution = run(engine, "guardduty_ssh_brute_force")

    # THEN the failure is recorded on the incident and told through the failure path
    assert execution.status == "FAILED"
    assert execution.states[-3:] == ["Record Failure", "Notify Responders Of Failure", "Response Failed"]
    failed = report_of(execution)
    assert failed["status"] == "FAILED"
    assert failed["error"] == "RuntimeError"
    assert incident_record(engine, failed["incident_id"])["status"] == "FAILED"
    assert subjects(engine) == ["Firebreak FAILED: response did not complete"]


def test_transient_lambda_error_is_retried_and_the_incident_still_contained(engine: Engine) -> None:
    # GIVEN the enrich function fails once with a Lambda service error, then works
    from functions.enrich_ip import app as enrich_ip

    service_exception = type("Lambda.ServiceException", (Exception,), {})
    calls: list[int] = []

    def flaky(event: dict[str, Any], context: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise service_exception("Lambda was unavailable")
        return enrich_ip.lambda_handler(event, context)

    engine.dispatcher.override("firebreak-EnrichIpFunction", flaky)

    # WHEN the brute force runs
    execution = run(engine, "guardduty_ssh_brute_force")

    # THEN the ASL Retry ran the step again and the incident is contained
    assert len(calls) == 2
    assert report_of(execution)["status"] == "CONTAINED"


@pytest.mark.parametrize("mode", ["dry-run", "enforce"])
def test_block_ip_mode_parameter_decides_whether_addresses_are_blocked(mode: str) -> None:
    # GIVEN a stack whose block-ip playbook runs in the given mode while the stack default says the opposite
    from tests.support import TEMPLATE

    stack_mode = "enforce" if mode == "dry-run" else "dry-run"
    with Engine(TEMPLATE, {"ResponseMode": stack_mode, "BlockIpMode": mode}) as engine:
        # WHEN a brute force runs
        execution = run(engine, "guardduty_ssh_brute_force")

        # THEN the playbook's own mode wins
        assert report_of(execution)["mode"] == mode
        assert engine.blocked_ips() == ([] if mode == "dry-run" else ["45.155.205.233/32"])


def test_exempt_instance_is_suppressed_and_not_touched(engine: Engine) -> None:
    # GIVEN a brute force against an instance tagged firebreak:exempt=true
    event = copy.deepcopy(load_event("eventbridge/guardduty_ssh_brute_force"))
    event["detail"]["resource"]["instanceDetails"]["tags"].append({"key": "firebreak:exempt", "value": "true"})

    # WHEN it runs
    execution = run(engine, "guardduty_ssh_brute_force", event)

    # THEN nothing is blocked and the status says SUPPRESSED
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert engine.blocked_ips() == []
