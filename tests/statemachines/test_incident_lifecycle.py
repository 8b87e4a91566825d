"""block-ip from notification to release on the local engine: messages, record, write-back, events, undo."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firebreak_local.engine import Engine, Execution
from tests.support import TEMPLATE, incident_record, load_event, report_of, start

ATTACKER = "45.155.205.233/32"
RELEASE_STATES = ["Release Actions", "Record Release", "Notify Release", "Release Complete"]


def run(engine: Engine, name: str, event: dict[str, Any] | None = None) -> Execution:
    return start(engine, event or load_event(f"eventbridge/{name}"))


def messages(engine: Engine) -> list[dict[str, Any]]:
    """Every publish with its per-protocol texts: email (readable) and sqs (the JSON document)."""
    published = []
    for message in engine.published():
        structured = json.loads(message["message"]) if message["message"].startswith("{") else None
        published.append(
            {
                "subject": message["subject"],
                "text": structured["email"] if structured else message["message"],
                "json": json.loads(structured["sqs"]) if structured else None,
                "attributes": message["attributes"],
            }
        )
    return published


def ipsets(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every field of both block lists except the lock token, which changes on every write."""
    waf = engine.client("wafv2")
    found = {}
    for logical_id in ("BlockedIpv4Set", "BlockedIpv6Set"):
        name, ipset_id, scope = engine.resources[logical_id].ref.split("|")
        ipset = waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)["IPSet"]
        found[logical_id] = {**ipset, "Addresses": sorted(ipset["Addresses"])}
    return found


def remove_by_hand(engine: Engine, cidr: str) -> None:
    waf = engine.client("wafv2")
    name, ipset_id, scope = engine.resources["BlockedIpv4Set"].ref.split("|")
    current = waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)
    addresses = [a for a in current["IPSet"]["Addresses"] if a != cidr]
    waf.update_ip_set(Name=name, Scope=scope, Id=ipset_id, Addresses=addresses, LockToken=current["LockToken"])


def add_by_hand(engine: Engine, cidr: str) -> None:
    waf = engine.client("wafv2")
    name, ipset_id, scope = engine.resources["BlockedIpv4Set"].ref.split("|")
    current = waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)
    addresses = [*current["IPSet"]["Addresses"], cidr]
    waf.update_ip_set(Name=name, Scope=scope, Id=ipset_id, Addresses=addresses, LockToken=current["LockToken"])


def another_finding(name: str, finding_id: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(f"eventbridge/{name}"))
    event["detail"]["id"] = finding_id
    return event


# --- notifications ------------------------------------------------------------------------------------------------


def test_contained_incident_is_told_in_text_and_json_with_verdict_and_release(engine: Engine) -> None:
    # WHEN the brute force is contained
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]

    # THEN one message: readable text with verdict, action, links and the release command; and a JSON document
    (message,) = messages(engine)
    assert message["subject"] == "Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"
    text = message["text"]
    assert text.startswith(f"Firebreak incident {incident_id}: CONTAINED")
    assert "Verdict:   suspicious: 45.155.205.233 suspicious (60)" in text
    assert f"+ block_ip {ATTACKER}: applied (blocked in WAF IPSet firebreak-blocked-ipv4 until " in text
    assert "Execution: https://console.aws.amazon.com/states/home" in text
    release_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:firebreak-release-incident"
    assert f"start-execution --state-machine-arn {release_arn}" in text
    assert f'"incident_id": "{incident_id}"' in text
    document = message["json"]
    assert (document["status"], document["playbook"], document["mode"]) == ("CONTAINED", "block-ip", "enforce")
    assert document["release"]["state_machine_arn"] == release_arn
    assert {a["target"]: a["outcome"] for a in document["actions"] if a["type"] == "block_ip"} == {ATTACKER: "applied"}
    assert {k: v.get("Value", v.get("StringValue")) for k, v in message["attributes"].items()} == {
        "status": "CONTAINED",
        "playbook": "block-ip",
        "severity": "2",
    }


def test_partial_failure_is_told_with_what_failed(engine: Engine) -> None:
    # GIVEN the IPv6 set cannot be written while the IPv4 set can (forced: a rare error)
    from functions.block_ip import app as block_ip

    def half(event: dict[str, Any], context: Any) -> Any:
        result = block_ip.lambda_handler(event, context)
        for action in result["actions"]:
            if action["target"].endswith("/128"):
                action.update(outcome="failed", reason="IPSet stayed locked", before={}, after={})
        return result

    engine.dispatcher.override("firebreak-BlockIpFunction", half)

    # WHEN the port probe with both families runs
    run(engine, "guardduty_port_probe_high")

    # THEN the message says PARTIALLY_CONTAINED, lists the failure, and offers to undo only what was done
    (message,) = messages(engine)
    assert message["subject"].startswith("Firebreak PARTIALLY_CONTAINED:")
    assert "! block_ip 2a0e:97c0:3e3:2a2::1/128: failed (IPSet stayed locked)" in message["text"]
    assert "Undo:      block_ip 194.26.29.102/32" in message["text"]
    assert message["json"]["status"] == "PARTIALLY_CONTAINED"


