"""EventBridge event-pattern matching: ``matches(pattern, event)`` and ``validate(pattern)``.

Follows the EventBridge user guide ("Content filtering", "Comparison operators", "Arrays") and, where the guide is
silent, the documented behaviour of aws/event-ruler, the library EventBridge matches with. moto's matcher is not used
because it gets patterns over arrays of objects wrong (Security Hub ``detail.findings``).
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

__all__ = ["PatternError", "matches", "validate"]

# Called with a field's value, or with _MISSING when the event lacks the field.
Matcher = Callable[[Any], bool]
# Called with the leaf values found at a field (empty when there are none).
LeafTest = Callable[[list[Any]], bool]
Predicate = Callable[[Any], bool]

_MISSING: Final = object()
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
}


class PatternError(ValueError):
    """The event pattern is malformed: unknown operator, bad operand or wrong structure."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Return whether ``event`` matches ``pattern``; raise PatternError if the pattern is invalid."""
    return _compile_object(pattern)(event)


def validate(pattern: Any) -> None:
    """Raise PatternError unless ``pattern`` is a well-formed event pattern."""
    _compile_object(pattern)


def _compile_object(pattern: Any) -> Matcher:
    if not isinstance(pattern, Mapping) or not pattern:
        raise PatternError(f"a pattern must be a non-empty JSON object, got {pattern!r}")
    parts: list[Matcher] = []
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError("$or takes a list of at least two patterns")
            parts.append(_any_of([_compile_object(alternative) for alternative in sub]))
        elif isinstance(sub, Mapping):
            parts.append(_field(key, _compile_nested(sub)))
        elif isinstance(sub, list) and sub:
            parts.append(_field(key, _compile_leaf([_compile_condition(key, cond) for cond in sub])))
        else:
            raise PatternError(f"{key!r}: expected a nested pattern or a non-empty list of conditions, got {sub!r}")
    return lambda node: all(part(node) for part in parts)


def _any_of(alternatives: list[Matcher]) -> Matcher:
    return lambda node: any(alternative(node) for alternative in alternatives)


def _field(key: str, matcher: Matcher) -> Matcher:
    return lambda node: matcher(node.get(key, _MISSING) if isinstance(node, Mapping) else _MISSING)


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    elif value is not _MISSING:
        yield value


def _compile_nested(pattern: Mapping[str, Any]) -> Matcher:
    inner = _compile_object(pattern)

    def match(value: Any) -> bool:
        # Each array element is matched on its own (event-ruler's "array consistency"), so every condition of one
        # nested pattern must hold within the same element. With no object to descend into, all fields below are
        # absent, which still lets `exists: false` match.
        objects = [item for item in _flatten(value) if isinstance(item, Mapping)]
        return any(inner(obj) for obj in objects) if objects else inner({})

    return match


def _compile_leaf(tests: list[LeafTest]) -> Matcher:
    def match(value: Any) -> bool:
        # Objects are not leaves: a leaf condition on a field holding an object sees the field as absent.
        leaves = [item for item in _flatten(value) if not isinstance(item, Mapping)]
        return any(test(leaves) for test in tests)

    return match


def _compile_condition(key: str, cond: Any) -> LeafTest:
    if isinstance(cond, Mapping):
        if len(cond) != 1:
            raise PatternError(f"{key!r}: a condition object takes exactly one operator, got {cond!r}")
        ((name, operand),) = cond.items()
        if name == "exists":
            if not isinstance(operand, bool):
                raise PatternError(f"{key!r}: exists takes true or false, got {operand!r}")
            return lambda leaves: bool(leaves) is operand
        predicate = _operator(key, name, operand)
    else:
        predicate = _equals(key, cond)
    return lambda leaves: any(predicate(leaf) for leaf in leaves)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(key: str, expected: Any) -> Predicate:
    if expected is None or isinstance(expected, bool):
        return lambda value: value is expected
    if _is_number(expected):
        return lambda value: _is_number(value) and bool(value == expected)
    if isinstance(expected, str):
        return lambda value: isinstance(value, str) and value == expected
    raise PatternError(f"{key!r}: unsupported match value {expected!r}")


