"""What responders read: verdict line, undo hint, subject limits, the per-protocol message and the Chatbot format."""

from __future__ import annotations

import dataclasses
import json

from firebreak.core.models import Action, ActionType, IncidentStatus, Mode, Outcome, Playbook, Triage
from firebreak.incident.notifications import (
    SUBJECT_LIMIT,
    chatbot_notification,
    document,
    release_message,
    sns_message,
    started_subject,
    subject,
    summary,
    verdict_line,
)
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from tests.support import load_event

RELEASE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:firebreak-release-incident"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:firebreak-RespondToFindingStateMachine:run-1"


def triage(mode: Mode = Mode.ENFORCE) -> Triage:
    incident = normalise(load_event("eventbridge/guardduty_port_probe_high"))
    return Triage(incident_id_for(incident), incident, Playbook.BLOCK_IP, mode)


def enriched(address: str, verdict: str, score: int) -> Action:
    after = {"verdict": verdict, "score": score, "evidence": ["finding Recon:EC2/PortProbeUnprotectedPort"]}
    return Action(ActionType.ENRICH_IP, address, Outcome.APPLIED, f"{verdict} ({score}): evidence", after=after)


BLOCKED = Action(ActionType.BLOCK_IP, "194.26.29.102/32", Outcome.APPLIED, "added to WAF IPSet firebreak-blocked-ipv4")
FAILED = Action(ActionType.BLOCK_IP, "2a0e:97c0:3e3:2a2::1/128", Outcome.FAILED, "IPSet stayed locked")


def test_verdict_line_leads_with_the_worst_verdict_and_lists_each_address() -> None:
    # GIVEN one benign and one suspicious address
    actions = [enriched("10.0.0.9", "benign", 0), enriched("194.26.29.102", "suspicious", 60)]

    # THEN the line starts with the worst verdict and names both
    assert verdict_line(actions) == "suspicious: 10.0.0.9 benign (0); 194.26.29.102 suspicious (60)"


def test_verdict_is_read_from_the_reason_when_an_action_recorded_no_state() -> None:
    # GIVEN an enrichment action from a version that put the verdict only in its reason
    action = Action(ActionType.ENRICH_IP, "203.0.113.9", Outcome.APPLIED, "malicious (90): on a threat list")

    # THEN the verdict and score still come through
    assert verdict_line([action]) == "malicious: 203.0.113.9 malicious (90)"


def test_summary_states_verdict_actions_links_and_both_release_commands() -> None:
    # GIVEN a contained incident
    text = summary(
        IncidentStatus.CONTAINED,
        triage(),
        [enriched("194.26.29.102", "suspicious", 60), BLOCKED],
        EXECUTION,
        RELEASE_ARN,
    )

    # THEN the reader sees the verdict, the action, where to look and how to undo it in AWS and locally
    assert "Verdict:   suspicious: 194.26.29.102 suspicious (60)" in text
    assert "+ block_ip 194.26.29.102/32: applied (added to WAF IPSet firebreak-blocked-ipv4)" in text
    assert "Undo:      block_ip 194.26.29.102/32" in text
    assert f"--state-machine-arn {RELEASE_ARN}" in text
    assert "locally: firebreak run --release EVENT_FILE..." in text
    assert f"executions/details/{EXECUTION}" in text


def test_nothing_changed_means_no_undo_hint() -> None:
    # GIVEN an incident whose only block failed
    text = summary(IncidentStatus.FAILED, triage(), [FAILED], EXECUTION, RELEASE_ARN)
    machine = document(IncidentStatus.FAILED, triage(), [FAILED], EXECUTION, RELEASE_ARN)

    # THEN neither message offers a release
    assert "Undo:" not in text
    assert "! block_ip 2a0e:97c0:3e3:2a2::1/128: failed (IPSet stayed locked)" in text
    assert machine["release"] is None


def test_awaiting_approval_is_told_as_such() -> None:
    # GIVEN a block that waits for a responder
    waiting = Action(ActionType.BLOCK_IP, "194.26.29.102/32", Outcome.AWAITING_APPROVAL, "approval required")

    # THEN the message says what waits
    text = summary(IncidentStatus.AWAITING_APPROVAL, triage(Mode.APPROVAL), [waiting], EXECUTION)
    assert text.startswith(f"Firebreak incident {triage().incident_id}: AWAITING_APPROVAL")
    assert "run only when a responder approves them" in text


def test_subject_is_printable_ascii_within_the_sns_limit() -> None:
    # GIVEN a finding type stuffed with control characters and far too long
    hostile = dataclasses.replace(triage().incident, finding_type="Recon:\r\nBcc: x@example.com\x00" + "A" * 200)
    hostile_triage = dataclasses.replace(triage(), incident=hostile)

    # THEN every subject is one printable line under 100 characters
    for text in (subject(IncidentStatus.CONTAINED, hostile_triage), started_subject(hostile_triage)):
        assert len(text) <= SUBJECT_LIMIT
        assert all(0x20 <= ord(character) <= 0x7E for character in text)


