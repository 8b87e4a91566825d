"""Incident status changes as EventBridge events (source `firebreak`), for SIEMs and other automation.

Published from the incident table's stream, so every change of the record's status is told exactly once per
change, whichever state machine made it (response, failure path, release), and none that the record does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from firebreak.core.aws import ClientFactory
from firebreak.core.errors import EventNotPublished
from firebreak.core.models import IncidentStatus, utc_now
from firebreak.core.settings import Settings
from firebreak.incident.notifications import started_subject, started_summary
from firebreak.incident.postmortem import render
from firebreak.incident.records import IncidentRecord, plain

SOURCE = "firebreak"
DETAIL_TYPE = "Firebreak Incident Status Change"
METRICS_NAMESPACE = "Firebreak"
TIME_TO_CONTAIN = "TimeToContain"
MAX_ACTIONS_IN_EVENT = 100
# Written by the stream consumer itself: a change to these alone is not news and must not start another round.
DERIVED_ATTRIBUTES = frozenset({"report", "report_rendered_at"})


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    return new is not None and (old is None or old.get("status") != new.get("status"))


def content_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """True when the record changed in anything but what the consumer derives from it."""
    if new is None:
        return False
    if old is None:
        return True
    keys = (set(old) | set(new)) - DERIVED_ATTRIBUTES
    return any(old.get(key) != new.get(key) for key in keys)


def status_event(record: IncidentRecord, previous: str | None) -> dict[str, Any]:
    """The event's detail: the new status, when it was entered, and enough of the incident to act on without a read."""
    incident = record.incident
    actions = record.actions or ()
    return {
        "version": 1,
        "incident_id": record.incident_id,
        "status": record.status,
        "previous_status": previous,
        "at": record.status_at(record.status) or record.closed_at or record.opened_at,
        "playbook": record.playbook,
        "mode": record.mode,
        "execution_arn": record.execution_arn,
        "finding": None
        if incident is None
        else {
            "source": incident.source.value,
            "finding_id": incident.finding_id,
            "finding_type": incident.finding_type,
            "severity": incident.severity,
            "severity_label": incident.severity_label,
            "account_id": incident.account_id,
            "region": incident.region,
            "resource_type": incident.resource_type,
            "instance_id": incident.instance_id,
            "access_key_id": incident.access_key_id,
            "remote_ips": list(incident.remote_ips),
        },
        "actions": [
            {"type": a.type.value, "target": a.target, "outcome": a.outcome.value}
            for a in actions[:MAX_ACTIONS_IN_EVENT]
        ],
        "actions_truncated": len(actions) > MAX_ACTIONS_IN_EVENT,
        "blocked_addresses": list(record.blocked_addresses),
        "time_to_contain_seconds": record.time_to_contain(),
        "reason": record.reason or record.error,
    }


def put_events_entry(record: IncidentRecord, previous: str | None, bus_name: str) -> dict[str, Any]:
    detail = status_event(record, previous)
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [record.execution_arn] if record.execution_arn else [],
        "EventBusName": bus_name,
    }


def emit_time_to_contain(record: IncidentRecord) -> None:
    """TimeToContain per playbook, as an embedded-metric log line: seconds from the finding reaching the stack (the
    incident's `opened_at`) to CONTAINED, both on Step Functions' clock (IncidentRecord.time_to_contain)."""
    seconds = record.time_to_contain()
    if seconds is None or record.playbook is None:
        return
    with single_metric(TIME_TO_CONTAIN, MetricUnit.Seconds, max(seconds, 0.0), namespace=METRICS_NAMESPACE) as metric:
        metric.add_dimension(name="playbook", value=record.playbook)


def publish_status(events: Any, record: IncidentRecord, previous: str | None, settings: Settings) -> None:
    response = events.put_events(Entries=[put_events_entry(record, previous, settings.event_bus_name)])
    if response.get("FailedEntryCount"):
        raise EventNotPublished(str(response["Entries"][0].get("ErrorMessage") or response["Entries"][0]))


def store_report(dynamodb: Any, table: str, record: IncidentRecord, settings: Settings) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"incident_id": {"S": record.incident_id}},
        UpdateExpression="SET #report = :report, report_rendered_at = :now",
        ConditionExpression="attribute_exists(incident_id)",
        ExpressionAttributeNames={"#report": "report"},
        ExpressionAttributeValues={
            ":report": {"S": render(record, settings.release_state_machine_arn)},
            ":now": {"S": utc_now()},
        },
    )


def tell_started(sns: Any, record: IncidentRecord, settings: Settings) -> None:
    triage = record.triage()
    if triage is None:
        return
    sns.publish(
        TopicArn=settings.responder_topic_arn,
        Subject=started_subject(triage),
        Message=started_summary(triage, record.execution_arn or ""),
        MessageAttributes={"status": {"DataType": "String", "StringValue": "STARTED"}},
    )


def publish_change(client: ClientFactory, settings: Settings, images: Mapping[str, Any]) -> IncidentRecord | None:
    """One stream record's images: a status change told (event, metric, started message), the report refreshed.

    Returns the record when its status changed and was published, None otherwise.
    """
    old = plain(images["OldImage"]) if "OldImage" in images else None
    new = plain(images["NewImage"]) if "NewImage" in images else None
    if new is None or not content_changed(old, new):
        return None
    incident = IncidentRecord.from_item(new)
    published = status_changed(old, new)
    if published:
        publish_status(client("events"), incident, old.get("status") if old else None, settings)
        if incident.status == IncidentStatus.CONTAINED:
            emit_time_to_contain(incident)
        if incident.status == IncidentStatus.OPEN and settings.notify_on_start:
            tell_started(client("sns"), incident, settings)
    store_report(client("dynamodb"), settings.incident_table, incident, settings)
    return incident if published else None