def _operator(key: str, name: str, operand: Any) -> Predicate:
    if name in ("prefix", "suffix"):
        return _affix(key, name, operand)
    if name == "equals-ignore-case":
        folded = _string(key, name, operand).casefold()
        return lambda value: isinstance(value, str) and value.casefold() == folded
    if name == "wildcard":
        regex = _wildcard(key, _string(key, name, operand))
        return lambda value: isinstance(value, str) and regex.fullmatch(value) is not None
    if name == "numeric":
        return _numeric(key, operand)
    if name == "cidr":
        return _cidr(key, operand)
    if name == "anything-but":
        return _anything_but(key, operand)
    raise PatternError(f"{key!r}: unknown operator {name!r}")


def _string(key: str, name: str, operand: Any) -> str:
    if not isinstance(operand, str):
        raise PatternError(f"{key!r}: {name} takes a string, got {operand!r}")
    return operand


def _affix(key: str, name: str, operand: Any) -> Predicate:
    ignore_case = isinstance(operand, Mapping) and list(operand) == ["equals-ignore-case"]
    affix = _string(key, name, operand["equals-ignore-case"] if ignore_case else operand)
    if ignore_case:
        affix = affix.casefold()

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        text = value.casefold() if ignore_case else value
        return text.startswith(affix) if name == "prefix" else text.endswith(affix)

    return test


def _wildcard(key: str, text: str) -> re.Pattern[str]:
    parts: list[str] = []
    for token in re.findall(r"\\.?|\*+|[^\\*]+", text, flags=re.DOTALL):
        if token == "*":
            parts.append(".*")
        elif token.startswith("*"):
            raise PatternError(f"{key!r}: consecutive wildcard characters in {text!r}")
        elif token.startswith("\\"):
            if token not in ("\\*", "\\\\"):
                raise PatternError(f"{key!r}: only '*' and '\\' can be escaped in {text!r}")
            parts.append(re.escape(token[1]))
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts), flags=re.DOTALL)


def _numeric(key: str, operand: Any) -> Predicate:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise PatternError(f"{key!r}: numeric takes [op, number] or [op, number, op, number], got {operand!r}")
    bounds = list(zip(operand[::2], operand[1::2], strict=True))
    if any(op not in _COMPARISONS or not _is_number(bound) for op, bound in bounds):
        raise PatternError(f"{key!r}: bad numeric condition {operand!r}")
    if len(bounds) == 2 and (bounds[0][0] not in (">", ">=") or bounds[1][0] not in ("<", "<=")):
        raise PatternError(f"{key!r}: a numeric range is a lower bound then an upper bound, got {operand!r}")
    return lambda value: _is_number(value) and all(_COMPARISONS[op](value, bound) for op, bound in bounds)


def _cidr(key: str, operand: Any) -> Predicate:
    try:
        network = ipaddress.ip_network(_string(key, "cidr", operand), strict=False)
    except ValueError as error:
        raise PatternError(f"{key!r}: invalid cidr {operand!r}") from error

    def test(value: Any) -> bool:
        try:
            address = ipaddress.ip_address(value) if isinstance(value, str) else None
        except ValueError:
            return False
        return address is not None and address.version == network.version and address in network

    return test


def _anything_but(key: str, operand: Any) -> Predicate:
    if isinstance(operand, Mapping):
        if len(operand) != 1:
            raise PatternError(f"{key!r}: anything-but takes one operator, got {operand!r}")
        ((name, inner),) = operand.items()
        if name not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise PatternError(f"{key!r}: anything-but does not support {name!r}")
        # The guide shows lists for equals-ignore-case and wildcard only; prefix and suffix take one string.
        many = name in ("equals-ignore-case", "wildcard") and isinstance(inner, list) and inner
        excluded = [_operator(key, name, _string(key, name, item)) for item in (inner if many else [inner])]
        return lambda value: isinstance(value, str) and not any(test(value) for test in excluded)
    values = operand if isinstance(operand, list) else [operand]
    all_strings = all(isinstance(value, str) for value in values)
    if not values or not (all_strings or all(_is_number(value) for value in values)):
        raise PatternError(f"{key!r}: anything-but takes strings or numbers, not a mix or null/boolean: {operand!r}")
    excluded = [_equals(key, value) for value in values]
    return lambda value: not any(test(value) for test in excluded)