def test_json_message_carries_status_verdict_and_the_release_request() -> None:
    # WHEN the structured SNS message is built
    message = json.loads(sns_message(IncidentStatus.CONTAINED, triage(), [BLOCKED], EXECUTION, RELEASE_ARN))
    machine = json.loads(message["sqs"])

    # THEN email reads the summary, and queues get a document with the release state machine and its input
    assert message["email"].startswith("Firebreak incident")
    assert machine["status"] == "CONTAINED"
    assert machine["release"]["state_machine_arn"] == RELEASE_ARN
    assert machine["release"]["input"] == {"incident_id": triage().incident_id}
    assert message["https"] == message["sqs"]


def test_chatbot_format_follows_the_custom_notification_schema() -> None:
    # WHEN the chat format is chatbot
    message = json.loads(
        sns_message(IncidentStatus.CONTAINED, triage(), [BLOCKED], EXECUTION, RELEASE_ARN, chat_format="chatbot")
    )
    chat = json.loads(message["https"])

    # THEN HTTPS subscribers (Chatbot) get version 1.0, source custom, markdown content, threaded by incident
    assert chat["version"] == "1.0" and chat["source"] == "custom"
    assert chat["content"]["textType"] == "client-markdown"
    assert chat["content"]["title"] == "Firebreak CONTAINED: Recon:EC2/PortProbeUnprotectedPort"
    assert "194.26.29.102/32" in chat["content"]["description"]
    assert any(step.startswith("Undo: `aws stepfunctions start-execution") for step in chat["content"]["nextSteps"])
    assert chat["metadata"]["threadId"] == triage().incident_id
    assert json.loads(message["sqs"])["version"] == 1, "queues still get the JSON document"


def test_chatbot_notification_is_told_even_without_changes() -> None:
    # GIVEN an incident that changed nothing
    chat = chatbot_notification(IncidentStatus.NOTIFIED, triage(), [], EXECUTION, RELEASE_ARN)

    # THEN it has no undo step
    assert not any(step.startswith("Undo") for step in chat["content"]["nextSteps"])


def test_release_message_tells_what_was_undone_and_what_was_refused() -> None:
    # GIVEN a release that removed one block and refused another that a person changed
    entries = [
        Action(ActionType.BLOCK_IP, "194.26.29.102/32", Outcome.RELEASED, "removed from WAF IPSet blocked-ipv4"),
        Action(ActionType.BLOCK_IP, "198.51.100.7/32", Outcome.SKIPPED, "conflict: changed since Firebreak acted"),
    ]

    # WHEN the message is built, with the Chatbot format on
    message = json.loads(
        release_message("PARTIALLY_CONTAINED", "CONTAINED", triage(), "fb-1", entries, EXECUTION, "chatbot")
    )

    # THEN the text says it is not fully released and why; queues get JSON; Chatbot a custom notification
    assert "not fully released, now PARTIALLY_CONTAINED (was CONTAINED)" in message["email"]
    assert "- block_ip 198.51.100.7/32: skipped (conflict: changed since Firebreak acted)" in message["email"]
    assert json.loads(message["sqs"])["previous_status"] == "CONTAINED"
    chat = json.loads(message["https"])
    assert (chat["version"], chat["source"], chat["metadata"]["threadId"]) == ("1.0", "custom", "fb-1")
    assert chat["content"]["title"].startswith("Firebreak RELEASE INCOMPLETE (PARTIALLY_CONTAINED)")


# --- contain-database -------------------------------------------------------------------------------------------


def database_triage(event: str) -> Triage:
    incident = normalise(load_event(f"eventbridge/{event}"))
    return Triage(incident_id_for(incident), incident, Playbook.CONTAIN_DATABASE, Mode.ENFORCE)


def test_a_successful_database_login_names_the_database_and_the_user_to_rotate() -> None:
    # GIVEN a brute force that ended in a login as admin to billing-db, and an Aurora login as postgres
    mysql = summary(IncidentStatus.CONTAINED, database_triage("guardduty_rds_successful_brute_force"), (), EXECUTION)
    aurora = summary(IncidentStatus.CONTAINED, database_triage("guardduty_rds_login_attempt"), (), EXECUTION)
    # THEN each message names the database and the user a person must rotate from inside it
    assert "Database:  DB instance billing-db, mysql" in mysql
    assert "Rotate:    database user admin of database billing: change its password" in mysql
    assert "Database:  cluster orders (instance orders-db), aurora-postgresql" in aurora
    assert "Rotate:    database user postgres of database orders" in aurora


def test_failed_database_logins_name_the_database_but_no_user_to_rotate() -> None:
    failed = summary(
        IncidentStatus.CONTAINED, database_triage("guardduty_rds_malicious_ip_failed_login"), (), EXECUTION
    )
    assert "Database:  DB instance billing-db, mysql" in failed
    assert "Rotate:" not in failed
