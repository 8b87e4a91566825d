"""Publish Incident (incident table stream): per changed record, an EventBridge status-change event, the
TimeToContain metric, the post-incident report stored on the record, and optionally the "started" message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.errors import EventNotPublished
from firebreak.core.models import IncidentStatus, utc_now
from firebreak.core.settings import Settings
from firebreak.incident.events import content_changed, emit_time_to_contain, put_events_entry, status_changed
from firebreak.incident.notifications import started_subject, started_summary
from firebreak.incident.postmortem import render
from firebreak.incident.records import IncidentRecord, plain

logger = Logger()
# Failed records are reported, never raised: Lambda retries from the first failed sequence number either way.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


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


def handle(record: DynamoDBRecord) -> None:
    images = record.raw_event.get("dynamodb", {})
    old = plain(images["OldImage"]) if "OldImage" in images else None
    new = plain(images["NewImage"]) if "NewImage" in images else None
    if new is None or not content_changed(old, new):
        return
    settings = Settings.from_env()
    incident = IncidentRecord.from_item(new)
    if status_changed(old, new):
        previous = old.get("status") if old else None
        publish_status(aws.client("events"), incident, previous, settings)
        logger.info("Published status change", extra={"incident_id": incident.incident_id, "status": incident.status})
        if incident.status == IncidentStatus.CONTAINED:
            emit_time_to_contain(incident)
        if incident.status == IncidentStatus.OPEN and settings.notify_on_start:
            tell_started(aws.client("sns"), incident, settings)
    store_report(aws.client("dynamodb"), settings.incident_table, incident, settings)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    return dict(response)
