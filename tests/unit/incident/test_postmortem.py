"""The post-incident report rendered from a record: complete, honest about gaps, safe with finding-supplied text."""

from __future__ import annotations

import dataclasses
import json

from firebreak.core.models import Action, ActionType, Outcome
from firebreak.incident.postmortem import render
from firebreak.incident.records import IncidentRecord, StatusChange
from firebreak.triage.findings import normalise
from tests.support import load_event

INCIDENT = normalise(load_event("eventbridge/guardduty_ssh_brute_force"))
BLOCK = Action(
    ActionType.BLOCK_IP,
    "45.155.205.233/32",
    Outcome.APPLIED,
    "added",
    {"ipset": "arn:ipset", "present": False},
    {"ipset": "arn:ipset", "present": True},
    "2026-03-14T09:14:06.000Z",
)
RECORD = IncidentRecord(
    incident_id="fb-1",
    status="CONTAINED",
    playbook="block-ip",
    mode="enforce",
    incident=INCIDENT,
    actions=(BLOCK,),
    history=(StatusChange("OPEN", "2026-03-14T09:14:05.000Z"), StatusChange("CONTAINED", "2026-03-14T09:14:11.000Z")),
    execution_arn="arn:aws:states:us-east-1:123456789012:execution:respond:run-1",
    opened_at="2026-03-14T09:14:05.000Z",
    first_seen_at="2026-03-14T09:02:11.000Z",
)


def test_report_has_timeline_actions_with_state_and_time_to_contain() -> None:
    text = render(RECORD, "arn:release")

    assert text.startswith("# Firebreak incident fb-1: CONTAINED\n")
    assert "| 2026-03-14T09:14:11.000Z | CONTAINED |" in text
    # From the incident's opening, not the finding's first sighting 12 minutes before
    assert "| Time to contain | 6 s |" in text
    assert "| 2026-03-14T09:14:06.000Z | block_ip | 45.155.205.233/32 | applied | added |" in text
    before, after = json.dumps(BLOCK.before, sort_keys=True), json.dumps(BLOCK.after, sort_keys=True)
    assert f"| block_ip | 45.155.205.233/32 | {before} | {after} |" in text
    assert "## Undo" in text and '{"incident_id": "fb-1"}' in text and "(`arn:release`)" in text


def test_finding_supplied_text_cannot_break_the_tables() -> None:
    # GIVEN a title with a pipe, a newline and a backtick
    hostile = dataclasses.replace(INCIDENT, title="a | b\n| injected | row `code`")
    text = render(dataclasses.replace(RECORD, incident=hostile))

    # THEN it stays in its cell
    assert "| Title | a \\| b \\| injected \\| row 'code' |" in text


def test_record_without_actions_says_so_and_offers_no_undo() -> None:
    text = render(dataclasses.replace(RECORD, status="FAILED", actions=None, error="States.Timeout"))

    assert "No actions were recorded" in text
    assert "| Reason | States.Timeout |" in text
    assert "## Undo" not in text


def test_released_incident_lists_the_release_and_no_undo() -> None:
    released = Action(ActionType.BLOCK_IP, "45.155.205.233/32", Outcome.RELEASED, "removed", at="2026-03-15T00:00:00Z")
    text = render(dataclasses.replace(RECORD, status="RELEASED", releases=(released,)))

    assert "## Release" in text
    assert "| block_ip | 45.155.205.233/32 | released | removed |" in text
    assert "## Undo" not in text
