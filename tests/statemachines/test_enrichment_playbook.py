"""Enrichment inside the real block-ip playbook on the local engine: bounded, switchable, and never in the way."""

from __future__ import annotations

import copy
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from firebreak.intel import remote_config
from firebreak_local.engine import Engine, Execution
from tests.fake_intel import FakeIntel, documented, fake_intel
from tests.support import TEMPLATE, load_event

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

ATTACKER = "45.155.205.233"
OTHER_ATTACKER = "194.26.29.102"
DEADLINE_SECONDS = 1
SHARING = {"ShareAddressesWithThirdParties": "true", "EnrichmentDeadlineSeconds": str(DEADLINE_SECONDS)}


@pytest.fixture(autouse=True)
def fresh_config() -> Iterator[None]:
    # Engines share one process and the SSM names are the same in each, so no list may outlive its test.
    remote_config.forget()
    yield
    remote_config.forget()


@pytest.fixture
def intel() -> Iterator[FakeIntel]:
    with fake_intel() as server:
        server.on("/check", body=documented("abuseipdb_check"))
        server.hang("/ip_addresses/")
        yield server


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    def resolve(address: str) -> tuple[str, list[str], list[str]]:
        asked.append(address)
        raise socket.herror(1, "Unknown host")

    monkeypatch.setattr(socket, "gethostbyaddr", resolve)
    return asked


@pytest.fixture
def sharing_engine() -> Iterator[Engine]:
    saved = dict(os.environ)
    with Engine(TEMPLATE, SHARING) as running:
        yield running
    os.environ.clear()
    os.environ.update(saved)


def give_keys(engine: Engine, intel: FakeIntel) -> None:
    """AbuseIPDB answers as documented; VirusTotal accepts the connection and never answers."""
    keys = {name: {"key": "test-key", "base_url": intel.base_url} for name in ("abuseipdb", "virustotal")}
    secret_arn = engine.resources["ProviderKeysSecret"].ref
    engine.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=json.dumps(keys))


def set_list(engine: Engine, logical_id: str, value: str) -> None:
    name = engine.resources[logical_id].ref
    engine.client("ssm").put_parameter(Name=name, Type="StringList", Value=value, Overwrite=True)


def run_brute_force(engine: Engine, finding_id: str | None = None, attacker: str = ATTACKER) -> Execution:
    event = copy.deepcopy(load_event("eventbridge/guardduty_ssh_brute_force"))
    if finding_id:
        event["detail"]["id"] = finding_id
        event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"] = attacker
    rule = engine.matching_rule(event)
    assert rule is not None
    return engine.start(rule, event)


def actions(execution: Execution, action_type: str) -> list[dict[str, Any]]:
    assert isinstance(execution.output, dict)
    return [action for action in execution.output["actions"] if action["type"] == action_type]


def test_hanging_provider_leaves_containment_and_its_time_unchanged(
    sharing_engine: Engine, intel: FakeIntel, resolved: list[str]
) -> None:
    # GIVEN addresses may be shared and AbuseIPDB answers; a first brute force runs while VirusTotal is over quota
    give_keys(sharing_engine, intel)
    intel.on("/ip_addresses/", status=429, body=documented("virustotal_quota_exceeded"))
    baseline = run_brute_force(sharing_engine)

    # WHEN a second brute force, from another attacker, runs while VirusTotal hangs past the 1 s deadline
    intel.hang("/ip_addresses/")
    hanging = run_brute_force(sharing_engine, "7d2e9c41a0b84f6e9d3c2b1a0f9e8d7c", OTHER_ATTACKER)

    # THEN both attackers are blocked and both incidents CONTAINED: the outcome is the same
    for execution, attacker in ((baseline, ATTACKER), (hanging, OTHER_ATTACKER)):
        assert execution.status == "SUCCEEDED"
        assert execution.output["status"] == "CONTAINED"  # type: ignore[index]
        assert [(a["target"], a["outcome"]) for a in actions(execution, "block_ip")] == [(f"{attacker}/32", "applied")]
    assert sharing_engine.blocked_ips() == sorted([f"{ATTACKER}/32", f"{OTHER_ATTACKER}/32"])
    # AND the hang cost at most the enrichment deadline (plus scheduling noise), not the provider's own time
    extra_ms = hanging.duration_ms - baseline.duration_ms
    assert extra_ms < DEADLINE_SECONDS * 1000 + 1500, f"hang added {extra_ms:.0f} ms"
    # AND the evidence says VirusTotal timed out while AbuseIPDB and reverse DNS answered
    [enrich] = actions(hanging, "enrich_ip")
    sources = enrich["after"]["sources"]
    assert sources["virustotal"]["status"] == "timeout"
    assert (sources["abuseipdb"]["status"], sources["abuseipdb"]["verdict"]) == ("ok", "malicious")
    assert sources["reverse_dns"]["status"] == "not_found"
    assert enrich["reason"].startswith("malicious (100): ")
    assert "virustotal: timed out" in enrich["reason"]
    assert resolved == [ATTACKER, OTHER_ATTACKER]


