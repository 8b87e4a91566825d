"""The run report of contracts/run-report.schema.json: one result per event file, and the world after them all."""

from __future__ import annotations

import json
from typing import Any

from firebreak_local.engine import Engine, Execution, Rule

INCIDENT_FIELDS = (
    "source",
    "finding_id",
    "account_id",
    "region",
    "finding_type",
    "severity",
    "severity_label",
    "resource_type",
    "resource_role",
    "instance_id",
    "access_key_id",
    "principal_type",
    "principal_name",
    "remote_ips",
    "sample",
)
ACTION_FIELDS = ("type", "target", "outcome", "reason")
# The account and Region a finding is about (world.finding_places), or (None, None) when the event names none.
Place = tuple[str | None, str | None]
NOWHERE: Place = (None, None)


def ignored(event_file: str, place: Place = NOWHERE) -> dict[str, Any]:
    """An event no template rule matches: nothing started."""
    return {
        "event_file": event_file,
        "triggered": False,
        "rule": None,
        "incident_id": None,
        "playbook": None,
        "mode": None,
        "status": "IGNORED",
        "incident": None,
        "actions": [],
        "states": [],
        "execution_arn": None,
        "duration_ms": 0.0,
        "account": place[0],
        "region": place[1],
        "metrics": [],
    }


def result(event_file: str, rule: Rule, execution: Execution, place: Place = NOWHERE) -> dict[str, Any]:
    """What one execution did, read from its output or, for a failed execution, from the report in its cause.

    A RUNNING execution is one the engine left waiting for approval; its output is the AWAITING_APPROVAL report.
    place is the account and Region the finding is about, where the playbook acted.
    """
    reported = execution.status in {"SUCCEEDED", "RUNNING"}
    report = execution.output if reported else _report_in_cause(execution)
    report = report if isinstance(report, dict) else {}
    incident = report.get("incident")
    status = report.get("status") or "FAILED"
    if not reported:
        status = "FAILED" if status not in {"FAILED", "PARTIALLY_CONTAINED"} else status
    return {
        "event_file": event_file,
        "triggered": True,
        "rule": rule.logical_id,
        "incident_id": report.get("incident_id"),
        "playbook": report.get("playbook"),
        "mode": report.get("mode"),
        "status": status,
        "incident": {key: incident.get(key) for key in INCIDENT_FIELDS} if isinstance(incident, dict) else None,
        "actions": [_action(action) for action in report.get("actions") or ()],
        "states": execution.states,
        "execution_arn": execution.arn,
        "duration_ms": round(execution.duration_ms, 1),
        "reason": report.get("reason") or report.get("escalation") or report.get("error") or execution.error,
        "account": place[0],
        "region": place[1],
        # Not in the contract's required keys: what the functions emitted for CloudWatch, read off their output.
        "metrics": [metric.to_dict() for metric in execution.metrics],
    }


def _action(action: dict[str, Any]) -> dict[str, Any]:
    return {key: action[key] for key in ACTION_FIELDS if action.get(key) not in (None, "")}


def _report_in_cause(execution: Execution) -> Any:
    try:
        return json.loads(execution.cause or "")
    except ValueError:
        return {"status": "FAILED", "error": execution.error}


def released(result: dict[str, Any], execution: Execution) -> dict[str, Any]:
    """The event's result once its incident was released: the release's status, states and actions added."""
    report = execution.output if execution.status == "SUCCEEDED" else _report_in_cause(execution)
    report = report if isinstance(report, dict) else {}
    status = report.get("status") if execution.status == "SUCCEEDED" else "FAILED"
    return {
        **result,
        "status": status or "FAILED",
        "actions": result["actions"] + [_action(action) for action in report.get("actions") or ()],
        "states": result["states"] + execution.states,
        "duration_ms": round(result["duration_ms"] + execution.duration_ms, 1),
        "release_execution_arn": execution.arn,
        "reason": report.get("error") or execution.error or result.get("reason"),
        "metrics": result.get("metrics", []) + [metric.to_dict() for metric in execution.metrics],
    }


def world(engine: Engine) -> dict[str, Any]:
    """The emulated account after the events, keyed by the identifiers that appear in the findings."""
    with engine.api_calls.quiet():
        seeded = engine.world.report()
    return {
        **seeded,
        "blocked_ips": engine.blocked_ips(),
        "notifications": engine.world.restore(engine.notifications()),
        "incidents": engine.incident_count(),
        "by_account": engine.accounts_report(),
        # Not in the contract's required keys: what the stack told Security Hub and EventBridge.
        "finding_updates": engine.world.restore(
            [
                {
                    "finding_ids": [item.get("Id") for item in update.get("FindingIdentifiers", [])],
                    "workflow": (update.get("Workflow") or {}).get("Status"),
                    "note": (update.get("Note") or {}).get("Text"),
                }
                for update in engine.finding_updates()
            ]
        ),
        "incident_events": [
            {"incident_id": event["detail"].get("incident_id"), "status": event["detail"].get("status")}
            for event in engine.incident_events()
        ],
    }
