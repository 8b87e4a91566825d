"""The circuit breaker's atomic per-account, per-hour count."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3

from firebreak.triage.breaker import alert_once, open_message, take_slot, window_key

NOW = datetime(2026, 5, 1, 10, 30, tzinfo=UTC)


def table() -> str:
    boto3.client("dynamodb").create_table(
        TableName="breaker",
        KeySchema=[{"AttributeName": "window", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "window", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "breaker"


def test_grants_up_to_the_limit_and_refuses_the_next(aws: None) -> None:
    # GIVEN a limit of 2 per hour
    name, dynamodb = table(), boto3.client("dynamodb")

    # WHEN three responses ask for a slot in the same hour
    slots = [take_slot(dynamodb, name, "123456789012", 2, NOW) for _ in range(3)]

    # THEN two are granted, counted 1 and 2, and the third is refused without raising the count past the limit
    assert [(slot.granted, slot.used) for slot in slots] == [(True, 1), (True, 2), (False, 2)]
    item = dynamodb.get_item(TableName=name, Key={"window": {"S": window_key("123456789012", NOW)}})["Item"]
    assert item["responses"] == {"N": "2"}
    assert int(item["expires_at"]["N"]) > NOW.timestamp() + 3600


def test_each_account_and_hour_has_its_own_budget(aws: None) -> None:
    # GIVEN an account that used its one slot
    name, dynamodb = table(), boto3.client("dynamodb")
    assert take_slot(dynamodb, name, "123456789012", 1, NOW).granted

    # WHEN another account, or the next hour, asks
    other_account = take_slot(dynamodb, name, "210987654321", 1, NOW)
    next_hour = take_slot(dynamodb, name, "123456789012", 1, NOW.replace(hour=11))

    # THEN both are granted
    assert other_account.granted and next_hour.granted
    assert open_message(1) == (
        "circuit breaker open: 1 destructive responses this hour; each further one waits for approval"
    )


def test_open_breaker_alerts_the_responders_once_per_account_and_hour(aws: None) -> None:
    # GIVEN a breaker table whose hour is used up, and the responder topic with a queue on it
    name, dynamodb, sns, sqs = table(), boto3.client("dynamodb"), boto3.client("sns"), boto3.client("sqs")
    assert take_slot(dynamodb, name, "123456789012", 1, NOW).granted
    topic = sns.create_topic(Name="responders")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # WHEN three refused responses of that hour, and one of the next hour, raise the alert
    raised = [alert_once(dynamodb, sns, name, topic, "123456789012", NOW) for _ in range(3)]
    next_hour = alert_once(dynamodb, sns, name, topic, "123456789012", NOW.replace(hour=11))

    # THEN only the first of each hour publishes, saying that further responses wait for approval
    assert (raised, next_hour) == ([True, False, False], True)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 2
    body = json.loads(messages[0]["Body"])
    assert body["Subject"] == "Firebreak ALERT: circuit breaker open in account 123456789012"
    assert "waits for a responder's approval" in body["Message"]
