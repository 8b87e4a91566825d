"""The safety guards of the block step, each refusing with a reason a responder can act on."""

from __future__ import annotations

import ipaddress

import boto3
import pytest

from firebreak.blocking.block import choose, usage_percent, within_headroom
from firebreak.core.account import own_public_addresses
from firebreak.core.addresses import partition, refusal_reason
from firebreak.core.models import Mode, Outcome, Playbook, Verdict
from firebreak.core.settings import Settings, parse_rule_range


def settings(**changes: object) -> Settings:
    base = Settings(
        incident_table="incidents",
        responder_topic_arn="arn:aws:sns:us-east-1:123456789012:responders",
        blocked_ipv4_set_arn="arn:aws:wafv2:us-east-1:123456789012:regional/ipset/blocked-ipv4/1",
        blocked_ipv6_set_arn="arn:aws:wafv2:us-east-1:123456789012:regional/ipset/blocked-ipv6/2",
        response_mode=Mode.ENFORCE,
        playbook_modes=((Playbook.BLOCK_IP, Mode.ENFORCE),),
        allow_list=(ipaddress.ip_network("45.155.205.0/24"),),
        max_addresses_per_incident=50,
        ipset_headroom=1000,
    )
    return Settings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.9", "not a globally routable address"),
        ("100.64.1.1", "not a globally routable address"),
        ("198.51.100.7", "not a globally routable address"),
        ("127.0.0.1", "special-purpose address"),
        ("fe80::1", "special-purpose address"),
        ("::ffff:192.168.1.1", "not a globally routable address"),
        ("45.155.205.7", "allow-listed by 45.155.205.0/24"),
        ("52.95.110.1", "the account's own Elastic IP eipalloc-1"),
        ("3.5.140.2", "the account's own NAT gateway nat-1 public address"),
    ],
)
def test_guard_refuses_with_a_reason(address: str, reason: str) -> None:
    # GIVEN the allow list and the account's own public addresses
    owned = {"52.95.110.1": "Elastic IP eipalloc-1", "3.5.140.2": "NAT gateway nat-1 public address"}

    # WHEN the address is judged, THEN it is refused with that reason
    assert refusal_reason(address, settings().allow_list, owned) == reason


def test_a_public_attacker_passes_every_guard() -> None:
    assert refusal_reason("194.26.29.102", settings().allow_list, {"52.95.110.1": "Elastic IP"}) is None


def test_the_cap_refuses_addresses_beyond_it_in_the_order_seen() -> None:
    # GIVEN a cap of two addresses per incident
    allowed, refused = partition(["194.26.29.102", "185.220.101.47", "103.145.13.7"], (), 2)

    # THEN the third is refused, naming the cap
    assert allowed == ("194.26.29.102", "185.220.101.47")
    assert [(r.address, r.reason) for r in refused] == [("103.145.13.7", "over the cap of 2 addresses per incident")]


def test_choose_reports_own_addresses_as_skipped_and_turns_the_rest_into_host_cidrs() -> None:
    # GIVEN verdicts for an attacker and for the account's own Elastic IP
    verdicts = [Verdict("194.26.29.102", "suspicious", 60), Verdict("52.95.110.1", "suspicious", 60)]

    # WHEN the block step chooses
    cidrs, skipped = choose(verdicts, settings(), {"52.95.110.1": "Elastic IP eipalloc-1"})

    # THEN only the attacker is blocked, and the own address is skipped with the reason
    assert cidrs == ["194.26.29.102/32"]
    assert [(a.target, a.outcome, a.reason) for a in skipped] == [
        ("52.95.110.1", Outcome.SKIPPED, "the account's own Elastic IP eipalloc-1")
    ]


def test_headroom_refuses_new_addresses_once_the_usable_size_is_reached_but_not_resightings() -> None:
    # GIVEN an IPv4 list at its usable size of 2 (headroom 9998)
    active = {4: {"194.26.29.102/32", "185.220.101.47/32"}, 6: set()}

    # WHEN an incident brings one blocked address, one new IPv4 and one new IPv6 address
    accepted, refused = within_headroom(
        ["194.26.29.102/32", "103.145.13.7/32", "2a0e:97c0:3e3:2a2::1/128"], active, settings(ipset_headroom=9998)
    )

    # THEN the re-sighting and the IPv6 address pass, the new IPv4 one is refused naming the limit and the headroom
    assert accepted == ["194.26.29.102/32", "2a0e:97c0:3e3:2a2::1/128"]
    assert [(a.target, a.reason) for a in refused] == [
        ("103.145.13.7/32", "IPv4 block list is full: 2 of 2 addresses (9998 kept free below WAF's 10,000 per IPSet)")
    ]
    assert usage_percent(active, accepted, settings(ipset_headroom=9998)) == 100.0


def test_own_public_addresses_are_the_elastic_ips_and_nat_gateway_addresses(aws: None) -> None:
    # GIVEN an Elastic IP, and a NAT gateway whose Elastic IP was released afterwards
    ec2 = boto3.client("ec2")
    eip = ec2.allocate_address(Domain="vpc", Address="52.95.110.1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    nat_eip = ec2.allocate_address(Domain="vpc", Address="3.5.140.2")
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=nat_eip["AllocationId"])["NatGateway"]["NatGatewayId"]
    ec2.release_address(AllocationId=nat_eip["AllocationId"])

    # WHEN the account's own addresses are read
    owned = own_public_addresses(ec2)

    # THEN both are there, each saying what it is
    assert owned == {
        "52.95.110.1": f"Elastic IP {eip['AllocationId']}",
        "3.5.140.2": f"NAT gateway {nat} public address",
    }


@pytest.mark.parametrize("text", ["0-5", "80-71", "71-32767", "x"])
def test_a_bad_rule_range_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rule_range(text)


def test_cloudfront_sets_join_the_regional_ones_only_when_configured() -> None:
    assert settings().ipset_arns(4) == (settings().blocked_ipv4_set_arn,)
    cloudfront = "arn:aws:wafv2:us-east-1:123456789012:global/ipset/cf-ipv6/3"
    assert settings(cloudfront_ipv6_set_arn=cloudfront).ipset_arns(6) == (settings().blocked_ipv6_set_arn, cloudfront)
