"""The real Sync Threat Feeds machine and handlers on the local engine, against feeds served from 127.0.0.1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from firebreak_local.engine import Engine, Execution
from tests.feed_server import Collection, FeedServer, feed_server
from tests.support import TEMPLATE
from tests.threat_feeds import (
    CSV,
    CSV_VALID,
    PLAINTEXT,
    PLAINTEXT_VALID,
    STIX_VALID,
    TAXII_VALID,
    stix_bundle,
    taxii_objects,
)

MACHINE = "SyncThreatFeedsStateMachine"
ALL_VALID = PLAINTEXT_VALID | CSV_VALID | STIX_VALID | TAXII_VALID


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def every_format(server: FeedServer) -> list[dict[str, Any]]:
    """One feed of each format, served by the test server."""
    server.collections["intel"] = Collection(taxii_objects(), page_size=2)
    return [
        {"name": "plain", "format": "plaintext", "url": server.serve("/plain.txt", PLAINTEXT)},
        {"name": "table", "format": "csv", "url": server.serve("/table.csv", CSV), "column": "ip_address"},
        {"name": "bundle", "format": "stix", "url": server.serve("/bundle.json", stix_bundle())},
        {"name": "intel", "format": "taxii", "url": server.api_root, "collection": "intel"},
    ]


def sync(engine: Engine, feeds: list[dict[str, Any]] | str) -> Execution:
    """Store the configuration in the stack's parameter and start the machine as its schedule would."""
    value = feeds if isinstance(feeds, str) else json.dumps({"feeds": feeds})
    parameter = engine.resources["FeedConfigParameter"].ref
    engine.client("ssm").put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)
    return engine.run_machine(MACHINE, {})


def feed_set(engine: Engine) -> set[str]:
    waf = engine.client("wafv2")
    addresses: set[str] = set()
    for logical_id in ("FeedIpv4Set", "FeedIpv6Set"):
        name, ipset_id, scope = engine.resources[logical_id].ref.split("|")
        addresses |= set(waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)["IPSet"]["Addresses"])
    return addresses


def reports(execution: Execution) -> dict[str, dict[str, Any]]:
    output = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    return {report["feed"]: report for report in output["feeds"]}


def test_every_format_ends_with_exactly_the_valid_indicators_in_the_feed_ipsets(
    engine: Engine, server: FeedServer
) -> None:
    # GIVEN plaintext, CSV, STIX and TAXII feeds with malformed lines, private ranges, a /8, host bits,
    # expired and revoked indicators, unsupported patterns and a three-page TAXII collection
    feeds = every_format(server)

    # WHEN the machine runs
    execution = sync(engine, feeds)

    # THEN the feed IPSets hold exactly the valid entries, the incident block lists are untouched,
    # and each feed's report counts what it added and refused, with reasons
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states == [
        "Load Feed Config",
        "For Each Feed",
        *["Sync Feed"] * 4,
        "Publish Threat Intel Set",
        "Did Any Feed Fail?",
        "Feed Sync Complete",
    ]
    assert feed_set(engine) == ALL_VALID
    assert engine.blocked_ips() == sorted(ALL_VALID)
    by_feed = reports(execution)
    assert {name: report["added"] for name, report in by_feed.items()} == {
        "plain": 3,
        "table": 2,
        "bundle": 4,
        "intel": 4,
    }
    plain = by_feed["plain"]["rejected_by_reason"]
    assert plain == {
        "not a globally routable address": 2,
        "overlaps the non-global range 192.168.0.0/16": 1,
        "/8 is broader than the /16 a feed may block": 1,
        "not an IP address or CIDR": 2,
        "host bits set: not a network address": 1,
        "more than one value on the line": 1,
    }
    bundle = by_feed["bundle"]["rejected_by_reason"]
    assert bundle["revoked"] == 2
    assert bundle["expired: valid_until has passed"] == 1
    assert "AND is not accepted; only observations joined by OR" in bundle
    assert "compares domain-name:value; only ipv4-addr:value and ipv6-addr:value are accepted" in bundle
    assert by_feed["table"]["rejected_by_reason"] == {"no ip_address value": 1, "special-purpose address": 1}
    assert by_feed["intel"]["rejected"] == 1
    taxii_pages = [path for path, _ in server.requests if "/collections/intel/objects/" in path]
    assert len(taxii_pages) == 3
    assert all(
        headers.get("Accept") == "application/taxii+json;version=2.1"
        for path, headers in server.requests
        if "/collections/" in path
    )


