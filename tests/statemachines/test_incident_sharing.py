"""Respond To Finding stores each incident's indicators as a STIX 2.1 bundle on its record."""

from __future__ import annotations

from typing import Any

import stix2

from firebreak_local.engine import Engine, Execution
from tests.support import load_event


def run(engine: Engine, name: str) -> Execution:
    event = load_event(f"eventbridge/{name}")
    rule = engine.matching_rule(event)
    assert rule is not None
    return engine.start(rule, event)


def stored(engine: Engine, incident_id: str) -> dict[str, Any]:
    item = engine.record(incident_id)
    assert item is not None
    return item


def test_contained_incident_record_carries_a_bundle_that_stix2_parses(engine: Engine) -> None:
    # GIVEN an SSH brute force that gets blocked
    execution = run(engine, "guardduty_ssh_brute_force")
    assert execution.output is not None and execution.output["status"] == "CONTAINED"

    # WHEN its record is read back
    record = stored(engine, execution.output["incident_id"])

    # THEN the stored bundle parses with stix2 and says what was seen and done
    bundle = stix2.parse(record["stix_bundle"], allow_custom=False)
    (indicator,) = [obj for obj in bundle.objects if obj.type == "indicator"]
    (sighting,) = [obj for obj in bundle.objects if obj.type == "sighting"]
    assert indicator.pattern == "[ipv4-addr:value = '45.155.205.233']"
    assert "UnauthorizedAccess:EC2/SSHBruteForce" in indicator.name
    assert "block_ip applied" in sighting.description
    assert sighting.sighting_of_ref == indicator.id


def test_sample_finding_exports_nothing(engine: Engine) -> None:
    execution = run(engine, "guardduty_sample_rdp_brute_force")
    assert execution.output is not None
    assert "stix_bundle" not in stored(engine, execution.output["incident_id"])


def test_failed_export_leaves_the_outcome_as_it_was(engine: Engine) -> None:
    # GIVEN an export function that breaks
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("disk full")

    engine.dispatcher.override("firebreak-ExportStixBundleFunction", broken)

    # WHEN a brute force is handled
    execution = run(engine, "guardduty_ssh_brute_force")

    # THEN the incident is still CONTAINED and recorded so, just without a bundle
    assert execution.status == "SUCCEEDED"
    assert execution.output is not None and execution.output["status"] == "CONTAINED"
    assert execution.states[-3:] == ["Export Stix Bundle", "Did Response Fail?", "Response Complete"]
    record = stored(engine, execution.output["incident_id"])
    assert record["status"] == "CONTAINED" and "stix_bundle" not in record
    assert record["actions"]
