"""refusal_reason / host_cidr / partition: the guards that decide what may go on a block list, and as what CIDR."""

from __future__ import annotations

import ipaddress

import pytest

from firebreak.core.addresses import Refusal, host_cidr, partition, refusal_reason
from firebreak.core.settings import parse_cidrs

NOT_GLOBAL = "not a globally routable address"
SPECIAL = "special-purpose address"
NOT_AN_ADDRESS = "not a single IP address"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        pytest.param("10.0.0.1", NOT_GLOBAL, id="private-10/8-low"),
        pytest.param("10.255.255.254", NOT_GLOBAL, id="private-10/8-high"),
        pytest.param("172.16.0.1", NOT_GLOBAL, id="private-172.16/12-low"),
        pytest.param("172.31.255.254", NOT_GLOBAL, id="private-172.16/12-high"),
        pytest.param("192.168.1.1", NOT_GLOBAL, id="private-192.168/16"),
        pytest.param("127.0.0.1", SPECIAL, id="loopback-v4"),
        pytest.param("127.8.9.10", SPECIAL, id="loopback-v4-not-dot-1"),
        pytest.param("::1", SPECIAL, id="loopback-v6"),
        pytest.param("169.254.169.254", SPECIAL, id="link-local-v4-metadata-endpoint"),
        pytest.param("fe80::1", SPECIAL, id="link-local-v6"),
        pytest.param("100.64.0.1", NOT_GLOBAL, id="cgnat-low"),
        pytest.param("100.127.255.254", NOT_GLOBAL, id="cgnat-high"),
        pytest.param("192.0.2.10", NOT_GLOBAL, id="documentation-test-net-1"),
        pytest.param("198.51.100.10", NOT_GLOBAL, id="documentation-test-net-2"),
        pytest.param("203.0.113.10", NOT_GLOBAL, id="documentation-test-net-3"),
        pytest.param("2001:db8::10", NOT_GLOBAL, id="documentation-v6"),
        pytest.param("224.0.0.251", SPECIAL, id="multicast-v4"),
        pytest.param("ff02::1", SPECIAL, id="multicast-v6"),
        pytest.param("0.0.0.0", SPECIAL, id="unspecified-v4"),
        pytest.param("::", SPECIAL, id="unspecified-v6"),
        pytest.param("fc00::1", NOT_GLOBAL, id="unique-local-fc"),
        pytest.param("fd12:3456:789a::1", NOT_GLOBAL, id="unique-local-fd"),
        pytest.param("::ffff:10.0.0.1", NOT_GLOBAL, id="ipv4-mapped-private"),
        pytest.param("::ffff:127.0.0.1", SPECIAL, id="ipv4-mapped-loopback"),
        pytest.param("240.0.0.1", SPECIAL, id="reserved-class-e"),
        pytest.param("255.255.255.255", SPECIAL, id="limited-broadcast"),
    ],
)
def test_refuses_addresses_that_are_not_public_hosts(address: str, reason: str) -> None:
    # GIVEN an address outside the public internet
    # WHEN the guard judges it with an empty allow list
    # THEN it refuses, and says which kind of address it is
    assert refusal_reason(address) == reason


@pytest.mark.parametrize(
    "garbage",
    ["", "not-an-ip", "8.8.8", "8.8.8.8.8", "1.2.3.4/32", "2606:4700::/32", "256.1.1.1", " 8.8.8.8", "8.8.8.8\n"],
)
def test_refuses_strings_that_are_not_a_single_address(garbage: str) -> None:
    # GIVEN a string that is not one IP address (empty, malformed, a network, padded)
    # WHEN the guard judges it
    # THEN it refuses rather than raising
    assert refusal_reason(garbage) == NOT_AN_ADDRESS


@pytest.mark.parametrize("address", ["45.155.205.233", "8.8.8.8", "2606:4700:4700::1111", "2a0e:97c0:3e3:2a2::1"])
def test_accepts_public_addresses(address: str) -> None:
    # GIVEN a publicly routable v4 or v6 address and no allow list
    # WHEN the guard judges it
    # THEN nothing stops it from being blocked
    assert refusal_reason(address) is None


def test_ipv4_mapped_public_address_is_judged_as_its_ipv4_address() -> None:
    # GIVEN a public address written in its IPv4-mapped IPv6 form, and an allow list holding its IPv4 network
    allow_list = parse_cidrs("45.155.205.0/24")

    # WHEN the guard judges it with and without the allow list
    # THEN the mapped address is treated as the IPv4 address it stands for
    assert refusal_reason("::ffff:45.155.205.233") is None
    assert refusal_reason("::ffff:45.155.205.233", allow_list) == "allow-listed by 45.155.205.0/24"