def test_failed_block_is_told_as_failed_without_an_undo(engine: Engine) -> None:
    # GIVEN WAF refuses the update
    def denied(event: dict[str, Any], context: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateIPSet")  # type: ignore[arg-type]

    engine.dispatcher.override("firebreak-BlockIpFunction", denied)

    # WHEN the brute force runs
    execution = run(engine, "guardduty_ssh_brute_force")

    # THEN the message says FAILED with the playbook's error and nothing to undo, and the execution failed
    (message,) = messages(engine)
    assert execution.status == "FAILED"
    assert message["subject"] == "Firebreak FAILED: UnauthorizedAccess:EC2/SSHBruteForce"
    assert "! block_ip 45.155.205.233: failed (playbook failed: " in message["text"]
    assert "Undo:" not in message["text"]
    assert (message["json"]["status"], message["json"]["release"]) == ("FAILED", None)


def test_crash_after_the_playbook_is_recorded_and_told_through_the_failure_path(engine: Engine) -> None:
    # GIVEN the notify step crashes
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("SNS endpoint unreachable")

    engine.dispatcher.override("firebreak-NotifyRespondersFunction", broken)

    # WHEN a finding runs
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]

    # THEN the failure message names the incident and the error, and the record's history ends FAILED
    (message,) = messages(engine)
    assert message["subject"] == "Firebreak FAILED: response did not complete"
    assert f"Incident:  {incident_id}" in message["text"] and "RuntimeError" in message["text"]
    assert [h["status"] for h in incident_record(engine, incident_id)["status_history"]] == ["OPEN", "FAILED"]


def test_started_message_is_sent_when_the_stack_asks_for_it() -> None:
    # GIVEN a stack with NotifyOnStart
    with Engine(TEMPLATE, {"NotifyOnStart": "true"}) as engine:
        # WHEN the brute force runs
        run(engine, "guardduty_ssh_brute_force")

        # THEN the responders hear both that it started and how it ended
        assert [m["subject"] for m in messages(engine)] == [
            "Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce",
            "Firebreak STARTED: UnauthorizedAccess:EC2/SSHBruteForce",
        ]


# --- the record ---------------------------------------------------------------------------------------------------


def test_record_holds_history_execution_and_every_action_with_before_after_and_time(engine: Engine) -> None:
    # WHEN the brute force is contained
    execution = run(engine, "guardduty_ssh_brute_force")
    stored = incident_record(engine, report_of(execution)["incident_id"])

    # THEN the record is native maps: history, execution, the block with its state on both sides, the holdings
    assert stored["status"] == "CONTAINED"
    assert [h["status"] for h in stored["status_history"]] == ["OPEN", "CONTAINED"]
    assert all(h["at"] for h in stored["status_history"])
    assert stored["execution_arn"] == execution.arn
    (block,) = [a for a in stored["actions"] if a["type"] == "block_ip"]
    ipset_arn = engine.resources["BlockedIpv4Set"].attributes["Arn"]
    assert block["target"] == ATTACKER
    assert block["before"] == {"ipset": ipset_arn, "ipsets": [ipset_arn], "present": False}
    assert block["after"] == {
        "ipset": ipset_arn,
        "ipsets": [ipset_arn],
        "present": True,
        "expires_at": block["after"]["expires_at"],
    }
    assert block["after"]["expires_at"] > time.time() + 23 * 3600  # BlockTtlHours 24
    assert block["at"].endswith("Z")
    (enrich,) = [a for a in stored["actions"] if a["type"] == "enrich_ip"]
    assert enrich["after"]["verdict"] == "suspicious"
    assert stored["blocked_addresses"] == [ATTACKER] and stored["added_addresses"] == [ATTACKER]
    assert stored["first_seen_at"] == "2026-03-14T09:02:11.000Z"
    assert "ttl" not in stored and "expires_at" not in stored


