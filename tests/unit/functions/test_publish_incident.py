"""Publish Incident on the incident table's stream: status events, TimeToContain, the stored report, "started"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from firebreak.core import aws as clients
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from firebreak_local.runtime import LambdaContext
from functions.publish_incident import app
from tests.support import load_event

TABLE = "incidents"
INCIDENT = normalise(load_event("eventbridge/guardduty_ssh_brute_force"))
INCIDENT_ID = incident_id_for(INCIDENT)
OPENED = {
    "incident_id": INCIDENT_ID,
    "status": "OPEN",
    "playbook": "block-ip",
    "mode": "enforce",
    "incident": json.dumps(INCIDENT.to_dict()),
    "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:respond:run-1",
    "opened_at": "2026-03-14T09:14:05.000Z",
    "first_seen_at": "2026-03-14T09:02:11.000Z",
    "status_history": [{"status": "OPEN", "at": "2026-03-14T09:14:05.000Z"}],
}
BLOCK = {
    "type": "block_ip",
    "target": "45.155.205.233/32",
    "outcome": "applied",
    "reason": "added to WAF IPSet blocked-ipv4",
    "before": {"ipset": "arn:ipset", "present": False},
    "after": {"ipset": "arn:ipset", "present": True},
    "at": "2026-03-14T09:14:06.000Z",
}
CONTAINED = {
    **OPENED,
    "status": "CONTAINED",
    "actions": [BLOCK],
    "closed_at": "2026-03-14T09:14:07.500Z",
    "blocked_addresses": ["45.155.205.233/32"],
    "status_history": [*OPENED["status_history"], {"status": "CONTAINED", "at": "2026-03-14T09:14:07.500Z"}],
}


def typed(item: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in item.items()}


def stream_event(*changes: tuple[dict[str, Any] | None, dict[str, Any] | None]) -> dict[str, Any]:
    records = []
    for number, (old, new) in enumerate(changes):
        images = {"OldImage": typed(old)} if old else {}
        images |= {"NewImage": typed(new)} if new else {}
        name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        records.append(
            {
                "eventID": str(number),
                "eventName": name,
                "eventSource": "aws:dynamodb",
                "dynamodb": {
                    "SequenceNumber": str(100 + number),
                    "Keys": {"incident_id": {"S": INCIDENT_ID}},
                    **images,
                },
            }
        )
    return {"Records": records}


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The table holding the record, a queue receiving Firebreak's events, and the responder topic's queue."""
    clients._client.cache_clear()
    dynamodb, sqs, events, sns = (
        boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "sqs", "events", "sns")
    )
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "incident_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "incident_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queues = {}
    for name in ("events", "told"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queues[name] = url
        queues[f"{name}_arn"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    events.put_rule(Name="firebreak", EventPattern=json.dumps({"source": ["firebreak"]}))
    events.put_targets(Rule="firebreak", Targets=[{"Id": "q", "Arn": queues["events_arn"]}])
    topic = sns.create_topic(Name="responders")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["told_arn"])
    monkeypatch.setenv("INCIDENT_TABLE_NAME", TABLE)
    monkeypatch.setenv("RESPONDER_TOPIC_ARN", topic)
    yield queues
    clients._client.cache_clear()


def put(item: dict[str, Any]) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=TABLE, Item=typed(item))


def received(queue: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def stored_report() -> str | None:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=TABLE, Key={"incident_id": {"S": INCIDENT_ID}}
    )["Item"]
    return item.get("report", {}).get("S")


def test_status_change_is_published_as_a_firebreak_event(stack: dict[str, str], lambda_context: LambdaContext) -> None:
    # GIVEN the record moved from OPEN to CONTAINED
    put(CONTAINED)

    # WHEN the stream delivers the change
    result = app.lambda_handler(stream_event((OPENED, CONTAINED)), lambda_context)

    # THEN one event says so, with enough of the incident to act on
    assert result == {"batchItemFailures": []}
    (event,) = received(stack["events"])
    assert (event["source"], event["detail-type"]) == ("firebreak", "Firebreak Incident Status Change")
    detail = event["detail"]
    assert (detail["previous_status"], detail["status"]) == ("OPEN", "CONTAINED")
    assert detail["at"] == "2026-03-14T09:14:07.500Z"
    assert detail["finding"]["finding_type"] == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert detail["blocked_addresses"] == ["45.155.205.233/32"]
    assert detail["time_to_contain_seconds"] == pytest.approx(2.5)


def time_to_contain_printed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [metric for metric in metrics if "TimeToContain" in metric]


