"""The circuit breaker: two hourly budgets per account, counted atomically in DynamoDB.

A flood of forged or buggy findings must not be able to isolate a fleet or block half the internet: past a budget
Firebreak switches to approval (each further response waits for a person) and alerts the responders once an hour.
Workloads (isolations, revocations) and address blocks have separate budgets: blocking a public address at WAF is
the least disruptive, fully reversible response and storms of scanners are routine, so it is counted per address
with a much larger budget, while the workload budget stays small. Each count is one item per account, hour and
budget, raised with a conditional ADD, so concurrent executions can never take more than the limit; it expires by TTL.
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
class Budget:
    """One of the breaker's hourly budgets: the parameter that sets it, what it counts, and where."""

    parameter: str
    counts: str
    attribute: str
    key_suffix: str
    alert_subject: str


# The workload item keeps the key and attribute it always had, so a count taken before an upgrade still holds.
WORKLOADS = Budget(
    "MaxContainmentsPerHour", "isolations and revocations", "responses", "", "circuit breaker open in account"
)
ADDRESSES = Budget(
    "MaxBlockedAddressesPerHour",
    "addresses blocked",
    "addresses",
    "#addresses",
    "circuit breaker open for address blocks in account",
)


@dataclass(frozen=True)
class Slot:
    """Whether a destructive response may run now, and how many this hour took (including this one when granted)."""

    granted: bool
    used: int


def window_key(account_id: str, now: datetime, budget: Budget = WORKLOADS) -> str:
    return f"{account_id}#{now.astimezone(UTC):%Y-%m-%dT%H}{budget.key_suffix}"


def take_slot(
    dynamodb: Any, table: str, account_id: str, limit: int, now: datetime, budget: Budget = WORKLOADS, count: int = 1
) -> Slot:
    """Count `count` units of the budget in this account's hour, unless that would pass the limit; never past it."""
    # A request larger than the whole budget can never fit, not even in an empty hour: refused without counting.
    if count > limit:
        return Slot(granted=False, used=limit)
    hour_start = int(now.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
    response = conditional(
        dynamodb.update_item,
        TableName=table,
        Key={"window": {"S": window_key(account_id, now, budget)}},
        UpdateExpression="ADD #used :count SET expires_at = if_not_exists(expires_at, :expires)",
        ConditionExpression="attribute_not_exists(#used) OR #used <= :room",
        ExpressionAttributeNames={"#used": budget.attribute},
        ExpressionAttributeValues={
            ":count": {"N": str(count)},
            ":room": {"N": str(limit - count)},
            ":expires": {"N": str(hour_start + WINDOW_SECONDS + _KEEP_SECONDS)},
        },
        ReturnValues="UPDATED_NEW",
    )
    if response is None:
        return Slot(granted=False, used=limit)
    return Slot(granted=True, used=int(response["Attributes"][budget.attribute]["N"]))


def open_message(used: int, budget: Budget = WORKLOADS, count: int = 1) -> str:
    """The reason an incident past the budget carries into its approval request, naming the budget."""
    if budget is ADDRESSES:
        return (
            f"circuit breaker open: {count} more addresses would pass {budget.parameter} ({used} an hour); "
            "each further block waits for approval"
        )
    return (
        f"circuit breaker open: {used} {budget.counts} this hour reached {budget.parameter}; "
        "each further one waits for approval"
    )


def alert_once(
    dynamodb: Any, sns: Any, table: str, topic_arn: str, account_id: str, now: datetime, budget: Budget = WORKLOADS
) -> bool:
    """Tell the responders a budget ran out, once per account, hour and budget (a conditional mark on its item)."""
    first = conditional(
        dynamodb.update_item,
        TableName=table,
        Key={"window": {"S": window_key(account_id, now, budget)}},
        UpdateExpression="SET alerted_at = :now",
        ConditionExpression="attribute_not_exists(alerted_at)",
        ExpressionAttributeValues={":now": {"S": now.astimezone(UTC).isoformat(timespec="seconds")}},
    )
    if first is None:
        return False
    sns.publish(
        TopicArn=topic_arn,
        Subject=f"Firebreak ALERT: {budget.alert_subject} {account_id}"[:99],
        Message=(
            f"Firebreak reached {budget.parameter} ({budget.counts}) in account {account_id} "
            f"({window_key(account_id, now, budget)}).\n"
            "Until the hour ends, every further response it counts waits for a responder's approval instead of "
            "acting: a flood of findings may be forged or a detector may be misbehaving. Review the approval "
            "requests that follow before answering them."
        ),
        MessageAttributes={"status": {"DataType": "String", "StringValue": "CIRCUIT_BREAKER_OPEN"}},
    )
    return True
