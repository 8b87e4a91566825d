"""The strict STIX reader: accepted address patterns, refusals with reasons, revocation, expiry and versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import stix2
from stix2patterns.validator import run_validator

from firebreak.feeds.stix import PatternRefused, indicator_candidates, parse_pattern, parse_timestamp

ACCEPTED = {
    "[ipv4-addr:value = '45.155.205.10']": ("45.155.205.10",),
    "[ipv4-addr:value='185.220.101.0/24']": ("185.220.101.0/24",),
    "[ipv6-addr:value = '2a0e:97c0:3e3::/48']": ("2a0e:97c0:3e3::/48",),
    "[ipv4-addr:value ISSUBSET '91.92.0.0/16']": ("91.92.0.0/16",),
    "[ipv4-addr:value = '1.1.1.1' OR ipv6-addr:value = '2a06:4880::1']": ("1.1.1.1", "2a06:4880::1"),
    "[ipv4-addr:value = '1.1.1.1'] OR [ipv4-addr:value = '8.8.8.8'] OR [ipv4-addr:value = '9.9.9.9']": (
        "1.1.1.1",
        "8.8.8.8",
        "9.9.9.9",
    ),
}
REFUSED = {
    "[ipv4-addr:value = '1.1.1.1' AND ipv4-addr:value = '8.8.8.8']": "AND is not accepted",
    "[ipv4-addr:value = '1.1.1.1'] AND [ipv4-addr:value = '8.8.8.8']": "AND is not accepted",
    "[ipv4-addr:value = '1.1.1.1'] FOLLOWEDBY [ipv4-addr:value = '8.8.8.8']": "FOLLOWEDBY is not accepted",
    "[ipv4-addr:value = '1.1.1.1'] WITHIN 300 SECONDS": "qualifier WITHIN is not accepted",
    "[domain-name:value = 'evil.example']": "compares domain-name:value",
    "[network-traffic:dst_ref.value = '1.1.1.1']": "compares network-traffic:dst_ref.value",
    "[ipv4-addr:value != '1.1.1.1']": "operator != is not accepted",
    "[ipv4-addr:value MATCHES '^1\\\\.']": "operator MATCHES is not accepted",
    "[ipv4-addr:value = '2a06:4880::1']": "holds an IPv6 value",
    "[ipv4-addr:value = 'evil.example']": "is not an IP address or CIDR",
    "([ipv4-addr:value = '1.1.1.1'] OR [ipv4-addr:value = '8.8.8.8'])": "parentheses",
    "[ipv4-addr:value = '1.1.1.1']]": "expected OR",
    "[ipv4-addr:value = '1.1.1.1'": "expected ']'",
}


@pytest.mark.parametrize(("pattern", "values"), ACCEPTED.items())
def test_accepts_address_patterns_that_stix2_patterns_also_finds_valid(pattern: str, values: tuple[str, ...]) -> None:
    # GIVEN a pattern the reference validator accepts
    assert run_validator(pattern, stix_version="2.1") == []
    # THEN Firebreak reads exactly its addresses
    assert parse_pattern(pattern) == values


@pytest.mark.parametrize(("pattern", "reason"), REFUSED.items())
def test_refuses_everything_else_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(PatternRefused, match=reason.replace("(", r"\(")):
        parse_pattern(pattern)


def test_timestamps_of_any_precision_are_read_as_utc() -> None:
    assert parse_timestamp("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_timestamp("2024-05-01T10:00:00.123456789Z").microsecond == 123456
    with pytest.raises(ValueError):
        parse_timestamp("2024-05-01 10:00:00")


def test_latest_version_decides_and_expired_or_future_indicators_are_refused() -> None:
    # GIVEN a bundle (built with stix2) where one indicator was revoked in a later version, one expired, one is future
    now = datetime.now(UTC)
    past = now - timedelta(days=3)
    kept = stix2.Indicator(pattern="[ipv4-addr:value = '45.155.205.10']", pattern_type="stix", valid_from=past)
    revoked = stix2.Indicator(pattern="[ipv4-addr:value = '80.82.77.33']", pattern_type="stix", valid_from=past)
    expired = stix2.Indicator(
        pattern="[ipv4-addr:value = '71.6.199.23']",
        pattern_type="stix",
        valid_from=past,
        valid_until=now - timedelta(days=1),
    )
    future = stix2.Indicator(
        pattern="[ipv4-addr:value = '91.92.240.1']", pattern_type="stix", valid_from=now + timedelta(days=1)
    )
    objects = [json.loads(o.serialize()) for o in (revoked.new_version(revoked=True), kept, revoked, expired, future)]

    # WHEN the candidates are read
    parsed = indicator_candidates(objects, now)

    # THEN only the current one is offered, and each other one has its reason
    assert [c.value for c in parsed.candidates] == ["45.155.205.10"]
    assert sorted(r.reason for r in parsed.rejections) == [
        "expired: valid_until has passed",
        "not yet valid: valid_from is in the future",
        "revoked",
    ]
