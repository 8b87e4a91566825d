"""Enrich Addresses handler: the third-party switch, the deadline and what the action carries."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from firebreak.intel import remote_config
from firebreak.intel.enrichment import WITHHELD
from firebreak.triage.findings import normalise
from firebreak_local.runtime import LambdaContext
from functions.enrich_ip import app
from tests.fake_intel import FakeIntel, documented, fake_intel
from tests.support import load_event

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

KEY = "vt-key-never-in-output-91c2"
ATTACKER = "45.155.205.233"


@pytest.fixture
def intel() -> Iterator[FakeIntel]:
    with fake_intel() as server:
        yield server


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Reverse DNS answered in-process: the test records what would have been resolved, and nothing leaves."""
    asked: list[str] = []

    def resolve(address: str) -> tuple[str, list[str], list[str]]:
        asked.append(address)
        return ("scanner.example.net", [], [address])

    monkeypatch.setattr(socket, "gethostbyaddr", resolve)
    return asked


@pytest.fixture
def stack(aws: None, intel: FakeIntel, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The enrichment resources of the stack on moto, every provider keyed and pointed at the local server."""
    remote_config.forget()
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/firebreak/allow-list", Type="StringList", Value="none")
    ssm.put_parameter(Name="/firebreak/deny-list", Type="StringList", Value="none")
    keys = {name: {"key": KEY, "base_url": intel.base_url} for name in ("abuseipdb", "greynoise", "virustotal", "otx")}
    secret = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secret.create_secret(Name="firebreak/provider-keys", SecretString=json.dumps(keys))["ARN"]
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="cache",
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    env = {
        "ALLOW_LIST_PARAMETER": "/firebreak/allow-list",
        "DENY_LIST_PARAMETER": "/firebreak/deny-list",
        "PROVIDER_KEYS_SECRET_ARN": arn,
        "ENRICHMENT_CACHE_TABLE_NAME": "cache",
        "SHARE_ADDRESSES_WITH_THIRD_PARTIES": "false",
        # Generous: these tests are about what is asked, not the deadline, and must not time out on a loaded machine.
        "ENRICHMENT_DEADLINE_SECONDS": "10",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    intel.on("/check", body=documented("abuseipdb_check"))
    intel.on("/v3/community/", body=documented("greynoise_community_malicious"))
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    intel.on("/indicators/", body=documented("otx_general"))
    yield env
    remote_config.forget()


def invoke(lambda_context: LambdaContext) -> dict[str, Any]:
    incident = normalise(load_event("eventbridge/guardduty_ssh_brute_force"))
    event = {"input": {"incident_id": "fb-1", "incident": incident.to_dict(), "mode": "enforce"}, "executionId": "x"}
    result: dict[str, Any] = app.lambda_handler(event, lambda_context)
    return result


def test_switch_off_sends_no_address_anywhere(
    stack: dict[str, str], intel: FakeIntel, resolved: list[str], lambda_context: LambdaContext
) -> None:
    # GIVEN every provider has a key, but ShareAddressesWithThirdParties is false (the default)
    # WHEN the brute force is enriched
    result = invoke(lambda_context)

    # THEN no request reached any provider, no PTR was asked, and the evidence says why
    assert intel.count() == 0
    assert resolved == []
    [action] = result["actions"]
    assert action["after"]["notes"] == [WITHHELD]
    assert set(action["after"]["sources"]) == {"guards", "finding"}
    assert result["verdicts"][0]["verdict"] == "suspicious"


def test_switch_on_asks_every_keyed_provider_and_reverse_dns(
    stack: dict[str, str],
    intel: FakeIntel,
    resolved: list[str],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN sharing is switched on
    monkeypatch.setenv("SHARE_ADDRESSES_WITH_THIRD_PARTIES", "true")

    # WHEN the brute force is enriched
    result = invoke(lambda_context)

    # THEN each provider was asked once, the PTR too, and the verdict and evidence show it
    assert intel.count() == 4
    assert resolved == [ATTACKER]
    [action] = result["actions"]
    assert action["type"] == "enrich_ip"
    assert action["reason"].startswith("malicious (100): finding UnauthorizedAccess:EC2/SSHBruteForce")
    assert "rDNS scanner.example.net" in action["reason"]
    assert {name: source["status"] for name, source in action["after"]["sources"].items()} == {
        "guards": "ok",
        "finding": "ok",
        "reverse_dns": "ok",
        "abuseipdb": "ok",
        "greynoise": "ok",
        "virustotal": "ok",
        "otx": "ok",
    }
    [verdict] = result["verdicts"]
    assert (verdict["address"], verdict["verdict"], verdict["score"]) == (ATTACKER, "malicious", 100)


def test_no_key_ever_appears_in_the_output(
    stack: dict[str, str],
    intel: FakeIntel,
    resolved: list[str],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN sharing is on and one provider answers garbage
    monkeypatch.setenv("SHARE_ADDRESSES_WITH_THIRD_PARTIES", "true")
    intel.on("/indicators/", raw=b"<html>oops</html>")

    # WHEN the brute force is enriched
    # THEN the key is nowhere in what the step returns
    assert KEY not in json.dumps(invoke(lambda_context))


def test_a_hanging_provider_is_recorded_and_the_step_returns_by_the_deadline(
    stack: dict[str, str],
    intel: FakeIntel,
    resolved: list[str],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN sharing is on and VirusTotal hangs, with a 2 s deadline
    monkeypatch.setenv("SHARE_ADDRESSES_WITH_THIRD_PARTIES", "true")
    monkeypatch.setenv("ENRICHMENT_DEADLINE_SECONDS", "2")
    intel.hang("/ip_addresses/")
    started = time.monotonic()

    # WHEN the brute force is enriched
    result = invoke(lambda_context)

    # THEN the step returned on time, VirusTotal timed out and the others still count
    assert time.monotonic() - started < 4.0
    [action] = result["actions"]
    assert action["after"]["sources"]["virustotal"]["status"] == "timeout"
    assert "virustotal: timed out" in action["reason"]
    assert result["verdicts"][0]["verdict"] == "malicious"
