"""The DynamoDB cache of provider answers: a second lookup makes no HTTP call, failures are asked again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from firebreak.intel.cache import CachedProvider, ResultCache
from firebreak.intel.enrichment import assess_all
from firebreak.intel.providers import LookupStatus, ProviderConfig, VirusTotal
from firebreak.intel.remote_config import AddressLists
from firebreak.triage.findings import normalise
from firebreak_local.template import load_template
from tests.fake_intel import FakeIntel, documented, fake_intel
from tests.support import TEMPLATE, load_event

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

ATTACKER = "45.155.205.233"
TABLE = "enrichment-cache"
DAY = 24 * 3600


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def intel() -> Iterator[FakeIntel]:
    with fake_intel() as server:
        yield server


@pytest.fixture
def dynamodb(aws: None) -> Any:
    """The cache table as template.yaml declares it."""
    properties = load_template(TEMPLATE).resources["EnrichmentCacheTable"]["Properties"]
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
    )
    return client


def cached_virustotal(intel: FakeIntel, dynamodb: Any, clock: Clock | None = None) -> CachedProvider:
    cache = ResultCache(dynamodb, TABLE, DAY, clock or Clock())
    return CachedProvider(VirusTotal(ProviderConfig("key", intel.base_url)), cache)


def soon() -> float:
    return time.monotonic() + 1


def test_second_lookup_of_an_address_makes_no_http_call(intel: FakeIntel, dynamodb: Any) -> None:
    # GIVEN VirusTotal answers about the attacker
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    provider = cached_virustotal(intel, dynamodb)

    # WHEN the address is looked up twice
    first = provider.lookup(ATTACKER, soon())
    second = provider.lookup(ATTACKER, soon())

    # THEN VirusTotal was asked once, and the second answer is the first, marked cached
    assert intel.count() == 1
    assert (first.cached, second.cached) == (False, True)
    assert (second.status, second.verdict, second.score, second.details) == (
        first.status,
        first.verdict,
        first.score,
        first.details,
    )


def test_a_storm_of_findings_spends_one_lookup_per_provider_and_address(intel: FakeIntel, dynamodb: Any) -> None:
    # GIVEN the same attacker in twenty findings (a brute-force storm)
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    incident = normalise(load_event("eventbridge/guardduty_ssh_brute_force"))
    provider = cached_virustotal(intel, dynamodb)

    # WHEN each is enriched
    verdicts = [assess_all(incident, AddressLists(), [provider], soon(), 50)[0].verdict.verdict for _ in range(20)]

    # THEN the provider's quota was spent once and every verdict agrees
    assert intel.count() == 1
    assert set(verdicts) == {"malicious"}


def test_not_found_is_cached_too(intel: FakeIntel, dynamodb: Any) -> None:
    # GIVEN VirusTotal knows nothing of the address
    intel.on("/ip_addresses/", status=404, body=documented("virustotal_not_found"))
    provider = cached_virustotal(intel, dynamodb)

    # WHEN it is looked up twice
    provider.lookup(ATTACKER, soon())
    second = provider.lookup(ATTACKER, soon())

    # THEN "nothing known" was reused
    assert (second.status, second.cached, intel.count()) == (LookupStatus.NOT_FOUND, True, 1)


@pytest.mark.parametrize("status", [429, 500])
def test_rate_limits_and_errors_are_asked_again(intel: FakeIntel, dynamodb: Any, status: int) -> None:
    # GIVEN VirusTotal is over quota or failing
    intel.on("/ip_addresses/", status=status, body=documented("virustotal_quota_exceeded"))
    provider = cached_virustotal(intel, dynamodb)

    # WHEN the address is looked up twice
    provider.lookup(ATTACKER, soon())
    second = provider.lookup(ATTACKER, soon())

    # THEN the failure was not cached
    assert second.cached is False
    assert intel.count() == 2


def test_an_expired_answer_is_asked_again(intel: FakeIntel, dynamodb: Any) -> None:
    # GIVEN an answer cached a day and a second ago (DynamoDB may not have deleted it yet)
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    clock = Clock()
    provider = cached_virustotal(intel, dynamodb, clock)
    provider.lookup(ATTACKER, soon())
    clock.now += DAY + 1

    # WHEN it is looked up again
    again = provider.lookup(ATTACKER, soon())

    # THEN VirusTotal was asked again
    assert again.cached is False
    assert intel.count() == 2


def test_the_item_expires_through_the_table_ttl_attribute(intel: FakeIntel, dynamodb: Any) -> None:
    # GIVEN an answer was cached at a known time
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    clock = Clock()
    cached_virustotal(intel, dynamodb, clock).lookup(ATTACKER, soon())

    # WHEN the item is read back
    item = dynamodb.get_item(TableName=TABLE, Key={"key": {"S": f"virustotal#{ATTACKER}"}})["Item"]

    # THEN its expires_at (the TimeToLiveSpecification attribute in template.yaml) is a day later
    ttl = load_template(TEMPLATE).resources["EnrichmentCacheTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    assert int(item["expires_at"]["N"]) == int(clock.now) + DAY


def test_an_unusable_cache_costs_a_lookup_not_the_answer(intel: FakeIntel, aws: None) -> None:
    # GIVEN the cache table does not exist
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    provider = cached_virustotal(intel, boto3.client("dynamodb", region_name="us-east-1"))

    # WHEN the address is looked up
    result = provider.lookup(ATTACKER, soon())

    # THEN the provider still answered
    assert (result.status, result.verdict) == (LookupStatus.OK, "malicious")