def test_report_is_stored_beside_the_record(engine: Engine) -> None:
    # WHEN the brute force is contained
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]

    # THEN the record carries the Markdown report rendered from it
    report = incident_record(engine, incident_id)["report"]
    assert report.startswith(f"# Firebreak incident {incident_id}: CONTAINED")
    assert f"| block_ip | {ATTACKER} | applied |" in report
    assert engine.consumer_errors == []


def test_every_status_change_is_published_on_eventbridge(engine: Engine) -> None:
    # WHEN an incident is contained and then released
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]
    engine.release(incident_id)

    # THEN each change of its status was one Firebreak event, in order
    events = engine.incident_events()
    assert {(e["source"], e["detail-type"]) for e in events} == {("firebreak", "Firebreak Incident Status Change")}
    assert [(e["detail"]["previous_status"], e["detail"]["status"]) for e in events] == [
        (None, "OPEN"),
        ("OPEN", "CONTAINED"),
        ("CONTAINED", "RELEASED"),
    ]


# --- write-back ---------------------------------------------------------------------------------------------------


def test_security_hub_finding_gets_its_workflow_and_a_note(engine: Engine) -> None:
    # WHEN a person runs Firebreak on a Security Hub finding and its attacker is blocked
    event = load_event("eventbridge/securityhub_custom_action")
    incident_id = report_of(run(engine, "securityhub_custom_action", event))["incident_id"]

    # THEN Security Hub was asked once to resolve that finding, with a note naming the incident
    finding = event["detail"]["findings"][0]
    (update,) = engine.finding_updates()
    assert update["FindingIdentifiers"] == [{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}]
    assert update["Workflow"] == {"Status": "RESOLVED"}
    assert update["Note"]["Text"].startswith(f"Firebreak incident {incident_id}: CONTAINED")
    notify = [a for a in incident_record(engine, incident_id)["actions"] if a["type"] == "notify"]
    assert [(a["target"], a["outcome"]) for a in notify] == [
        (finding["Id"], "applied"),
        ("firebreak-ResponderTopic", "applied"),
    ]


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_guardduty_finding_is_written_back_only_when_enabled(enabled: str) -> None:
    # GIVEN a stack with GuardDuty write-back on or off
    with Engine(TEMPLATE, {"WriteBackGuardDutyFindings": enabled}) as engine:
        # WHEN a GuardDuty finding is contained
        run(engine, "guardduty_ssh_brute_force")

        # THEN its Security Hub copy was updated only when enabled
        updates = engine.finding_updates()
        if enabled == "false":
            assert updates == []
        else:
            arn = load_event("eventbridge/guardduty_ssh_brute_force")["detail"]["arn"]
            product = "arn:aws:securityhub:us-east-1::product/aws/guardduty"
            assert [u["FindingIdentifiers"] for u in updates] == [[{"Id": arn, "ProductArn": product}]]


# --- release ------------------------------------------------------------------------------------------------------


def test_block_then_release_leaves_the_block_lists_as_they_were_field_by_field(engine: Engine) -> None:
    # GIVEN the block lists before the incident
    before = ipsets(engine)

    # WHEN the brute force is contained and then released
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]
    assert engine.blocked_ips() == [ATTACKER]
    release = engine.release(incident_id)

    # THEN every field of both IPSets is as before, and the release is recorded and told
    assert release.status == "SUCCEEDED"
    assert release.states == RELEASE_STATES
    assert ipsets(engine) == before
    released = report_of(release)
    assert (released["previous_status"], released["status"]) == ("CONTAINED", "RELEASED")
    stored = incident_record(engine, incident_id)
    assert stored["status"] == "RELEASED"
    assert [h["status"] for h in stored["status_history"]] == ["OPEN", "CONTAINED", "RELEASED"]
    assert stored["blocked_addresses"] == []
    (entry,) = [a for a in stored["release_actions"] if a["type"] == "block_ip"]
    assert (entry["target"], entry["outcome"]) == (ATTACKER, "released")
    assert (entry["before"]["present"], entry["after"]["present"]) == (True, False)
    assert [a["outcome"] for a in stored["actions"] if a["type"] == "block_ip"] == ["applied"], "evidence kept"
    assert messages(engine)[-1]["subject"] == "Firebreak RELEASED: UnauthorizedAccess:EC2/SSHBruteForce"


def test_released_block_leaves_the_blocklist_table_so_the_sweep_does_not_put_it_back(engine: Engine) -> None:
    # GIVEN a contained incident, released
    before = ipsets(engine)
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]
    engine.release(incident_id)

    # WHEN the scheduled sweep reconciles the IPSets to the blocklist table
    swept = engine.invoke("SweepBlocklistFunction", {})

    # THEN the table no longer holds the address, so the sweep restores nothing and the IPSets stay as before
    table = engine.resources["BlocklistTable"].ref
    assert "Item" not in engine.client("dynamodb").get_item(TableName=table, Key={"cidr": {"S": ATTACKER}})
    assert swept["drift_restored"] == []
    assert ipsets(engine) == before


