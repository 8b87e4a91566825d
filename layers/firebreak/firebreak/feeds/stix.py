"""A small, strict reader of STIX 2.1 indicators: the address patterns Firebreak accepts, and nothing else.

Accepted: one or more observations joined by OR, each `[ipv4-addr:value = '…']` or `[ipv6-addr:value = '…']`
(also ISSUBSET), several comparisons inside one observation joined by OR. Everything else — AND, FOLLOWEDBY,
qualifiers, other objects or properties, other operators, parentheses — is refused with the reason, never guessed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from firebreak.feeds.config import Candidate, Parsed, Rejection

ACCEPTED_PATHS = {"ipv4-addr:value": 4, "ipv6-addr:value": 6}
ACCEPTED_OPERATORS = {"=", "ISSUBSET"}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<typed>[bht]'(?:[^'\\]|\\.)*')
    | (?P<punct>[\[\]()])
    | (?P<operator>!=|<=|>=|=|<|>)
    | (?P<path>[a-z0-9-]+:[A-Za-z0-9_.\[\]*'-]+)
    | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
    | (?P<number>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)
_KEYWORD_OPERATORS = {"ISSUBSET", "ISSUPERSET", "LIKE", "MATCHES", "IN", "NOT", "EXISTS"}
_QUALIFIERS = {"WITHIN", "START", "STOP", "REPEATS", "TIMES", "SECONDS"}
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$")


class PatternRefused(ValueError):
    """The pattern is outside what Firebreak accepts; the message is the reason."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(pattern):
        if not pattern[position:].strip():
            break
        match = _TOKEN.match(pattern, position)
        if match is None or match.end() == position:
            raise PatternRefused(f"cannot read the pattern at character {position + 1}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def parse_pattern(pattern: str) -> tuple[str, ...]:
    """The address or CIDR values an accepted pattern names, or PatternRefused with the reason."""
    tokens = _tokens(pattern)
    values: list[str] = []
    position = 0

    def expect_comparison() -> None:
        nonlocal position
        if position + 2 >= len(tokens):
            raise PatternRefused("an observation ends before its comparison does")
        path, operator, literal = tokens[position : position + 3]
        if path.kind != "path":
            raise PatternRefused(f"expected an object path, found {path.text!r}")
        if path.text not in ACCEPTED_PATHS:
            raise PatternRefused(f"compares {path.text}; only ipv4-addr:value and ipv6-addr:value are accepted")
        if operator.text not in ACCEPTED_OPERATORS:
            raise PatternRefused(f"operator {operator.text} is not accepted; only = and ISSUBSET")
        if literal.kind != "string":
            raise PatternRefused(f"{path.text} is compared with {literal.text}, not a quoted address")
        value = _unquote(literal.text)
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise PatternRefused(f"{path.text} value {value!r} is not an IP address or CIDR") from None
        if network.version != ACCEPTED_PATHS[path.text]:
            raise PatternRefused(f"{path.text} holds an IPv{network.version} value {value!r}")
        values.append(value)
        position += 3

    def expect_observation() -> None:
        nonlocal position
        if position >= len(tokens) or tokens[position].text != "[":
            found = tokens[position].text if position < len(tokens) else "the end"
            raise PatternRefused(_unexpected(found, "an observation '['"))
        position += 1
        expect_comparison()
        while position < len(tokens) and tokens[position].text == "OR":
            position += 1
            expect_comparison()
        if position >= len(tokens) or tokens[position].text != "]":
            found = tokens[position].text if position < len(tokens) else "the end"
            raise PatternRefused(_unexpected(found, "']'"))
        position += 1

    expect_observation()
    while position < len(tokens):
        if tokens[position].text != "OR":
            raise PatternRefused(_unexpected(tokens[position].text, "OR"))
        position += 1
        expect_observation()
    return tuple(values)


def _unexpected(found: str, wanted: str) -> str:
    if found in {"AND", "FOLLOWEDBY"}:
        return f"{found} is not accepted; only observations joined by OR"
    if found in _QUALIFIERS:
        return f"qualifier {found} is not accepted"
    if found in {"(", ")"}:
        return "grouping with parentheses is not accepted"
    if found in _KEYWORD_OPERATORS:
        return f"operator {found} is not accepted; only = and ISSUBSET"
    return f"expected {wanted}, found {found!r}"


def parse_timestamp(text: Any) -> datetime:
    """A STIX timestamp (RFC 3339, UTC, 'Z', any fraction) as an aware datetime; ValueError otherwise."""
    match = _TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a STIX timestamp: {text!r}")
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    return datetime.strptime(f"{match.group(1)}.{fraction}", "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def latest_versions(objects: Iterable[Any]) -> list[Mapping[str, Any]]:
    """One object per id: the most recently modified version, so a later revocation wins."""
    latest: dict[str, Mapping[str, Any]] = {}
    anonymous: list[Mapping[str, Any]] = []
    for item in objects:
        if not isinstance(item, Mapping):
            continue
        object_id = item.get("id")
        if not isinstance(object_id, str):
            anonymous.append(item)
            continue
        kept = latest.get(object_id)
        if kept is None or str(item.get("modified", "")) >= str(kept.get("modified", "")):
            latest[object_id] = item
    return [*latest.values(), *anonymous]


def indicator_candidates(objects: Iterable[Any], now: datetime) -> Parsed:
    """Address candidates from every current indicator; revoked, expired, future and unsupported ones are refused."""
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    for item in latest_versions(objects):
        if item.get("type") != "indicator":
            continue
        origin = str(item.get("id", "indicator without id"))
        pattern = item.get("pattern")
        reason = _indicator_refusal(item, now)
        if reason is None and isinstance(pattern, str):
            try:
                candidates += [Candidate(value, origin) for value in parse_pattern(pattern)]
                continue
            except PatternRefused as refused:
                reason = str(refused)
        rejections.append(Rejection(str(pattern)[:200], origin, reason or "indicator has no pattern"))
    return Parsed(tuple(candidates), tuple(rejections))


def _indicator_refusal(item: Mapping[str, Any], now: datetime) -> str | None:
    if item.get("revoked") is True:
        return "revoked"
    if item.get("pattern_type") != "stix":
        return f"pattern_type {item.get('pattern_type')!r} is not accepted; only stix"
    if not isinstance(item.get("id"), str) or not isinstance(item.get("pattern"), str):
        return "indicator has no id or no pattern"
    try:
        valid_from = parse_timestamp(item.get("valid_from"))
        valid_until = parse_timestamp(item["valid_until"]) if "valid_until" in item else None
    except ValueError as error:
        return str(error)
    if valid_until is not None and valid_until <= now:
        return "expired: valid_until has passed"
    if valid_from > now:
        return "not yet valid: valid_from is in the future"
    return None