def test_second_sync_without_change_makes_no_update_call(engine: Engine, server: FeedServer) -> None:
    # GIVEN every format synced once
    feeds = every_format(server)
    assert sync(engine, feeds).status == "SUCCEEDED"

    # WHEN the same feeds sync again
    again = sync(engine, feeds)

    # THEN nothing is written: no UpdateIPSet, no table write, every entry counted unchanged
    assert again.status == "SUCCEEDED"
    assert "wafv2.UpdateIPSet" not in again.api_calls
    assert "dynamodb.BatchWriteItem" not in again.api_calls
    assert again.api_calls["wafv2.GetIPSet"] == 8
    assert {name: (r["added"], r["removed"]) for name, r in reports(again).items()} == dict.fromkeys(
        ("plain", "table", "bundle", "intel"), (0, 0)
    )
    assert sum(r["unchanged"] for r in reports(again).values()) == len(ALL_VALID)
    assert feed_set(engine) == ALL_VALID


@pytest.mark.parametrize(
    "breakage",
    ["server_error", "cut_halfway", "taxii_page_fails", "error_page"],
)
def test_failed_download_changes_nothing_and_alerts(engine: Engine, server: FeedServer, breakage: str) -> None:
    # GIVEN every format synced once
    feeds = every_format(server)
    assert sync(engine, feeds).status == "SUCCEEDED"
    engine.notifications()
    before = feed_set(engine)

    # WHEN one feed breaks: a 500, a body cut off halfway, a TAXII page that answers 500, or an HTML error page
    if breakage == "server_error":
        server.serve("/plain.txt", "oops", status=500)
    elif breakage == "cut_halfway":
        server.serve("/plain.txt", PLAINTEXT.replace("45.155.205.10\n", "45.155.205.10\n" * 40), truncate=True)
    elif breakage == "taxii_page_fails":
        server.collections["intel"].fail_at_offset = 2
    else:
        server.serve("/plain.txt", "<html><body>Service unavailable</body></html>")
    execution = sync(engine, feeds)

    # THEN the broken feed keeps every entry it had, the other feeds still sync, the execution fails, and the
    # responders are told which feed failed
    broken = "intel" if breakage == "taxii_page_fails" else "plain"
    assert execution.status == "FAILED"
    assert execution.states[-2:] == ["Notify Responders Of Feed Failures", "Feed Sync Failed"]
    assert feed_set(engine) == before
    by_feed = reports(execution)
    assert by_feed[broken]["status"] == "FAILED"
    expected_error = "FeedParseFailed" if breakage == "error_page" else "FeedFetchFailed"
    assert by_feed[broken]["error"] == expected_error
    assert [r["status"] for name, r in by_feed.items() if name != broken] == ["SYNCED"] * 3
    (alert,) = engine.notifications()
    assert alert["subject"] == "Firebreak feeds: 1 of 4 failed, their addresses kept"
    assert f"{broken}: {expected_error}" in alert["message"]


