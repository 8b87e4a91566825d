"""Block Addresses handler on moto: {incident_id, mode, verdicts} -> block_ip actions, one per address.

The blocklist table is the truth the IPSets are brought up to (firebreak.blocking.block); these tests see both."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from firebreak.core import aws as firebreak_aws
from firebreak.core.waf import IPSET_CAPACITY, IpSetRef
from firebreak_local.runtime import LambdaContext
from functions.block_ip.app import lambda_handler

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:firebreak-block-ip:test"
V4, V6 = "45.155.205.233", "2a0e:97c0:3e3:2a2::1"
SETTINGS_ENV = (
    "RESPONSE_MODE",
    "BLOCK_IP_MODE",
    "ALLOW_LIST_CIDRS",
    "MAX_ADDRESSES_PER_INCIDENT",
    "BLOCK_TTL_HOURS",
    "IPSET_HEADROOM",
    "NACL_BLOCKING",
    "BLOCKED_CLOUDFRONT_IPV4_SET_ARN",
    "BLOCKED_CLOUDFRONT_IPV6_SET_ARN",
)
BLOCKLIST_TABLE = "firebreak-blocklist"
PLANNED = "would record without expiry in the block list (UpdateItem) and add to WAF IPSet"


class IpSets:
    """The two regional IPSets of the stack, created in moto, and what they hold."""

    def __init__(self, waf: Any, v4_addresses: list[str] | None = None) -> None:
        self.waf = waf
        self.v4 = self._create("firebreak-blocked-ipv4", "IPV4", v4_addresses or [])
        self.v6 = self._create("firebreak-blocked-ipv6", "IPV6", [])

    def _create(self, name: str, version: str, addresses: list[str]) -> IpSetRef:
        summary = self.waf.create_ip_set(Name=name, Scope="REGIONAL", IPAddressVersion=version, Addresses=addresses)
        return IpSetRef.from_arn(summary["Summary"]["ARN"])

    def addresses(self, ipset: IpSetRef) -> list[str]:
        found: list[str] = self.waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)["IPSet"]["Addresses"]
        return found


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    # Clients made inside one test's mock_aws must not serve the next test (or a later engine in this process).
    firebreak_aws._client.cache_clear()
    yield
    firebreak_aws._client.cache_clear()


def create_blocklist(monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=BLOCKLIST_TABLE,
        AttributeDefinitions=[{"AttributeName": "cidr", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "cidr", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("BLOCKLIST_TABLE_NAME", BLOCKLIST_TABLE)
    # The handler publishes the block list's usage (the alarm's metric); these tests read the actions instead.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


@pytest.fixture
def ipsets(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[IpSets]:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    firebreak_aws._client.cache_clear()
    create_blocklist(monkeypatch)
    sets = IpSets(boto3.client("wafv2", region_name="us-east-1"))
    monkeypatch.setenv("BLOCKED_IPV4_SET_ARN", sets.v4.arn)
    monkeypatch.setenv("BLOCKED_IPV6_SET_ARN", sets.v6.arn)
    yield sets
    firebreak_aws._client.cache_clear()


def verdict(address: str, kind: str = "suspicious", *evidence: str) -> dict[str, Any]:
    return {"address": address, "verdict": kind, "score": 60, "evidence": list(evidence)}


def invoke(context: LambdaContext, verdicts: list[dict[str, Any]], mode: str = "enforce") -> list[dict[str, Any]]:
    """The block_ip actions, through JSON as Lambda returns them."""
    event = {"input": {"incident_id": "fb-1", "mode": mode, "verdicts": verdicts}, "executionId": EXECUTION_ID}
    actions: list[dict[str, Any]] = json.loads(json.dumps(lambda_handler(event, context)))["actions"]
    return actions


def outcomes(actions: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["target"], a["outcome"], a["reason"]) for a in actions]


def test_enforce_adds_each_address_to_the_set_of_its_family(ipsets: IpSets, lambda_context: LambdaContext) -> None:
    # GIVEN a suspicious IPv4 and IPv6 attacker and two empty IPSets
    # WHEN they are blocked in enforce mode
    actions = invoke(lambda_context, [verdict(V4), verdict(V6)])

    # THEN each lands, as a host CIDR, in the set of its family only, and is reported applied with before and after
    assert ipsets.addresses(ipsets.v4) == [f"{V4}/32"]
    assert ipsets.addresses(ipsets.v6) == [f"{V6}/128"]
    assert [{k: v for k, v in a.items() if k != "at"} for a in actions] == [
        {
            "type": "block_ip",
            "target": f"{V4}/32",
            "outcome": "applied",
            "reason": "blocked in WAF IPSet firebreak-blocked-ipv4 without expiry",
            "before": {"ipset": ipsets.v4.arn, "ipsets": [ipsets.v4.arn], "present": False},
            "after": {"ipset": ipsets.v4.arn, "ipsets": [ipsets.v4.arn], "present": True, "expires_at": None},
        },
        {
            "type": "block_ip",
            "target": f"{V6}/128",
            "outcome": "applied",
            "reason": "blocked in WAF IPSet firebreak-blocked-ipv6 without expiry",
            "before": {"ipset": ipsets.v6.arn, "ipsets": [ipsets.v6.arn], "present": False},
            "after": {"ipset": ipsets.v6.arn, "ipsets": [ipsets.v6.arn], "present": True, "expires_at": None},
        },
    ]


def test_blocking_again_reports_already_applied_and_adds_nothing(ipsets: IpSets, lambda_context: LambdaContext) -> None:
    # GIVEN both attackers already blocked by an earlier run (for example a redelivered finding)
    invoke(lambda_context, [verdict(V4), verdict(V6)])

    # WHEN they are blocked again
    actions = invoke(lambda_context, [verdict(V4), verdict(V6)])

    # THEN the run reports already_applied, and each set still holds each address exactly once
    assert [(target, outcome) for target, outcome, _ in outcomes(actions)] == [
        (f"{V4}/32", "already_applied"),
        (f"{V6}/128", "already_applied"),
    ]
    assert all(reason.endswith("; block extended, now without expiry") for _, _, reason in outcomes(actions))
    assert ipsets.addresses(ipsets.v4) == [f"{V4}/32"]
    assert ipsets.addresses(ipsets.v6) == [f"{V6}/128"]


def test_dry_run_plans_and_changes_nothing(ipsets: IpSets, lambda_context: LambdaContext) -> None:
    # GIVEN two attackers and a dry-run incident
    # WHEN they are blocked
    actions = invoke(lambda_context, [verdict(V4), verdict(V6)], mode="dry-run")

    # THEN each is planned with what would be called, and both sets stay empty
    assert outcomes(actions) == [
        (f"{V4}/32", "planned", f"{PLANNED} firebreak-blocked-ipv4 (UpdateIPSet)"),
        (f"{V6}/128", "planned", f"{PLANNED} firebreak-blocked-ipv6 (UpdateIPSet)"),
    ]
    assert ipsets.addresses(ipsets.v4) == []
    assert ipsets.addresses(ipsets.v6) == []


def test_benign_private_and_allow_listed_addresses_are_skipped_with_reasons(
    ipsets: IpSets, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a benign verdict with evidence, a benign one without, a private address judged suspicious,
    # an allow-listed address judged malicious, and one real attacker
    monkeypatch.setenv("ALLOW_LIST_CIDRS", "193.233.20.0/24")
    verdicts = [
        verdict("8.8.8.8", "benign", "allow-listed by 8.8.8.0/24", "Google LLC, AS15169"),
        verdict("9.9.9.9", "benign"),
        verdict("10.0.0.9", "suspicious"),
        verdict("193.233.20.15", "malicious"),
        verdict(V4),
    ]

    # WHEN they are blocked
    actions = invoke(lambda_context, verdicts)

    # THEN only the attacker is blocked; every other address is skipped, saying why
    assert outcomes(actions) == [
        ("8.8.8.8", "skipped", "allow-listed by 8.8.8.0/24; Google LLC, AS15169"),
        ("9.9.9.9", "skipped", "verdict benign"),
        ("10.0.0.9", "skipped", "not a globally routable address"),
        ("193.233.20.15", "skipped", "allow-listed by 193.233.20.0/24"),
        (f"{V4}/32", "applied", "blocked in WAF IPSet firebreak-blocked-ipv4 without expiry"),
    ]
    assert ipsets.addresses(ipsets.v4) == [f"{V4}/32"]


def test_max_addresses_per_incident_caps_what_is_blocked(
    ipsets: IpSets, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a cap of one address per incident and three attackers
    monkeypatch.setenv("MAX_ADDRESSES_PER_INCIDENT", "1")

    # WHEN they are blocked
    actions = invoke(lambda_context, [verdict(V4), verdict(V6), verdict("194.26.29.102")])

    # THEN the first is blocked and the others are skipped for the cap, in one line (a port probe has thousands)
    assert outcomes(actions) == [
        (f"2 more addresses ({V6}, 194.26.29.102)", "skipped", "over the cap of 1 addresses per incident"),
        (f"{V4}/32", "applied", "blocked in WAF IPSet firebreak-blocked-ipv4 without expiry"),
    ]
    assert ipsets.addresses(ipsets.v4) == [f"{V4}/32"]
    assert ipsets.addresses(ipsets.v6) == []


def test_no_verdicts_blocks_nothing(ipsets: IpSets, lambda_context: LambdaContext) -> None:
    # GIVEN an incident without remote addresses (the state machine then passes no verdicts)
    # WHEN Block Addresses runs
    event = {"input": {"incident_id": "fb-1", "mode": "enforce"}, "executionId": EXECUTION_ID}

    # THEN it reports no actions and touches no set
    assert lambda_handler(event, lambda_context) == {"actions": [], "nacl_addresses": []}
    assert ipsets.addresses(ipsets.v4) == []


def test_a_full_ipset_fails_its_addresses_and_the_other_family_still_lands(
    aws: None, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an IPv4 set already at WAF's capacity and an empty IPv6 set
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    firebreak_aws._client.cache_clear()
    create_blocklist(monkeypatch)
    start = int(ipaddress.IPv4Address("11.0.0.0"))
    full = [f"{ipaddress.IPv4Address(start + i)}/32" for i in range(IPSET_CAPACITY)]
    sets = IpSets(boto3.client("wafv2", region_name="us-east-1"), v4_addresses=full)
    monkeypatch.setenv("BLOCKED_IPV4_SET_ARN", sets.v4.arn)
    monkeypatch.setenv("BLOCKED_IPV6_SET_ARN", sets.v6.arn)

    # WHEN an IPv4 and an IPv6 attacker are blocked
    actions = invoke(lambda_context, [verdict(V4), verdict(V6)])

    # THEN the IPv4 one is reported failed with the reason (not raised), and the IPv6 one is still applied
    assert outcomes(actions) == [
        (
            f"{V4}/32",
            "failed",
            f"IPSet firebreak-blocked-ipv4 would hold 10001 addresses, over its limit of {IPSET_CAPACITY}",
        ),
        (f"{V6}/128", "applied", "blocked in WAF IPSet firebreak-blocked-ipv6 without expiry"),
    ]
    assert len(sets.addresses(sets.v4)) == IPSET_CAPACITY
    assert sets.addresses(sets.v6) == [f"{V6}/128"]


@pytest.mark.parametrize("operation", ["get_ip_set", "update_ip_set"])
def test_waf_access_denied_propagates_for_the_state_machine_to_handle(
    ipsets: IpSets, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    # GIVEN WAF refusing the function's role on reading or on writing the IPSet
    client = boto3.client("wafv2", region_name="us-east-1")
    stubber = Stubber(client)
    if operation == "update_ip_set":
        body = {"Name": ipsets.v4.name, "Id": ipsets.v4.id, "ARN": ipsets.v4.arn, "IPAddressVersion": "IPV4"}
        # Read before recording (was it a person's entry?), then read under the lock and write.
        stubber.add_response("get_ip_set", {"IPSet": {**body, "Addresses": []}, "LockToken": "t1"})
        stubber.add_response("get_ip_set", {"IPSet": {**body, "Addresses": []}, "LockToken": "t1"})
    stubber.add_client_error(operation, service_error_code="AccessDeniedException", http_status_code=403)
    real_client = firebreak_aws.client
    monkeypatch.setattr(
        firebreak_aws,
        "client",
        lambda service, region=None, role_arn=None: client if service == "wafv2" else real_client(service, region),
    )

    # WHEN an attacker is blocked
    # THEN the AWS error escapes the handler unchanged (ASL Retry/Catch see it), not turned into a result
    with stubber, pytest.raises(ClientError) as raised:
        invoke(lambda_context, [verdict(V4)])
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.operation_name == {"get_ip_set": "GetIPSet", "update_ip_set": "UpdateIPSet"}[operation]
    stubber.assert_no_pending_responses()
    assert ipsets.addresses(ipsets.v4) == []
