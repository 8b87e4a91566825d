"""The circuit breaker's atomic per-account, per-hour count."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3

from firebreak.triage.breaker import ADDRESSES, WORKLOADS, Slot, alert_once, open_message, take_slot, window_key

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
        "circuit breaker open: 1 isolations and revocations this hour reached MaxContainmentsPerHour; "
        "each further one waits for approval"
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


def test_address_budget_counts_addresses_and_refuses_a_request_that_would_pass_it(aws: None) -> None:
    # GIVEN a budget of 5 addresses per hour
    name, dynamodb = table(), boto3.client("dynamodb")

    # WHEN incidents ask for 3, 3, 2 and 1 addresses
    slots = [take_slot(dynamodb, name, "123456789012", 5, NOW, ADDRESSES, count) for count in (3, 3, 2, 1)]

    # THEN the first takes 3, the second (which would make 6) is refused without counting, the third fills the
    # hour to 5, and the fourth is refused: never a unit past the limit
    assert [(slot.granted, slot.used) for slot in slots] == [(True, 3), (False, 5), (True, 5), (False, 5)]
    item = dynamodb.get_item(TableName=name, Key={"window": {"S": window_key("123456789012", NOW, ADDRESSES)}})
    assert item["Item"]["addresses"] == {"N": "5"}
    assert open_message(5, ADDRESSES, 3) == (
        "circuit breaker open: 3 more addresses would pass MaxBlockedAddressesPerHour (5 an hour); "
        "each further block waits for approval"
    )


def test_request_larger_than_the_whole_address_budget_is_refused_without_counting(aws: None) -> None:
    # GIVEN a budget of 5 addresses and an empty hour
    name, dynamodb = table(), boto3.client("dynamodb")

    # WHEN one incident asks for 6
    slot = take_slot(dynamodb, name, "123456789012", 5, NOW, ADDRESSES, 6)

    # THEN it is refused and the hour still has all 5
    assert slot == Slot(granted=False, used=5)
    assert take_slot(dynamodb, name, "123456789012", 5, NOW, ADDRESSES, 5) == Slot(granted=True, used=5)


def test_each_budget_trips_on_its_own(aws: None) -> None:
    # GIVEN an account whose workload budget (1) is used up
    name, dynamodb = table(), boto3.client("dynamodb")
    assert take_slot(dynamodb, name, "123456789012", 1, NOW, WORKLOADS).granted
    assert not take_slot(dynamodb, name, "123456789012", 1, NOW, WORKLOADS).granted

    # WHEN address blocks ask, up to their own budget of 2, and past it
    blocks = [take_slot(dynamodb, name, "123456789012", 2, NOW, ADDRESSES, 1) for _ in range(3)]

    # THEN the addresses are counted apart from the workloads, in an item of their own, and the workload count
    # is untouched by them
    assert [slot.granted for slot in blocks] == [True, True, False]
    workload = dynamodb.get_item(TableName=name, Key={"window": {"S": window_key("123456789012", NOW)}})["Item"]
    assert workload["responses"] == {"N": "1"} and "addresses" not in workload
    # AND the other account's address budget is whole
    assert take_slot(dynamodb, name, "210987654321", 2, NOW, ADDRESSES, 2).granted


def test_concurrent_requests_never_take_more_than_the_address_budget(aws: None) -> None:
    # GIVEN a budget of 30 addresses
    name, dynamodb = table(), boto3.client("dynamodb")

    # WHEN 25 incidents of 3 addresses each ask at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        slots = list(pool.map(lambda _: take_slot(dynamodb, name, "123456789012", 30, NOW, ADDRESSES, 3), range(25)))

    # THEN exactly 10 are granted, with distinct counts, and the hour holds exactly 30
    granted = sorted(slot.used for slot in slots if slot.granted)
    assert granted == list(range(3, 31, 3))
    item = dynamodb.get_item(TableName=name, Key={"window": {"S": window_key("123456789012", NOW, ADDRESSES)}})
    assert item["Item"]["addresses"] == {"N": "30"}


def test_each_budget_alerts_once_per_account_and_hour_with_its_own_subject(aws: None) -> None:
    # GIVEN the responder topic with a queue on it
    name, dynamodb, sns, sqs = table(), boto3.client("dynamodb"), boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="responders")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # WHEN both budgets trip three times in one account's hour, and the address budget in another account
    raised = [
        alert_once(dynamodb, sns, name, topic, "123456789012", NOW, budget)
        for budget in (ADDRESSES, WORKLOADS, ADDRESSES, WORKLOADS, ADDRESSES, WORKLOADS)
    ]
    other = alert_once(dynamodb, sns, name, topic, "210987654321", NOW, ADDRESSES)

    # THEN each budget alerted once per account, naming its parameter
    assert (raised, other) == ([True, True, False, False, False, False], True)
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert sorted(body["Subject"] for body in bodies) == [
        "Firebreak ALERT: circuit breaker open for address blocks in account 123456789012",
        "Firebreak ALERT: circuit breaker open for address blocks in account 210987654321",
        "Firebreak ALERT: circuit breaker open in account 123456789012",
    ]
    assert {
        ("MaxBlockedAddressesPerHour" in b["Message"], "MaxContainmentsPerHour" in b["Message"]) for b in bodies
    } == {
        (True, False),
        (False, True),
    }
