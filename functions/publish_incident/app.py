"""Publish Incident (incident table stream): per changed record, an EventBridge status-change event, the
TimeToContain metric, the post-incident report stored on the record, and optionally the "started" message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.core import aws
from firebreak.core.settings import Settings
from firebreak.incident.events import publish_change

logger = Logger()
# Failed records are reported, never raised: Lambda retries from the first failed sequence number either way.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def handle(record: DynamoDBRecord) -> None:
    incident = publish_change(aws.client, Settings.from_env(), record.raw_event.get("dynamodb", {}))
    if incident is not None:
        logger.info("Published status change", extra={"incident_id": incident.incident_id, "status": incident.status})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    return dict(response)
