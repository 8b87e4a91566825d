"""Enrich Addresses handler: {incident} -> a verdict and an enrich_ip action for every remote address."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firebreak.findings import normalise
from firebreak.models import Verdict, actions_from
from firebreak_local.runtime import LambdaContext
from functions.enrich_ip.app import lambda_handler
from tests.support import load_event

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:firebreak-block-ip:test"
SETTINGS_ENV = ("RESPONSE_MODE", "BLOCK_IP_MODE", "ALLOW_LIST_CIDRS", "MAX_ADDRESSES_PER_INCIDENT")


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def invoke(finding: str, context: LambdaContext) -> dict[str, Any]:
    """What Block Ip's first state sends: {incident_id, incident, mode}; the result through JSON, as Lambda returns."""
    incident = normalise(load_event(f"eventbridge/{finding}"))
    event = {"input": {"incident_id": "fb-1", "incident": incident.to_dict(), "mode": "enforce"}}
    result: dict[str, Any] = json.loads(json.dumps(lambda_handler({**event, "executionId": EXECUTION_ID}, context)))
    return result


def verdicts(result: dict[str, Any]) -> dict[str, str]:
    return {v["address"]: v["verdict"] for v in result["verdicts"]}


def test_port_probe_gets_a_verdict_per_address(lambda_context: LambdaContext) -> None:
    # GIVEN a port probe from a public IPv4, a private and a public IPv6 address
    # WHEN the addresses are enriched
    result = invoke("guardduty_port_probe_high", lambda_context)

    # THEN every address has a verdict, in finding order: the public ones suspicious, the private one benign
    assert [Verdict.from_dict(v) for v in result["verdicts"]] == [
        Verdict(
            "194.26.29.102",
            "suspicious",
            60,
            ("finding Recon:EC2/PortProbeUnprotectedPort", "Example Cloud VPS LLC, AS49505, Russia"),
        ),
        Verdict("10.0.0.9", "benign", 0, ("not a globally routable address",)),
        Verdict(
            "2a0e:97c0:3e3:2a2::1",
            "suspicious",
            60,
            ("finding Recon:EC2/PortProbeUnprotectedPort", "Example Transit Networks BV, AS209588, Netherlands"),
        ),
    ]


def test_each_address_gets_an_applied_enrich_action_naming_its_verdict(lambda_context: LambdaContext) -> None:
    # GIVEN the same port probe
    # WHEN the addresses are enriched
    actions = actions_from(invoke("guardduty_port_probe_high", lambda_context)["actions"])

    # THEN there is one enrich_ip action per address, whose reason carries verdict, score and evidence
    assert [(a.type.value, a.target, a.outcome.value, a.reason) for a in actions] == [
        (
            "enrich_ip",
            "194.26.29.102",
            "applied",
            "suspicious (60): finding Recon:EC2/PortProbeUnprotectedPort; Example Cloud VPS LLC, AS49505, Russia",
        ),
        ("enrich_ip", "10.0.0.9", "applied", "benign (0): not a globally routable address"),
        (
            "enrich_ip",
            "2a0e:97c0:3e3:2a2::1",
            "applied",
            "suspicious (60): finding Recon:EC2/PortProbeUnprotectedPort; "
            "Example Transit Networks BV, AS209588, Netherlands",
        ),
    ]


def test_allow_list_from_the_environment_makes_an_address_benign(
    lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the IPv6 prober's network on the stack's allow list
    monkeypatch.setenv("ALLOW_LIST_CIDRS", "203.0.113.0/24, 2a0e:97c0::/32")

    # WHEN the port probe is enriched
    result = invoke("guardduty_port_probe_high", lambda_context)

    # THEN that address is benign, saying why; the other public address is still suspicious
    assert verdicts(result) == {"194.26.29.102": "suspicious", "10.0.0.9": "benign", "2a0e:97c0:3e3:2a2::1": "benign"}
    assert result["verdicts"][2]["evidence"][0] == "allow-listed by 2a0e:97c0::/32"


@pytest.mark.parametrize(
    ("finding", "expected"),
    [
        pytest.param("guardduty_c2_outbound", {"193.233.20.15": "malicious"}, id="c2-malicious"),
        pytest.param("guardduty_ssh_brute_force", {"45.155.205.233": "suspicious"}, id="brute-force-suspicious"),
        pytest.param("guardduty_root_credential_usage", {"91.92.250.41": "unknown"}, id="root-usage-unknown"),
        pytest.param("guardduty_crypto_mining", {}, id="no-remote-address"),
    ],
)
def test_verdict_follows_the_finding_type(
    lambda_context: LambdaContext, finding: str, expected: dict[str, str]
) -> None:
    # GIVEN a finding of a given type
    # WHEN its addresses are enriched
    result = invoke(finding, lambda_context)

    # THEN each gets the verdict that type supports, and there are as many actions as verdicts
    assert verdicts(result) == expected
    assert [a["target"] for a in result["actions"]] == list(expected)