def test_time_to_contain_is_emitted_per_playbook_in_seconds(
    stack: dict[str, str], lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an incident opened at 09:14:05.000 and contained at 09:14:07.500
    put(CONTAINED)

    # WHEN the change is delivered
    app.lambda_handler(stream_event((OPENED, CONTAINED)), lambda_context)

    # THEN an EMF metric TimeToContain of 2.5 s in namespace Firebreak with the playbook dimension is printed
    (metric,) = time_to_contain_printed(capsys)
    (definition,) = metric["_aws"]["CloudWatchMetrics"]
    assert definition["Namespace"] == "Firebreak"
    assert definition["Metrics"] == [{"Name": "TimeToContain", "Unit": "Seconds"}]
    assert "playbook" in definition["Dimensions"][0]
    assert (metric["playbook"], metric["TimeToContain"]) == ("block-ip", [2.5])


def test_time_to_contain_runs_from_the_stack_receiving_the_finding_not_its_first_sighting(
    stack: dict[str, str], lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a finding GuardDuty first saw six months before it reached the stack (a sample, or one updated again),
    # whose incident was opened at 09:14:05.000 and contained at 09:14:07.500, both on Step Functions' clock
    opened = {**OPENED, "first_seen_at": "2025-09-14T09:02:11.000Z"}
    contained = {**CONTAINED, "first_seen_at": opened["first_seen_at"]}
    put(contained)

    # WHEN the change is delivered
    app.lambda_handler(stream_event((opened, contained)), lambda_context)

    # THEN TimeToContain and the status event say 2.5 s, not six months
    (metric,) = time_to_contain_printed(capsys)
    assert metric["TimeToContain"] == [2.5]
    (event,) = received(stack["events"])
    assert event["detail"]["time_to_contain_seconds"] == pytest.approx(2.5)


def test_no_time_to_contain_without_the_opening_time(
    stack: dict[str, str], lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a contained record that does not say when it was opened
    contained = {key: value for key, value in CONTAINED.items() if key != "opened_at"}
    put(contained)

    # WHEN the change is delivered
    app.lambda_handler(stream_event((OPENED, contained)), lambda_context)

    # THEN no TimeToContain is made up from another clock
    assert time_to_contain_printed(capsys) == []


def test_report_is_rendered_from_the_record_and_stored_beside_it(
    stack: dict[str, str], lambda_context: LambdaContext
) -> None:
    # GIVEN a contained incident
    put(CONTAINED)

    # WHEN the change is delivered
    app.lambda_handler(stream_event((OPENED, CONTAINED)), lambda_context)

    # THEN the record carries its Markdown report
    report = stored_report()
    assert report is not None
    assert report.startswith(f"# Firebreak incident {INCIDENT_ID}: CONTAINED")
    assert "| Time to contain | 2 s |" in report or "| Time to contain | 3 s |" in report


def test_change_of_the_report_alone_is_not_news(stack: dict[str, str], lambda_context: LambdaContext) -> None:
    # GIVEN the consumer's own write of the report
    put(CONTAINED)
    rendered = {**CONTAINED, "report": "# old", "report_rendered_at": "now"}

    # WHEN the stream delivers that change, and a removal
    app.lambda_handler(stream_event((CONTAINED, rendered), (CONTAINED, None)), lambda_context)

    # THEN nothing is published and nothing rewritten (no loop)
    assert received(stack["events"]) == []
    assert stored_report() is None


def test_change_without_a_new_status_refreshes_the_report_but_publishes_nothing(
    stack: dict[str, str], lambda_context: LambdaContext
) -> None:
    # GIVEN a second delivery counted on a contained incident
    redelivered = {**CONTAINED, "deliveries": 2}
    put(redelivered)

    # WHEN it is delivered
    app.lambda_handler(stream_event((CONTAINED, redelivered)), lambda_context)

    # THEN the report is refreshed and no status event is sent
    assert received(stack["events"]) == []
    assert "| Deliveries | 2 |" in (stored_report() or "")


def test_started_message_is_sent_only_when_asked_for(
    stack: dict[str, str], lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an incident that just opened
    put(OPENED)

    # WHEN it is delivered without, then with NotifyOnStart
    app.lambda_handler(stream_event((None, OPENED)), lambda_context)
    silent = received(stack["told"])
    monkeypatch.setenv("NOTIFY_ON_START", "true")
    app.lambda_handler(stream_event((None, OPENED)), lambda_context)

    # THEN only the second told the responders that the response started
    (told,) = received(stack["told"])
    assert silent == []
    assert told["Subject"] == "Firebreak STARTED: UnauthorizedAccess:EC2/SSHBruteForce"
    assert f"Firebreak incident {INCIDENT_ID}: started" in told["Message"]


def test_refused_event_is_reported_as_a_batch_item_failure(
    stack: dict[str, str], lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN EventBridge refuses the entry
    put(CONTAINED)

    def refuse(**_: Any) -> dict[str, Any]:
        return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}

    monkeypatch.setattr(clients.client("events"), "put_events", refuse)

    # WHEN the change is delivered
    result = app.lambda_handler(stream_event((OPENED, CONTAINED)), lambda_context)

    # THEN the record is handed back to the stream to retry, not dropped
    assert result == {"batchItemFailures": [{"itemIdentifier": "100"}]}
