"""Property: whatever arrives, normalise returns an Incident or raises FindingRejected — nothing else."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firebreak.core.errors import FindingRejected
from firebreak.core.models import Incident
from firebreak.triage.findings import normalise

EVENTS = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted((Path(__file__).parents[3] / "events" / "eventbridge").glob("*.json"))
}
SETTINGS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["45.155.205.233", "::ffff:1.2.3.4", "0.0.0.0/0", "Instance", "TARGET", "123456789012"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def mutate(event: Any, path: tuple[Any, ...], replacement: Any, drop: bool) -> Any:
    if not path:
        return replacement
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return event


def assert_incident_or_rejected(event: Any) -> None:
    try:
        incident = normalise(event)
    except FindingRejected:
        return
    assert isinstance(incident, Incident)
    json.dumps(incident.to_dict())


@SETTINGS
@given(json_values)
def test_arbitrary_json_is_normalised_or_rejected(event: Any) -> None:
    # GIVEN any JSON value  WHEN normalised  THEN an Incident or FindingRejected
    assert_incident_or_rejected(event)


@SETTINGS
@given(json_values)
def test_arbitrary_detail_under_a_finding_envelope_is_normalised_or_rejected(detail: Any) -> None:
    # GIVEN a real envelope around any detail  WHEN normalised  THEN an Incident or FindingRejected
    for name in ("guardduty_ssh_brute_force", "securityhub_custom_action"):
        assert_incident_or_rejected({**EVENTS[name], "detail": detail})


@SETTINGS
@given(st.data())
def test_mutated_sample_events_are_normalised_or_rejected(data: st.DataObject) -> None:
    # GIVEN a sample event with up to three keys dropped or replaced by arbitrary JSON
    event = copy.deepcopy(EVENTS[data.draw(st.sampled_from(sorted(EVENTS)))])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(list(paths(event))))
        drop = bool(path) and data.draw(st.booleans())
        event = mutate(event, path, None if drop else data.draw(json_values), drop)

    # WHEN normalised  THEN an Incident or FindingRejected, nothing else
    assert_incident_or_rejected(event)
