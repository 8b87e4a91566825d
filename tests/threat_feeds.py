"""Feed documents for the tests, in every format, with the entries a correct sync must keep and must refuse.

STIX content is built with the `stix2` package (a dev dependency), so the fixtures are what a real producer emits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import stix2

NOW = datetime.now(UTC)

PLAINTEXT = """\
# Firebreak test feed: one address or CIDR per line
45.155.205.10
185.220.101.0/24   # a range
10.1.2.3
192.168.0.0/16
8.0.0.0/8
not-an-ip
1.2.3.4.5
45.155.205.10
2a0e:97c0:3e3::/48
203.0.113.9
185.220.102.5/24
45.155.205.11 extra words
"""
PLAINTEXT_VALID = {"45.155.205.10/32", "185.220.101.0/24", "2a0e:97c0:3e3::/48"}

CSV = """\
# exported by a test
first_seen,ip_address,malware
2024-01-01,194.26.29.50,Mirai
2024-01-01,,Empty
2024-01-02,89.248.165.0/24,scanner
2024-01-03,127.0.0.1,loopback
"""
CSV_VALID = {"194.26.29.50/32", "89.248.165.0/24"}


def indicator(pattern: str, **extra: Any) -> stix2.Indicator:
    properties: dict[str, Any] = {"valid_from": NOW - timedelta(days=10), **extra}
    return stix2.Indicator(pattern=pattern, pattern_type="stix", **properties)


def stix_bundle_objects() -> list[Any]:
    """Valid, ORed, expired, revoked (also revoked in a later version), refused-pattern and private indicators."""
    later_revoked = indicator("[ipv4-addr:value = '91.92.245.6']")
    return [
        indicator("[ipv4-addr:value = '91.92.240.1']"),
        indicator(
            "[ipv4-addr:value = '91.92.241.0/24' OR ipv6-addr:value = '2a06:4880::/32'] "
            "OR [ipv4-addr:value = '91.92.242.3']"
        ),
        indicator("[ipv4-addr:value = '91.92.243.4']", valid_until=NOW - timedelta(days=1)),
        indicator("[ipv4-addr:value = '91.92.244.5']", revoked=True),
        later_revoked,
        later_revoked.new_version(revoked=True),
        indicator("[ipv4-addr:value = '91.92.246.7' AND ipv4-addr:value = '91.92.246.8']"),
        indicator("[domain-name:value = 'evil.example']"),
        indicator("[ipv4-addr:value = '10.9.8.7']"),
        indicator("[ipv4-addr:value = '4.0.0.0/8']"),
        stix2.Malware(name="Mirai", is_family=True),
    ]


STIX_VALID = {"91.92.240.1/32", "91.92.241.0/24", "2a06:4880::/32", "91.92.242.3/32"}


def stix_bundle() -> str:
    return str(stix2.Bundle(objects=stix_bundle_objects(), allow_custom=False).serialize())


def taxii_objects() -> list[dict[str, Any]]:
    """Five indicators over three pages of two: four current, one expired."""
    indicators = [
        indicator("[ipv4-addr:value = '80.82.77.33']"),
        indicator("[ipv4-addr:value = '80.82.78.0/24']"),
        indicator("[ipv6-addr:value = '2a01:4f8:1c17::1']"),
        indicator("[ipv4-addr:value = '80.82.79.9']", valid_until=NOW - timedelta(hours=1)),
        indicator("[ipv4-addr:value = '71.6.199.23']"),
    ]
    return [json.loads(item.serialize()) for item in indicators]


TAXII_VALID = {"80.82.77.33/32", "80.82.78.0/24", "2a01:4f8:1c17::1/128", "71.6.199.23/32"}
