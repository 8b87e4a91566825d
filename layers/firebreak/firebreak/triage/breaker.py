"""The circuit breaker: at most N destructive responses per account per hour, counted atomically in DynamoDB.

A flood of forged or buggy findings must not be able to isolate a fleet or block half the internet: past the limit
Firebreak switches to approval (each further response waits for a person) and alerts the responders once an hour.
The count is one item per account and hour, raised with a conditional ADD, so concurrent executions can never take
more slots than the limit; the item expires by TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from firebreak.core.aws import conditional

WINDOW_SECONDS = 3600
# Kept a day past its hour so the count can still be read when an incident is investigated.
_KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Slot:
    """Whether a destructive response may run now, and how many this hour took (including this one when granted)."""

    granted: bool
    used: int


def window_key(account_id: str, now: datetime) -> str:
    return f"{account_id}#{now.astimezone(UTC):%Y-%m-%dT%H}"


def take_slot(dynamodb: Any, table: str, account_id: str, limit: int, now: datetime) -> Slot:
    """Count one destructive response in this account's hour, unless the limit is reached; never two past it."""
    hour_start = int(now.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
    response = conditional(
        dynamodb.update_item,
        TableName=table,
        Key={"window": {"S": window_key(account_id, now)}},
        UpdateExpression="ADD responses :one SET expires_at = if_not_exists(expires_at, :expires)",
        ConditionExpression="attribute_not_exists(responses) OR responses < :limit",
        ExpressionAttributeValues={
            ":one": {"N": "1"},
            ":limit": {"N": str(limit)},
            ":expires": {"N": str(hour_start + WINDOW_SECONDS + _KEEP_SECONDS)},
        },
        ReturnValues="UPDATED_NEW",
    )
    if response is None:
        return Slot(granted=False, used=limit)
    return Slot(granted=True, used=int(response["Attributes"]["responses"]["N"]))


def open_message(used: int) -> str:
    return f"circuit breaker open: {used} destructive responses this hour; each further one waits for approval"


def alert_once(dynamodb: Any, sns: Any, table: str, topic_arn: str, account_id: str, now: datetime) -> bool:
    """Tell the responders the breaker opened, once per account and hour (a conditional mark on the hour's item)."""
    first = conditional(
        dynamodb.update_item,
        TableName=table,
        Key={"window": {"S": window_key(account_id, now)}},
        UpdateExpression="SET alerted_at = :now",
        ConditionExpression="attribute_not_exists(alerted_at)",
        ExpressionAttributeValues={":now": {"S": now.astimezone(UTC).isoformat(timespec="seconds")}},
    )
    if first is None:
        return False
    sns.publish(
        TopicArn=topic_arn,
        Subject=f"Firebreak ALERT: circuit breaker open in account {account_id}"[:99],
        Message=(
            f"Firebreak reached MaxContainmentsPerHour in account {account_id} ({window_key(account_id, now)}).\n"
            "Until the hour ends, every further destructive response waits for a responder's approval instead of "
            "acting: a flood of findings may be forged or a detector may be misbehaving. Review the approval "
            "requests that follow before answering them."
        ),
        MessageAttributes={"status": {"DataType": "String", "StringValue": "CIRCUIT_BREAKER_OPEN"}},
    )
    return True