def test_evidence_reaches_the_incident_record_and_the_notification(
    sharing_engine: Engine, intel: FakeIntel, resolved: list[str]
) -> None:
    # GIVEN addresses may be shared and AbuseIPDB knows the attacker
    give_keys(sharing_engine, intel)

    # WHEN the brute force runs
    execution = run_brute_force(sharing_engine)

    # THEN the record and both parts of the message carry the verdict and the per-source evidence
    incident_id = execution.output["incident_id"]  # type: ignore[index]
    item = sharing_engine.record(incident_id)
    assert item is not None
    [recorded] = [a for a in item["actions"] if a["type"] == "enrich_ip"]
    assert recorded["after"]["sources"]["abuseipdb"]["details"]["total_reports"] == 1372
    [notification] = sharing_engine.notifications()
    document = json.loads(notification["message"])
    [notified] = [a for a in document["actions"] if a["type"] == "enrich_ip"]
    assert notified["after"]["sources"]["virustotal"]["status"] == "timeout"
    assert "AbuseIPDB confidence 100/100, 1372 reports" in notified["reason"]


def test_with_sharing_off_no_request_leaves_even_with_keys(
    engine: Engine, intel: FakeIntel, resolved: list[str]
) -> None:
    # GIVEN the default stack (ShareAddressesWithThirdParties false) with provider keys in the secret
    give_keys(engine, intel)

    # WHEN the brute force runs
    execution = run_brute_force(engine)

    # THEN the provider server saw nothing, no PTR was asked, and the attacker was still blocked
    assert intel.count() == 0
    assert resolved == []
    assert execution.output["status"] == "CONTAINED"  # type: ignore[index]
    [enrich] = actions(execution, "enrich_ip")
    assert "ShareAddressesWithThirdParties is false" in enrich["after"]["notes"][-1]


def test_deny_list_in_ssm_forces_a_malicious_verdict(engine: Engine) -> None:
    # GIVEN the attacker's range was added to the deny list in SSM (no deploy)
    set_list(engine, "DenyListParameter", "45.155.205.0/24")

    # WHEN the brute force runs
    execution = run_brute_force(engine)

    # THEN the verdict is malicious on the list's word and the attacker is blocked
    [enrich] = actions(execution, "enrich_ip")
    assert enrich["reason"].startswith("malicious (100): deny-listed by 45.155.205.0/24")
    assert engine.blocked_ips() == [f"{ATTACKER}/32"]


def test_allow_list_in_ssm_stops_the_block(engine: Engine) -> None:
    # GIVEN the attacker's range was added to the allow list in SSM (not to the AllowListCidrs parameter)
    set_list(engine, "AllowListParameter", "45.155.205.0/24,203.0.113.0/24")

    # WHEN the brute force runs
    execution = run_brute_force(engine)

    # THEN enrichment calls it benign, nothing is blocked, and the incident claims no containment
    [enrich] = actions(execution, "enrich_ip")
    assert enrich["reason"].startswith("benign (0): allow-listed by 45.155.205.0/24")
    assert [(a["outcome"], a["reason"]) for a in actions(execution, "block_ip")] == [
        ("skipped", enrich["reason"].removeprefix("benign (0): "))
    ]
    assert engine.blocked_ips() == []
    assert execution.output["status"] == "NOTIFIED"  # type: ignore[index]
