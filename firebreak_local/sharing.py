"""`firebreak report INCIDENT_ID --stix --events EVENT_FILE...`: an incident's STIX 2.1 bundle, as its record holds it.

The embedded engine keeps nothing between commands, so the events that make the incident run first (as with
`firebreak run`); INCIDENT_ID is the incident id (fb-…) or the finding id. Only the bundle goes to stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from firebreak_local.events import Unusable, read_event


def find_record(engine: Any, wanted: str) -> dict[str, Any] | None:
    """The incident record whose incident id or finding id is `wanted`."""
    dynamodb = engine.client("dynamodb")
    table = engine.resources["IncidentTable"].ref
    with engine.api_calls.quiet():
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                record = {key: next(iter(value.values())) for key, value in item.items()}
                if wanted in (record.get("incident_id"), record.get("finding_id")):
                    return record
    return None


def report_stix(incident: str, event_files: Sequence[str], template: Path, out: IO[str]) -> int:
    """Exit 0 with the bundle on stdout; 1 when the incident or its bundle does not exist; 2 for an unusable file."""
    from firebreak_local.engine import Engine

    unusable = False
    with Engine(template) as engine:
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("FIREBREAK_LOG_LEVEL", "WARNING")
        for path in event_files:
            try:
                event = read_event(path)
            except Unusable as error:
                print(f"firebreak: {error}", file=sys.stderr)
                unusable = True
                continue
            rule = engine.matching_rule(event)
            if rule is not None:
                engine.start(rule, event)
        record = find_record(engine, incident)
    if unusable:
        return 2
    if record is None:
        print(f"firebreak: no incident {incident} after running the given events", file=sys.stderr)
        return 1
    if "stix_bundle" not in record:
        status = record.get("status", "unknown")
        print(f"firebreak: incident {incident} ({status}) has no STIX bundle: nothing to share", file=sys.stderr)
        return 1
    out.write(json.dumps(json.loads(record["stix_bundle"]), indent=2) + "\n")
    return 0
