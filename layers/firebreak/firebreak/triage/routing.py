"""Routing as data: the first rule in routing.json whose match fits an incident names its playbook."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from firebreak.core.models import Incident, Playbook

ROUTES_PATH = Path(__file__).with_name("routing.json")
MATCH_KEYS = ("resource_type", "resource_role", "principal_type", "finding_type_prefix", "finding_type_contains")

_STRINGS = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Firebreak routing table: ordered rules, first match wins",
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["name", "match", "playbook"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "match": {
                "type": "object",
                "additionalProperties": False,
                "properties": dict.fromkeys(MATCH_KEYS, _STRINGS),
            },
            "playbook": {"enum": [playbook.value for playbook in Playbook]},
        },
    },
}


class RoutingTableInvalid(ValueError):
    """The routing file is not a valid routing table; the message lists every problem."""


@dataclass(frozen=True)
class Route:
    """One rule: every match key given must fit (any of its values); keys left out match anything."""

    name: str
    playbook: Playbook
    resource_type: tuple[str, ...] | None = None
    resource_role: tuple[str, ...] | None = None
    principal_type: tuple[str, ...] | None = None
    finding_type_prefix: tuple[str, ...] | None = None
    finding_type_contains: tuple[str, ...] | None = None

    def matches(self, incident: Incident) -> bool:
        finding_type = incident.finding_type
        return (
            _among(incident.resource_type, self.resource_type)
            and _among(incident.resource_role, self.resource_role)
            and _among(incident.principal_type, self.principal_type)
            and (self.finding_type_prefix is None or finding_type.startswith(self.finding_type_prefix))
            and (self.finding_type_contains is None or any(part in finding_type for part in self.finding_type_contains))
        )


# Only reachable with routes passed in by a caller: load_routes insists on a final catch-all rule.
_NO_MATCH = Route(name="no-rule-matched", playbook=Playbook.NOTIFY_ONLY)


@cache
def load_routes(path: Path | str | None = None) -> tuple[Route, ...]:
    """The validated routing table from path (default: routing.json beside this module), read once per process."""
    source = Path(path) if path is not None else ROUTES_PATH
    try:
        rules = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RoutingTableInvalid(f"{source}: not valid JSON: {error}") from error
    # Powertools' validator (fastjsonschema) ships in the AWS-managed Powertools layer; jsonschema is not in Lambda.
    try:
        validate(event=rules, schema=SCHEMA)
        problems: list[str] = []
    except SchemaValidationError as error:
        problems = [str(error.validation_message)]
    if not problems:
        names = [rule["name"] for rule in rules]
        problems += [
            f"$: rule name {name!r} is used more than once" for name in sorted(set(names)) if names.count(name) > 1
        ]
        if rules[-1]["match"]:
            problems.append(f"$[{len(rules) - 1}].match: the last rule must match everything (an empty match)")
    if problems:
        raise RoutingTableInvalid(f"{source} is not a valid routing table: " + "; ".join(sorted(problems)))
    return tuple(
        Route(
            name=rule["name"],
            playbook=Playbook(rule["playbook"]),
            **{key: tuple(values) for key, values in rule["match"].items()},
        )
        for rule in rules
    )


def route(incident: Incident, routes: tuple[Route, ...] | None = None) -> Route:
    """The first route that matches incident (routes default to the loaded routing table)."""
    return next((r for r in (routes if routes is not None else load_routes()) if r.matches(incident)), _NO_MATCH)


def _among(value: str | None, allowed: tuple[str, ...] | None) -> bool:
    return allowed is None or value in allowed
