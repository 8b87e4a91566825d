"""Threat feeds as data: the validated configuration, and the guards every feed indicator passes before blocking."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from firebreak.core.addresses import refusal_reason
from firebreak.core.errors import FeedConfigInvalid
from firebreak.core.settings import IpNetwork, parse_cidrs
from firebreak.core.waf import IPSET_CAPACITY

SCHEMA_PATH = Path(__file__).with_name("feed_config.schema.json")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 20
# Reasons listed one by one in a report; the counts by reason always cover them all.
MAX_LISTED_REJECTIONS = 50

# IANA special-purpose ranges (RFC 6890 and successors). ip.is_global judges one address; a feed CIDR must not even
# overlap one of these, which a check of its first and last address cannot see (203.0.0.0/16 holds 203.0.113.0/24).
NON_GLOBAL_NETWORKS: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


@dataclass(frozen=True)
class FeedAuth:
    secret_id: str
    scheme: str
    header: str | None = None


@dataclass(frozen=True)
class Feed:
    """One configured feed, defaults applied."""

    name: str
    format: str
    url: str
    column: str | None = None
    delimiter: str = ","
    collection: str | None = None
    auth: FeedAuth | None = None
    max_indicators: int | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    allow_empty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feed:
        auth = data.get("auth")
        return cls(**{**data, "auth": FeedAuth(**auth) if auth else None})


@dataclass(frozen=True)
class FeedSettings:
    """Stack-wide feed limits, from the environment the template gives every function."""

    allow_list: tuple[IpNetwork, ...] = ()
    min_ipv4_prefix: int = 16
    min_ipv6_prefix: int = 32
    max_indicators_per_feed: int = 5000
    ipset_headroom: int = 500
    ipv4_set_arn: str = ""
    ipv6_set_arn: str = ""
    indicator_table: str = ""
    config_parameter: str = ""

    @property
    def ipset_ceiling(self) -> int:
        """Most addresses a feed IPSet may hold: WAF's limit less the headroom kept free."""
        return max(IPSET_CAPACITY - self.ipset_headroom, 0)

    def cap_for(self, feed: Feed) -> int:
        return min(feed.max_indicators or self.max_indicators_per_feed, self.max_indicators_per_feed)

    @classmethod
    def from_env(cls) -> FeedSettings:
        """Read per invocation: the local engine runs every function in one process."""
        env = os.environ
        return cls(
            allow_list=parse_cidrs(env.get("ALLOW_LIST_CIDRS", "")),
            min_ipv4_prefix=int(env.get("FEED_MIN_IPV4_PREFIX", "16")),
            min_ipv6_prefix=int(env.get("FEED_MIN_IPV6_PREFIX", "32")),
            max_indicators_per_feed=int(env.get("FEED_MAX_INDICATORS", "5000")),
            ipset_headroom=int(env.get("FEED_IPSET_HEADROOM", "500")),
            ipv4_set_arn=env.get("FEED_IPV4_SET_ARN", ""),
            ipv6_set_arn=env.get("FEED_IPV6_SET_ARN", ""),
            indicator_table=env.get("FEED_INDICATOR_TABLE_NAME", ""),
            config_parameter=env.get("FEED_CONFIG_PARAMETER", ""),
        )


@cache
def config_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def parse_config(text: str) -> tuple[Feed, ...]:
    """The feeds of a configuration document, or FeedConfigInvalid saying what is wrong with it."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise FeedConfigInvalid(f"feed configuration is not JSON: {error}") from None
    try:
        validate(event=document, schema=config_schema())
    except SchemaValidationError as error:
        raise FeedConfigInvalid(f"feed configuration breaks its schema: {error.message}") from None
    feeds = tuple(Feed.from_dict(item) for item in document["feeds"])
    names = [feed.name for feed in feeds]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FeedConfigInvalid(f"feed names must be unique: {', '.join(duplicates)}")
    return feeds


@dataclass(frozen=True)
class Candidate:
    """A value a feed offers for blocking, and where in the feed it came from (line, row or STIX id)."""

    value: str
    origin: str


@dataclass(frozen=True)
class Rejection:
    value: str
    origin: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Parsed:
    """What a parser read: candidate values, and entries it refused before any address check."""

    candidates: tuple[Candidate, ...] = ()
    rejections: tuple[Rejection, ...] = ()


@dataclass(frozen=True)
class Screened:
    """Canonical CIDRs that may be blocked, in feed order, and every refusal with its reason."""

    accepted: tuple[str, ...]
    rejections: tuple[Rejection, ...] = field(default_factory=tuple)


def network_refusal(value: str, settings: FeedSettings) -> tuple[IpNetwork | None, str | None]:
    """The value as a network, or why a feed may never put it on a block list."""
    if "%" in value:
        return None, "not an IP address or CIDR"
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None, "not an IP address or CIDR"
        return None, "host bits set: not a network address"
    minimum = settings.min_ipv4_prefix if network.version == 4 else settings.min_ipv6_prefix
    if network.prefixlen < minimum:
        return None, f"/{network.prefixlen} is broader than the /{minimum} a feed may block"
    if network.num_addresses == 1:
        reason = refusal_reason(str(network.network_address), settings.allow_list)
        return (None, reason) if reason else (network, None)
    for special in NON_GLOBAL_NETWORKS:
        if special.version == network.version and network.overlaps(special):
            return None, f"overlaps the non-global range {special.with_prefixlen}"
    for allowed in settings.allow_list:
        if allowed.version == network.version and network.overlaps(allowed):
            return None, f"overlaps allow-listed {allowed.with_prefixlen}"
    return network, None


def screen(candidates: Iterable[Candidate], settings: FeedSettings, cap: int) -> Screened:
    """Validate every candidate; keep the first `cap` blockable ones (deduplicated) and give every refusal a reason."""
    accepted: dict[str, None] = {}
    rejections: list[Rejection] = []
    for candidate in candidates:
        network, reason = network_refusal(candidate.value.strip(), settings)
        if network is None:
            rejections.append(Rejection(candidate.value, candidate.origin, reason or "refused"))
            continue
        cidr = network.compressed
        if cidr in accepted:
            continue
        if len(accepted) >= cap:
            rejections.append(Rejection(candidate.value, candidate.origin, f"over the feed's cap of {cap} entries"))
            continue
        accepted[cidr] = None
    return Screened(tuple(accepted), tuple(rejections))


def reason_counts(rejections: Sequence[Rejection]) -> dict[str, int]:
    """How many entries were refused for each reason (reasons without the varying value)."""
    counts: dict[str, int] = {}
    for rejection in rejections:
        counts[rejection.reason] = counts.get(rejection.reason, 0) + 1
    return counts
