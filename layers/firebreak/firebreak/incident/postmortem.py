"""The post-incident report: Markdown rendered from the incident record alone, so it can be rebuilt at any time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from firebreak.core.models import Action
from firebreak.incident.notifications import LOCAL_RELEASE, changes, execution_link, finding_link, verdicts
from firebreak.incident.records import IncidentRecord


def _cell(value: Any) -> str:
    """Table-safe text: finding-supplied strings may hold pipes, newlines or backticks."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ").replace("`", "'")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (rest, "s")) if n) or "0 s"


def _state(value: dict[str, Any]) -> str:
    return _cell(json.dumps(value, sort_keys=True)) if value else ""


def _actions_table(actions: Sequence[Action]) -> list[str]:
    lines = ["| at | action | target | outcome | reason |", "|---|---|---|---|---|"]
    lines += [
        f"| {_cell(a.at)} | {a.type.value} | {_cell(a.target)} | {a.outcome.value} | {_cell(a.reason)} |"
        for a in actions
    ]
    return lines


def _state_table(actions: Sequence[Action]) -> list[str]:
    changed = [a for a in actions if a.before or a.after]
    if not changed:
        return []
    lines = ["", "| action | target | before | after |", "|---|---|---|---|"]
    lines += [f"| {a.type.value} | {_cell(a.target)} | {_state(a.before)} | {_state(a.after)} |" for a in changed]
    return lines


def render(record: IncidentRecord, release_arn: str = "") -> str:
    """The whole report: summary, timeline, verdicts, actions with their state, release, and how to undo."""
    incident = record.incident
    triage = record.triage()
    lines = [f"# Firebreak incident {record.incident_id}: {record.status}", ""]
    rows: list[tuple[str, Any]] = [("Status", record.status)]
    if incident is not None:
        rows += [
            ("Finding", f"{incident.finding_type} (severity {incident.severity:g} {incident.severity_label})"),
            ("Source", f"{incident.product_name or incident.source.value}, finding {incident.finding_id}"),
            ("Title", incident.title),
            ("Account and Region", f"{incident.account_id} {incident.region}"),
            ("Resource", f"{incident.resource_type} {incident.instance_id or incident.access_key_id or ''}".strip()),
            ("Remote addresses", ", ".join(incident.remote_ips) or "none"),
        ]
    rows += [
        ("Playbook and mode", f"{record.playbook or '-'}, {record.mode or '-'}"),
        ("First seen", record.first_seen_at),
        ("Opened", record.opened_at),
        ("Closed", record.closed_at),
        ("Time to contain", _duration(record.time_to_contain()) if record.status_at("CONTAINED") else "not contained"),
        ("Deliveries", record.deliveries),
        ("Execution", record.execution_arn),
    ]
    if record.reason or record.error:
        rows.append(("Reason", record.reason or record.error))
    lines += ["| | |", "|---|---|", *(f"| {name} | {_cell(value)} |" for name, value in rows if value is not None)]
    if triage is not None and record.execution_arn:
        execution = execution_link(triage.incident.region, record.execution_arn)
        lines += ["", f"[Finding]({finding_link(triage)}) · [Execution]({execution})"]
    lines += ["", "## Timeline", "", "| at | status |", "|---|---|"]
    lines += [f"| {_cell(change.at)} | {change.status} |" for change in record.history]
    found = verdicts(record.actions or ())
    if found:
        lines += ["", "## Verdicts", "", "| address | verdict | score |", "|---|---|---|"]
        lines += [f"| {_cell(address)} | {verdict} | {_cell(score)} |" for address, verdict, score in found]
    lines += ["", "## Actions", ""]
    if record.actions is None:
        lines.append("No actions were recorded: the response did not finish. Check the execution history.")
    else:
        lines += _actions_table(record.actions) + _state_table(record.actions)
    if record.releases:
        lines += ["", "## Release", "", *_actions_table(record.releases), *_state_table(record.releases)]
    pending = changes(record.actions or ())
    if pending and record.status != "RELEASED":
        lines += [
            "",
            "## Undo",
            "",
            f"Start the release state machine with `{json.dumps({'incident_id': record.incident_id})}`",
        ]
        if release_arn:
            lines.append(f"(`{release_arn}`)")
        lines.append(f"or, on the local engine, `{LOCAL_RELEASE}`.")
    return "\n".join(lines) + "\n"