def test_refuses_allow_listed_ipv4_address_and_names_the_network() -> None:
    # GIVEN an allow list with a partner's IPv4 range among others
    allow_list = parse_cidrs("2606:4700::/32, 45.155.205.0/24")

    # WHEN a public address inside that range, and one just outside it, are judged
    # THEN the inside one is refused naming the matching network; the outside one is not
    assert refusal_reason("45.155.205.233", allow_list) == "allow-listed by 45.155.205.0/24"
    assert refusal_reason("45.155.206.1", allow_list) is None


def test_refuses_allow_listed_ipv6_address_and_names_the_network() -> None:
    # GIVEN an allow list with an IPv6 range
    allow_list = parse_cidrs("2606:4700::/32")

    # WHEN addresses inside (in expanded form) and outside the range are judged
    # THEN the inside one is refused; the outside one is not
    assert refusal_reason("2606:4700:0000:0000:0000:0000:0000:1111", allow_list) == "allow-listed by 2606:4700::/32"
    assert refusal_reason("2a0e:97c0:3e3:2a2::1", allow_list) is None


def test_ipv4_allow_list_never_matches_an_ipv6_address() -> None:
    # GIVEN an allow list that holds every IPv4 unicast range there is
    allow_list = parse_cidrs(
        "1.0.0.0/8, 2.0.0.0/7, 4.0.0.0/6, 8.0.0.0/5, 16.0.0.0/4, 32.0.0.0/3, 64.0.0.0/2, 128.0.0.0/1"
    )
    assert refusal_reason("8.8.8.8", allow_list) == "allow-listed by 8.0.0.0/5"

    # WHEN a public IPv6 address (whose low 32 bits read as 8.8.8.8) is judged
    # THEN no IPv4 network matches it
    assert refusal_reason("2606:4700::808:808", allow_list) is None


def test_ipv6_allow_list_never_matches_an_ipv4_address() -> None:
    # GIVEN an allow list with only an IPv6 range
    allow_list = parse_cidrs("2000::/3")

    # WHEN a public IPv4 address is judged
    # THEN the IPv6 network does not cover it
    assert refusal_reason("8.8.8.8", allow_list) is None


def test_not_routable_reason_wins_over_allow_list() -> None:
    # GIVEN an allow list that also covers a private range
    allow_list = parse_cidrs("10.0.0.0/8")

    # WHEN a private address is judged
    # THEN the reason is that it is not routable, checked before the allow list
    assert refusal_reason("10.0.0.1", allow_list) == NOT_GLOBAL


@pytest.mark.parametrize(
    ("address", "cidr"),
    [
        pytest.param("45.155.205.233", "45.155.205.233/32", id="ipv4-slash-32"),
        pytest.param("2a0e:97c0:3e3:2a2::1", "2a0e:97c0:3e3:2a2::1/128", id="ipv6-slash-128"),
        pytest.param("2A0E:97C0:03E3:02A2:0000:0000:0000:0001", "2a0e:97c0:3e3:2a2::1/128", id="ipv6-expanded-upper"),
        pytest.param("2606:4700:0:0:0:0:0:1111", "2606:4700::1111/128", id="ipv6-zero-groups"),
    ],
)
def test_host_cidr_is_a_single_host_network_in_compressed_form(address: str, cidr: str) -> None:
    # GIVEN an address in any spelling
    # WHEN it is turned into the CIDR WAF stores
    result = host_cidr(address)

    # THEN it is the one-host network, compressed, and round-trips through ipaddress unchanged
    assert result == cidr
    assert ipaddress.ip_network(result).num_addresses == 1
    assert ipaddress.ip_network(result).compressed == result


def test_host_cidr_raises_for_something_that_is_not_an_address() -> None:
    # GIVEN a network rather than an address
    # WHEN it is turned into a host CIDR
    # THEN it raises instead of producing a CIDR WAF would block as a range
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        host_cidr("45.155.205.0/24")