def test_entry_dropped_by_one_feed_stays_while_another_feed_lists_it(engine: Engine, server: FeedServer) -> None:
    # GIVEN two feeds that both list 45.155.205.10
    first = server.serve("/a.txt", "45.155.205.10\n185.220.101.0/24\n")
    second = server.serve("/b.txt", "45.155.205.10\n")
    feeds = [
        {"name": "a", "format": "plaintext", "url": first},
        {"name": "b", "format": "plaintext", "url": second},
    ]
    assert sync(engine, feeds).status == "SUCCEEDED"

    # WHEN feed a drops it
    server.serve("/a.txt", "185.220.101.0/24\n")
    dropped_once = sync(engine, feeds)

    # THEN it stays, because feed b still lists it; when b drops it too, it goes
    assert reports(dropped_once)["a"]["removed"] == 1
    assert feed_set(engine) == {"45.155.205.10/32", "185.220.101.0/24"}
    server.serve("/b.txt", "185.220.101.0/24\n")
    assert sync(engine, feeds).status == "SUCCEEDED"
    assert feed_set(engine) == {"185.220.101.0/24"}


def test_feed_removed_from_the_configuration_loses_its_entries(engine: Engine, server: FeedServer) -> None:
    # GIVEN two synced feeds
    feeds = [
        {"name": "a", "format": "plaintext", "url": server.serve("/a.txt", "45.155.205.10\n")},
        {"name": "b", "format": "plaintext", "url": server.serve("/b.txt", "185.220.101.0/24\n")},
    ]
    assert sync(engine, feeds).status == "SUCCEEDED"

    # WHEN feed b is taken out of the configuration
    execution = sync(engine, feeds[:1])

    # THEN its entries leave the IPSets at that sync
    assert execution.status == "SUCCEEDED"
    assert feed_set(engine) == {"45.155.205.10/32"}


def test_invalid_configuration_alerts_and_changes_nothing(engine: Engine, server: FeedServer) -> None:
    # GIVEN synced feeds
    feeds = every_format(server)
    assert sync(engine, feeds).status == "SUCCEEDED"
    engine.notifications()

    # WHEN the configuration is replaced by one a schema check refuses (a csv feed without its column)
    execution = sync(engine, [{"name": "broken", "format": "csv", "url": server.url("/table.csv")}])

    # THEN no feed is synced, the sets stay, and the responders hear why
    assert execution.status == "FAILED"
    assert execution.states == ["Load Feed Config", "Notify Responders Of Failure", "Feed Sync Failed"]
    assert feed_set(engine) == ALL_VALID
    (alert,) = engine.notifications()
    assert "FeedConfigInvalid" in alert["message"]


def test_dry_run_plans_the_sync_and_writes_nothing(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the stack in dry-run mode (the engine writes the template's environment into this process)
    for key, value in os.environ.items():
        monkeypatch.setenv(key, value)
    with Engine(TEMPLATE, {"ResponseMode": "dry-run"}) as engine:
        # WHEN the feeds sync
        execution = sync(engine, every_format(server))

        # THEN each feed reports what it would add, and the IPSets stay empty
        assert execution.status == "SUCCEEDED"
        assert {r["status"] for r in reports(execution).values()} == {"PLANNED"}
        assert sum(r["added"] for r in reports(execution).values()) == len(ALL_VALID)
        assert feed_set(engine) == set()


def test_threat_intel_set_that_cannot_be_published_is_alerted_like_a_failed_feed(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack told to publish to a GuardDuty detector; moto has no ThreatIntelSet API, so GuardDuty refuses
    for key, value in os.environ.items():
        monkeypatch.setenv(key, value)
    with Engine(TEMPLATE, {"ThreatIntelSetDetectorId": "12abc34d567e8fa901bc2d34e56789f0"}) as engine:
        # WHEN the feeds sync
        execution = sync(
            engine, [{"name": "a", "format": "plaintext", "url": server.serve("/a.txt", "45.155.205.10\n")}]
        )

        # THEN the feed still synced, and the publication failure fails the run and is told, never hidden
        assert execution.status == "FAILED"
        assert reports(execution)["a"]["status"] == "SYNCED"
        assert feed_set(engine) == {"45.155.205.10/32"}
        (alert,) = engine.notifications()
        assert alert["subject"] == "Firebreak feeds: 0 of 1 failed, ThreatIntelSet not published"
        assert "GuardDuty ThreatIntelSet: ClientError" in alert["message"]
