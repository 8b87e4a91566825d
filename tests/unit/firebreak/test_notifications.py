"""subject / summary / finding_link / undo_hint / sns_message: what responders read and what machines parse."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firebreak.models import (
    Action,
    ActionType,
    Incident,
    IncidentStatus,
    Mode,
    NetworkInterface,
    Outcome,
    Playbook,
    RemoteIpDetails,
    Source,
    Triage,
    Verdict,
)
from firebreak.notifications import SUBJECT_LIMIT, finding_link, sns_message, subject, summary, undo_hint

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:firebreak-respond-to-finding:4b9f3d2e-7a1c"
GUARDDUTY_ID = "62c8f1a3b5d94e7f8a2b6c0d1e3f4a5b"
SECURITYHUB_ID = (
    "arn:aws:securityhub:us-east-1:123456789012:product/aws/guardduty/arn:aws:guardduty:us-east-1:123456789012:"
    "detector/4ec8f0a1/finding/62c8f1a3 b5d9?x=1&y=2#frag"
)
SUBJECT_SAFE = re.compile(r"[\x20-\x7e]{1,99}")


def incident(**fields: Any) -> Incident:
    base: dict[str, Any] = {
        "source": Source.GUARDDUTY,
        "finding_id": GUARDDUTY_ID,
        "account_id": "123456789012",
        "region": "us-east-1",
        "finding_type": "UnauthorizedAccess:EC2/SSHBruteForce",
        "severity": 5.0,
        "severity_label": "MEDIUM",
        "title": "45.155.205.233 is performing SSH brute force attacks against i-0a1b2c3d4e5f60001.",
        "product_name": "GuardDuty",
        "resource_type": "Instance",
        "resource_role": "TARGET",
        "instance_id": "i-0a1b2c3d4e5f60001",
        "network_interfaces": (NetworkInterface("eni-0f1e2d3c4b5a60001", private_ip="10.0.1.25"),),
        "resource_tags": (("Name", "web-1"),),
        "remote_ips": ("45.155.205.233", "2a0e:97c0:3e3:2a2::1"),
        "remote_ip_details": (RemoteIpDetails("45.155.205.233", organization="Example Hosting", asn="206728"),),
    }
    return Incident(**{**base, **fields})


def triage(**fields: Any) -> Triage:
    base: dict[str, Any] = {
        "incident_id": "fb-081cbe48499609d3334d",
        "incident": incident(),
        "playbook": Playbook.BLOCK_IP,
        "mode": Mode.ENFORCE,
    }
    return Triage(**{**base, **fields})


APPLIED = Action(ActionType.BLOCK_IP, "45.155.205.233/32", Outcome.APPLIED, "added to WAF IPSet blocked-ipv4")
ALREADY = Action(ActionType.BLOCK_IP, "8.8.8.8/32", Outcome.ALREADY_APPLIED, "already in WAF IPSet blocked-ipv4")
SKIPPED = Action(ActionType.BLOCK_IP, "10.0.0.9", Outcome.SKIPPED, "not a globally routable address")
FAILED = Action(ActionType.BLOCK_IP, "2a0e:97c0:3e3:2a2::1/128", Outcome.FAILED, "IPSet blocked-ipv6 stayed locked")
PLANNED = Action(ActionType.BLOCK_IP, "45.155.205.233/32", Outcome.PLANNED, "would add to WAF IPSet blocked-ipv4")
ENRICHED = Action(ActionType.ENRICH_IP, "45.155.205.233", Outcome.APPLIED, "")


# --- subject -----------------------------------------------------------------------------------------------------


def test_subject_names_status_and_finding_type() -> None:
    # GIVEN a contained SSH brute force
    # WHEN the subject is written
    # THEN it reads as the status and the finding type
    assert subject(IncidentStatus.CONTAINED, triage()) == "Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"


@pytest.mark.parametrize(
    ("finding_type", "expected"),
    [
        pytest.param("Evil:EC2/Type\nBcc: attacker@example.com", "Evil:EC2/Type?Bcc: attacker@example.com", id="lf"),
        pytest.param("Evil\r\nX-Header: 1", "Evil??X-Header: 1", id="crlf"),
        pytest.param("Tab\tNul\x00Del\x7fEsc\x1b", "Tab?Nul?Del?Esc?", id="control"),
        pytest.param("Évasion:EC2/Ünïcode—🔥", "?vasion:EC2/?n?code??", id="unicode"),
        pytest.param("Line\u2028Sep\u0085Nel", "Line?Sep?Nel", id="unicode-line-breaks"),
    ],
)
def test_subject_replaces_everything_but_printable_ascii(finding_type: str, expected: str) -> None:
    # GIVEN a finding type with line breaks, control characters or non-ASCII text
    t = triage(incident=incident(finding_type=finding_type))

    # WHEN the subject is written
    text = subject(IncidentStatus.FAILED, t)

    # THEN each such character becomes "?" and the subject stays on one printable ASCII line
    assert text == f"Firebreak FAILED: {expected}"
    assert SUBJECT_SAFE.fullmatch(text)


def test_subject_is_cut_to_99_characters() -> None:
    # GIVEN a very long finding type
    t = triage(incident=incident(finding_type="Recon:EC2/" + "A" * 300))

    # WHEN the subject is written
    text = subject(IncidentStatus.PARTIALLY_CONTAINED, t)

    # THEN it is cut to the SNS limit and keeps its start
    assert SUBJECT_LIMIT == 99
    assert len(text) == 99
    assert text.startswith("Firebreak PARTIALLY_CONTAINED: Recon:EC2/AAA")


@given(finding_type=st.text(min_size=1, max_size=400), status=st.sampled_from(IncidentStatus))
def test_subject_is_always_one_line_of_at_most_99_printable_ascii_characters(
    finding_type: str, status: IncidentStatus
) -> None:
    # GIVEN any finding type at all
    t = triage(incident=incident(finding_type=finding_type))

    # WHEN the subject is written
    text = subject(status, t)

    # THEN SNS accepts it: 1 to 99 printable ASCII characters, starting with a letter
    assert SUBJECT_SAFE.fullmatch(text)
    assert text.startswith(f"Firebreak {status.value}: ")


# --- summary -----------------------------------------------------------------------------------------------------


def test_summary_lists_every_action_with_outcome_and_reason() -> None:
    # GIVEN a run with an action of every block outcome and an enrichment without a reason
    actions = [ENRICHED, APPLIED, ALREADY, SKIPPED, FAILED]

    # WHEN the summary is written
    lines = summary(IncidentStatus.PARTIALLY_CONTAINED, triage(), actions, EXECUTION_ARN).splitlines()

    # THEN the actions section lists each, in order, with its outcome and (when there is one) its reason
    start = lines.index("Actions:")
    assert lines[start + 1 : start + 6] == [
        "  - enrich_ip 45.155.205.233: applied",
        "  - block_ip 45.155.205.233/32: applied (added to WAF IPSet blocked-ipv4)",
        "  - block_ip 8.8.8.8/32: already_applied (already in WAF IPSet blocked-ipv4)",
        "  - block_ip 10.0.0.9: skipped (not a globally routable address)",
        "  - block_ip 2a0e:97c0:3e3:2a2::1/128: failed (IPSet blocked-ipv6 stayed locked)",
    ]
    assert lines[start + 6] == ""


def test_summary_heads_with_incident_finding_account_resource_and_playbook() -> None:
    # GIVEN a contained incident
    # WHEN the summary is written
    lines = summary(IncidentStatus.CONTAINED, triage(), [APPLIED], EXECUTION_ARN).splitlines()

    # THEN its head says what happened, where, to what, and how Firebreak responded
    assert lines[:6] == [
        "Firebreak incident fb-081cbe48499609d3334d: CONTAINED",
        "",
        "Finding:   UnauthorizedAccess:EC2/SSHBruteForce (severity 5 MEDIUM) from GuardDuty",
        "Account:   123456789012 us-east-1",
        "Resource:  Instance i-0a1b2c3d4e5f60001 (TARGET)",
        "Playbook:  block-ip, mode enforce",
    ]
    assert "Title:     45.155.205.233 is performing SSH brute force attacks against i-0a1b2c3d4e5f60001." in lines


def test_summary_says_none_when_there_were_no_actions() -> None:
    # GIVEN a notify-only run with no actions
    t = triage(playbook=Playbook.NOTIFY_ONLY)

    # WHEN the summary is written
    lines = summary(IncidentStatus.NOTIFIED, t, [], EXECUTION_ARN).splitlines()

    # THEN the actions section says so rather than being empty
    assert lines[lines.index("Actions:") + 1] == "  - none"


def test_summary_shows_suppression_and_escalation() -> None:
    # GIVEN an exempt instance whose finding was escalated to people
    t = triage(
        playbook=Playbook.NOTIFY_ONLY,
        suppressed_reason="resource tagged firebreak:exempt=true",
        escalation="routed to contain-instance (rule instance-compromised), which this stack does not run: act by hand",
    )

    # WHEN the summary is written
    text = summary(IncidentStatus.SUPPRESSED, t, [], EXECUTION_ARN)

    # THEN both reasons are in it
    assert "\nSuppressed: resource tagged firebreak:exempt=true\n" in text
    assert "\nEscalated: routed to contain-instance (rule instance-compromised)" in text


def test_summary_links_to_the_guardduty_finding_and_the_execution() -> None:
    # GIVEN a GuardDuty finding
    # WHEN the summary is written
    lines = summary(IncidentStatus.CONTAINED, triage(), [APPLIED], EXECUTION_ARN).splitlines()

    # THEN it links to the finding in the GuardDuty console and to this execution
    assert (
        f"Finding:   https://console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?search=id%3D{GUARDDUTY_ID}"
        in lines
    )
    assert (
        "Execution: https://console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" + EXECUTION_ARN
        in lines
    )


def test_security_hub_finding_link_url_encodes_the_arn_id() -> None:
    # GIVEN a Security Hub finding whose id is an ARN with slashes, colons, a space and URL syntax in it
    t = triage(incident=incident(source=Source.SECURITYHUB, finding_id=SECURITYHUB_ID, region="eu-west-1"))

    # WHEN its link is written
    link = finding_link(t)

    # THEN it opens Security Hub in the finding's region, and the whole id is one encoded search value
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path, parts.query) == (
        "https",
        "console.aws.amazon.com",
        "/securityhub/home",
        "region=eu-west-1",
    )
    prefix = "/findings?search="
    assert parts.fragment.startswith(prefix)
    encoded = parts.fragment.removeprefix(prefix)
    assert re.fullmatch(r"[A-Za-z0-9%_.~-]+", encoded)
    assert unquote(encoded) == f"Id={SECURITYHUB_ID}"


def test_guardduty_finding_link_url_encodes_the_id() -> None:
    # GIVEN a GuardDuty finding id with characters that mean something in a URL
    t = triage(incident=incident(finding_id="abc/def&g=h#i j"))

    # WHEN its link is written
    link = finding_link(t)

    # THEN the id is encoded into the search value
    assert link.endswith("#/findings?search=id%3Dabc%2Fdef%26g%3Dh%23i%20j")


@pytest.mark.parametrize(
    "actions",
    [
        pytest.param([APPLIED], id="applied"),
        pytest.param([ALREADY, APPLIED, FAILED], id="applied-among-others"),
    ],
)
def test_undo_hint_appears_when_a_block_was_applied(actions: list[Action]) -> None:
    # GIVEN a run that added an address to the block list
    # WHEN the summary is written
    text = summary(IncidentStatus.CONTAINED, triage(), actions, EXECUTION_ARN)

    # THEN it ends with how to remove exactly the addresses this incident added
    assert text.splitlines()[-1] == (
        "Undo:      remove 45.155.205.233/32 from the Firebreak WAF IPSets (blocked-ipv4 / blocked-ipv6)"
    )


def test_undo_hint_names_every_applied_block() -> None:
    # GIVEN two addresses added by this incident
    second = dataclasses.replace(APPLIED, target="2a0e:97c0:3e3:2a2::1/128")

    # WHEN the undo hint is written
    # THEN it names both
    assert undo_hint([APPLIED, second]) == (
        "remove 45.155.205.233/32, 2a0e:97c0:3e3:2a2::1/128 from the Firebreak WAF IPSets (blocked-ipv4 / blocked-ipv6)"
    )


@pytest.mark.parametrize(
    "actions",
    [
        pytest.param([], id="nothing"),
        pytest.param([ALREADY], id="already-applied-by-an-earlier-incident"),
        pytest.param([PLANNED], id="planned-in-dry-run"),
        pytest.param([SKIPPED, FAILED], id="skipped-and-failed"),
        pytest.param([ENRICHED], id="applied-enrichment-changes-nothing"),
    ],
)
def test_no_undo_hint_when_nothing_was_applied(actions: list[Action]) -> None:
    # GIVEN a run that added nothing to a block list
    # WHEN the summary and undo hint are written
    text = summary(IncidentStatus.NOTIFIED, triage(), actions, EXECUTION_ARN)

    # THEN there is nothing to undo
    assert undo_hint(actions) is None
    assert "Undo:" not in text


# --- sns_message -------------------------------------------------------------------------------------------------


def test_sns_message_has_a_body_per_protocol() -> None:
    # GIVEN a contained incident
    # WHEN the SNS message is built
    message = json.loads(sns_message(IncidentStatus.CONTAINED, triage(), [APPLIED], EXECUTION_ARN))

    # THEN people (default, email) get the summary and machines (sqs, lambda, https) the same JSON document
    assert set(message) == {"default", "email", "sqs", "lambda", "https"}
    assert (
        message["default"] == message["email"] == summary(IncidentStatus.CONTAINED, triage(), [APPLIED], EXECUTION_ARN)
    )
    assert message["sqs"] == message["lambda"] == message["https"]


def test_machine_document_carries_status_actions_and_finding() -> None:
    # GIVEN a partially contained incident
    actions = [APPLIED, FAILED, SKIPPED]

    # WHEN the SNS message is built and its machine body parsed
    document = json.loads(
        json.loads(sns_message(IncidentStatus.PARTIALLY_CONTAINED, triage(), actions, EXECUTION_ARN))["sqs"]
    )

    # THEN it carries the status, the playbook and mode, the execution and each action, which read back as Actions
    assert document["version"] == 1
    assert document["incident_id"] == "fb-081cbe48499609d3334d"
    assert (document["status"], document["playbook"], document["mode"]) == (
        "PARTIALLY_CONTAINED",
        "block-ip",
        "enforce",
    )
    assert document["execution_arn"] == EXECUTION_ARN
    assert [Action.from_dict(item) for item in document["actions"]] == actions
    assert document["actions"][1] == {
        "type": "block_ip",
        "target": "2a0e:97c0:3e3:2a2::1/128",
        "outcome": "failed",
        "reason": "IPSet blocked-ipv6 stayed locked",
        "before": {},
        "after": {},
    }
    assert Incident.from_dict(document["finding"]) == triage().incident


def test_incident_round_trips_through_its_dict() -> None:
    # GIVEN an incident with every nested kind of field
    original = incident(invalid_remote_ips=("junk",), access_key_id="ASIAEXAMPLE")

    # WHEN it goes to JSON and back, as between states
    again = Incident.from_dict(json.loads(json.dumps(original.to_dict())))

    # THEN nothing is lost
    assert again == original


SECRETISH = re.compile(r"secret|password|session_?token|private_?key", re.IGNORECASE)


@pytest.mark.parametrize("model", [Incident, Triage, Action, Verdict, NetworkInterface, RemoteIpDetails])
def test_models_that_reach_the_message_hold_no_secret_fields(model: type) -> None:
    # GIVEN a model that ends up in the SNS message
    # WHEN its fields are listed
    names = [f.name for f in dataclasses.fields(model)]

    # THEN none is named like a secret, so a secret cannot be carried into what responders receive
    assert names
    assert [name for name in names if SECRETISH.search(name)] == []


def test_message_carries_the_access_key_id_but_never_a_secret_key() -> None:
    # GIVEN an incident about an access key; its id is public, a secret key would not be
    t = triage(
        incident=incident(resource_type="AccessKey", instance_id=None, access_key_id="ASIAZ4FQH7XKN2LD3VB8"),
        playbook=Playbook.NOTIFY_ONLY,
    )

    # WHEN the SNS message is built
    message = sns_message(IncidentStatus.NOTIFIED, t, [], EXECUTION_ARN)

    # THEN it names the key id so responders can act, and nothing resembling a secret access key or its name
    assert "ASIAZ4FQH7XKN2LD3VB8" in message
    assert not SECRETISH.search(message)
    assert not re.search(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])", message)