def test_release_refuses_a_block_that_was_changed_since(engine: Engine) -> None:
    # GIVEN a contained incident whose address a person removed from the block list by hand
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]
    remove_by_hand(engine, ATTACKER)
    before = ipsets(engine)

    # WHEN it is released
    release = engine.release(incident_id)

    # THEN release reports the conflict, writes no block list, and the incident is not marked released
    assert release.status == "SUCCEEDED"
    released = report_of(release)
    assert released["status"] == "CONTAINED"
    (entry,) = [a for a in released["actions"] if a["type"] == "block_ip"]
    assert entry["outcome"] == "skipped" and entry["reason"].startswith("conflict:")
    assert "wafv2.UpdateIPSet" not in release.api_calls
    assert ipsets(engine) == before
    assert incident_record(engine, incident_id)["status"] == "CONTAINED"
    (told,) = [m for m in messages(engine) if "RELEASE" in m["subject"]]
    assert told["subject"] == "Firebreak RELEASE INCOMPLETE (CONTAINED): UnauthorizedAccess:EC2/SSHBruteForce"
    assert "conflict: changed since Firebreak acted" in told["text"]


def test_release_keeps_an_address_another_open_incident_still_holds(engine: Engine) -> None:
    # GIVEN two incidents blocking the same attacker, the second finding the block already there
    first = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]
    second = report_of(run(engine, "", another_finding("guardduty_ssh_brute_force", "aa11bb22cc33dd44")))["incident_id"]

    # WHEN the first is released
    engine.release(first)

    # THEN the address stays for the second; released in turn, the second removes it
    assert engine.blocked_ips() == [ATTACKER]
    assert incident_record(engine, first)["status"] == "RELEASED"
    assert f"still held by {second}" in incident_record(engine, first)["release_actions"][0]["reason"]
    engine.release(second)
    assert engine.blocked_ips() == []
    assert incident_record(engine, second)["status"] == "RELEASED"


def test_release_leaves_a_block_a_person_made_before_the_incident(engine: Engine) -> None:
    # GIVEN a person blocked the attacker before GuardDuty reported it
    add_by_hand(engine, ATTACKER)
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]

    # WHEN the incident is released
    engine.release(incident_id)

    # THEN the person's block stays and the incident is released
    assert engine.blocked_ips() == [ATTACKER]
    assert incident_record(engine, incident_id)["status"] == "RELEASED"


def test_release_twice_changes_nothing_the_second_time(engine: Engine) -> None:
    # GIVEN a released incident
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]
    engine.release(incident_id)

    # WHEN it is released again
    again = engine.release(incident_id)

    # THEN there is nothing left to undo and its history does not grow
    assert report_of(again)["status"] == "RELEASED"
    assert [a["reason"] for a in report_of(again)["actions"] if a["type"] == "release"] == ["nothing left to undo"]
    assert [h["status"] for h in incident_record(engine, incident_id)["status_history"]] == [
        "OPEN",
        "CONTAINED",
        "RELEASED",
    ]


def test_release_of_an_unknown_incident_fails_and_is_told(engine: Engine) -> None:
    # WHEN a release names an incident the table does not hold
    release = engine.release("fb-does-not-exist")

    # THEN the execution fails through the failure path and the responders hear it
    assert release.status == "FAILED"
    assert release.states == [
        "Release Actions",
        "Record Release Failure",
        "Notify Responders Of Failure",
        "Release Failed",
    ]
    (message,) = messages(engine)
    assert message["subject"] == "Firebreak RELEASE FAILED: release did not complete"
    assert "IncidentNotFound" in message["text"]


def test_release_crash_is_recorded_on_the_incident_and_leaves_its_status(engine: Engine) -> None:
    # GIVEN a contained incident and a release function that crashes
    incident_id = report_of(run(engine, "guardduty_ssh_brute_force"))["incident_id"]

    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    engine.dispatcher.override("firebreak-ReleaseIncidentFunction", broken)

    # WHEN it is released
    release = engine.release(incident_id)

    # THEN the failure is on the record, the status is still CONTAINED and the address still blocked
    assert release.status == "FAILED"
    stored = incident_record(engine, incident_id)
    assert stored["status"] == "CONTAINED"
    assert stored["last_release_error"].startswith("RuntimeError")
    assert engine.blocked_ips() == [ATTACKER]
