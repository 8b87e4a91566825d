"""The triage decision's circuit breaker: which budget each playbook draws on, and how much."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest

from firebreak.core import aws as firebreak_aws
from firebreak.core.models import Mode, Triage
from firebreak.core.settings import Settings
from firebreak.triage.breaker import ADDRESSES, window_key
from firebreak.triage.decision import through_breaker, triage
from firebreak.triage.findings import normalise
from tests.support import load_event

ACCOUNT = "123456789012"


@pytest.fixture
def breaker(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The breaker table and responder topic on moto, named in the environment as the template does."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="breaker",
        KeySchema=[{"AttributeName": "window", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "window", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("CIRCUIT_BREAKER_TABLE_NAME", "breaker")
    monkeypatch.setenv("RESPONDER_TOPIC_ARN", boto3.client("sns").create_topic(Name="responders")["TopicArn"])
    firebreak_aws._client.cache_clear()
    yield "breaker"
    firebreak_aws._client.cache_clear()


def decide(name: str, settings: Settings) -> Triage:
    return through_breaker(triage(normalise(load_event(f"eventbridge/{name}")["detail"]), settings), settings)


def addresses_used(table: str) -> int:
    key = window_key(ACCOUNT, datetime.now(UTC), ADDRESSES)
    item = boto3.client("dynamodb").get_item(TableName=table, Key={"window": {"S": key}}).get("Item", {})
    return int(item.get("addresses", {}).get("N", "0"))


def test_block_ip_takes_one_address_slot_per_blockable_address_and_waits_past_the_budget(
    breaker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an address budget of 3 and a workload budget of 1
    monkeypatch.setenv("MAX_BLOCKED_ADDRESSES_PER_HOUR", "3")
    monkeypatch.setenv("MAX_CONTAINMENTS_PER_HOUR", "1")
    settings = Settings.from_env()

    # WHEN a port probe from two public addresses and one private one runs twice
    first, second = decide("guardduty_port_probe_high", settings), decide("guardduty_port_probe_high", settings)

    # THEN the first acts and took 2 address slots (the private address is never blocked, so it takes none), the
    # second would pass the budget and waits for approval, naming the address budget
    assert first.mode is Mode.ENFORCE and first.approval is None
    assert addresses_used(breaker) == 2
    assert second.mode is Mode.APPROVAL and second.approval is not None
    assert second.approval.reason == (
        "circuit breaker open: 2 more addresses would pass MaxBlockedAddressesPerHour (3 an hour); "
        "each further block waits for approval"
    )
    # AND the workload budget is untouched by them: an isolation still acts
    assert decide("guardduty_c2_outbound", settings).mode is Mode.ENFORCE


def test_isolation_and_revocation_take_a_workload_slot_and_their_addresses_ride_along(
    breaker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a workload budget of 1 and an address budget of 1
    monkeypatch.setenv("MAX_CONTAINMENTS_PER_HOUR", "1")
    monkeypatch.setenv("MAX_BLOCKED_ADDRESSES_PER_HOUR", "1")
    settings = Settings.from_env()

    # WHEN an instance talking to a C2 address is contained, then credentials are compromised
    isolation, revocation = (
        decide("guardduty_c2_outbound", settings),
        decide("guardduty_iam_user_key_compromised", settings),
    )

    # THEN the isolation acts without touching the address budget, and the revocation waits, naming the workload one
    assert isolation.mode is Mode.ENFORCE
    assert addresses_used(breaker) == 0
    assert revocation.mode is Mode.APPROVAL and revocation.approval is not None
    assert revocation.approval.reason == (
        "circuit breaker open: 1 isolations and revocations this hour reached MaxContainmentsPerHour; "
        "each further one waits for approval"
    )
    # AND a brute force's one address still fits the address budget
    assert decide("guardduty_ssh_brute_force", settings).mode is Mode.ENFORCE


def test_block_ip_counts_at_most_the_cap_and_nothing_for_allow_listed_addresses(
    breaker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a cap of 1 address per incident, and the brute forcer's network allow-listed
    monkeypatch.setenv("MAX_ADDRESSES_PER_INCIDENT", "1")
    monkeypatch.setenv("ALLOW_LIST_CIDRS", "45.155.205.0/24")
    settings = Settings.from_env()

    # WHEN a port probe from two public addresses and the allow-listed brute force run
    probe, brute_force = decide("guardduty_port_probe_high", settings), decide("guardduty_ssh_brute_force", settings)

    # THEN both act; the probe took one slot (the cap), the brute force none (block-ip will block nothing)
    assert (probe.mode, brute_force.mode) == (Mode.ENFORCE, Mode.ENFORCE)
    assert addresses_used(breaker) == 1


def test_contain_function_takes_a_workload_slot_and_its_addresses_ride_along(
    breaker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a workload budget of 1
    monkeypatch.setenv("MAX_CONTAINMENTS_PER_HOUR", "1")
    settings = Settings.from_env()

    # WHEN a crypto-mining function is contained, then an instance talking to a C2 address
    function, isolation = (
        decide("guardduty_lambda_crypto_mining", settings),
        decide("guardduty_c2_outbound", settings),
    )

    # THEN the function acts without touching the address budget, and the isolation waits on the workload budget
    assert (function.playbook.value, function.mode) == ("contain-function", Mode.ENFORCE)
    assert addresses_used(breaker) == 0
    assert isolation.mode is Mode.APPROVAL and isolation.approval is not None
    assert "MaxContainmentsPerHour" in isolation.approval.reason


def test_contain_database_takes_a_workload_slot(breaker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a workload budget of 1, and contain-database in enforce mode
    monkeypatch.setenv("MAX_CONTAINMENTS_PER_HOUR", "1")
    monkeypatch.setenv("CONTAIN_DATABASE_MODE", "enforce")
    settings = Settings.from_env()

    # WHEN a database login runs, then an isolation
    database, isolation = decide("guardduty_rds_login_attempt", settings), decide("guardduty_c2_outbound", settings)

    # THEN the database took the hour's one workload slot, so the isolation waits for approval
    assert (database.playbook.value, database.mode) == ("contain-database", Mode.ENFORCE)
    assert isolation.mode is Mode.APPROVAL
    assert isolation.approval is not None and "MaxContainmentsPerHour" in isolation.approval.reason
