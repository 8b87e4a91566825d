"""`firebreak run --report-dir DIR`: the post-incident report of every incident of the run, one Markdown file each.

The report is the one the stack stores on the incident record (rendered by PublishIncidentFunction from the record),
with the emulator's ids made the finding's again; rendered here from the record when none is stored yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from firebreak_local.engine import Engine


def write_reports(engine: Engine, incident_ids: Iterable[str], directory: Path) -> list[Path]:
    """One <incident id>.md per incident with a record; returns the files written, in the order given."""
    from firebreak.incident.postmortem import render
    from firebreak.incident.records import IncidentRecord

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for incident_id in dict.fromkeys(incident_ids):
        item = engine.record(incident_id)
        if item is None:
            continue
        text = item.get("report") or render(IncidentRecord.from_item(item))
        path = directory / f"{incident_id}.md"
        path.write_text(engine.world.restore(text), encoding="utf-8")
        written.append(path)
    return written