def test_partition_keeps_order_and_collects_refusals_with_reasons() -> None:
    # GIVEN public, private, garbage and allow-listed addresses in mixed order
    addresses = ["8.8.8.8", "10.0.0.9", "2a0e:97c0:3e3:2a2::1", "junk", "45.155.205.233", "1.1.1.1"]
    allow_list = parse_cidrs("1.1.1.0/24")

    # WHEN they are partitioned with room for all
    allowed, refused = partition(addresses, allow_list, limit=10)

    # THEN the blockable ones keep their input order, and each refusal says why, also in input order
    assert allowed == ("8.8.8.8", "2a0e:97c0:3e3:2a2::1", "45.155.205.233")
    assert refused == (
        Refusal("10.0.0.9", NOT_GLOBAL),
        Refusal("junk", NOT_AN_ADDRESS),
        Refusal("1.1.1.1", "allow-listed by 1.1.1.0/24"),
    )


def test_partition_drops_repeated_addresses() -> None:
    # GIVEN the same public and private addresses several times over
    addresses = ["8.8.8.8", "10.0.0.9", "8.8.8.8", "45.155.205.233", "10.0.0.9", "8.8.8.8"]

    # WHEN they are partitioned
    allowed, refused = partition(addresses, (), limit=10)

    # THEN each appears once, where it first appeared, and repeats do not use up the cap
    assert allowed == ("8.8.8.8", "45.155.205.233")
    assert refused == (Refusal("10.0.0.9", NOT_GLOBAL),)


def test_partition_caps_blockable_addresses_at_the_limit_and_says_why() -> None:
    # GIVEN four public addresses with a private one among them, and a cap of two
    addresses = ["8.8.8.8", "10.0.0.9", "45.155.205.233", "9.9.9.9", "2a0e:97c0:3e3:2a2::1"]

    # WHEN they are partitioned
    allowed, refused = partition(addresses, (), limit=2)

    # THEN the first two public ones are kept; the rest are refused for the cap; the private one for what it is
    assert allowed == ("8.8.8.8", "45.155.205.233")
    assert refused == (
        Refusal("10.0.0.9", NOT_GLOBAL),
        Refusal("9.9.9.9", "over the cap of 2 addresses per incident"),
        Refusal("2a0e:97c0:3e3:2a2::1", "over the cap of 2 addresses per incident"),
    )


def test_partition_refusals_do_not_count_towards_the_cap() -> None:
    # GIVEN refused addresses ahead of one public address, and a cap of one
    addresses = ["10.0.0.1", "127.0.0.1", "junk", "8.8.8.8"]

    # WHEN they are partitioned
    allowed, refused = partition(addresses, (), limit=1)

    # THEN the public address still fits under the cap
    assert allowed == ("8.8.8.8",)
    assert [r.address for r in refused] == ["10.0.0.1", "127.0.0.1", "junk"]


def test_partition_with_a_zero_cap_blocks_nothing() -> None:
    # GIVEN a cap of zero
    # WHEN a public address is partitioned
    allowed, refused = partition(["8.8.8.8"], (), limit=0)

    # THEN it is refused for the cap
    assert allowed == ()
    assert refused == (Refusal("8.8.8.8", "over the cap of 0 addresses per incident"),)


def test_partition_treats_two_spellings_of_one_address_as_one() -> None:
    # GIVEN one IPv6 address in compressed and expanded form, and a cap of two
    addresses = ["2a0e:97c0:3e3:2a2::1", "2a0e:97c0:03e3:02a2:0:0:0:1", "8.8.8.8"]

    # WHEN they are partitioned
    allowed, refused = partition(addresses, (), limit=2)

    # THEN the repeat is dropped and the second distinct address still fits under the cap
    assert [host_cidr(a) for a in allowed] == ["2a0e:97c0:3e3:2a2::1/128", "8.8.8.8/32"]
    assert refused == ()


def test_host_cidr_of_an_ipv4_mapped_address_is_the_ipv4_host() -> None:
    # GIVEN a public address in IPv4-mapped form, which the guard accepts as the IPv4 address
    assert refusal_reason("::ffff:45.155.205.233") is None

    # WHEN it is turned into the CIDR WAF stores
    # THEN it is the IPv4 host, so it lands in the IPv4 set and matches the attacker's IPv4 connections
    assert host_cidr("::ffff:45.155.205.233") == "45.155.205.233/32"


def test_refuses_an_ipv6_address_with_a_zone_index() -> None:
    # GIVEN a public IPv6 address with a zone index, which only means something on one host's link
    # WHEN the guard judges it
    # THEN it is refused, because no WAF CIDR can express it
    assert refusal_reason("2a0e:97c0:3e3:2a2::1%eth0") is not None
