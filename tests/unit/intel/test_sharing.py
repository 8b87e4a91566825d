"""STIX 2.1 export of an incident: valid for the stix2 library, deterministic, and only what is worth sharing."""

from __future__ import annotations

import ipaddress
import json

import stix2

from firebreak.core.models import Action, ActionType, Outcome
from firebreak.intel.sharing import incident_bundle, seen_times
from firebreak.triage.findings import normalise
from tests.support import load_event

INCIDENT_ID = "fb-0123456789abcdef0123"


def brute_force_bundle(**changes: object) -> dict[str, object] | None:
    event = load_event("eventbridge/guardduty_port_probe_high")
    incident = normalise(event["detail"])
    first, last = seen_times(event["detail"])
    actions = [
        Action(ActionType.BLOCK_IP, "194.26.29.102/32", Outcome.APPLIED, "added to WAF IPSet firebreak-blocked-ipv4"),
        Action(ActionType.BLOCK_IP, "10.0.0.9", Outcome.SKIPPED, "not a globally routable address"),
    ]
    arguments: dict[str, object] = {"first_seen": first, "last_seen": last, **changes}
    return incident_bundle(INCIDENT_ID, incident, "CONTAINED", actions, **arguments)  # type: ignore[arg-type]


def test_bundle_parses_with_stix2_and_names_every_public_attacker() -> None:
    # GIVEN a port probe from a public IPv4, a public IPv6 and a private address, one of them blocked
    bundle = brute_force_bundle()
    assert bundle is not None

    # WHEN the reference library parses the export (no custom properties allowed)
    parsed = stix2.parse(json.dumps(bundle), allow_custom=False)

    # THEN it holds the identity, one indicator and one sighting per public address, and a note
    kinds = [obj.type for obj in parsed.objects]
    assert kinds.count("identity") == 1 and kinds.count("note") == 1
    indicators = {obj.pattern: obj for obj in parsed.objects if obj.type == "indicator"}
    assert set(indicators) == {"[ipv4-addr:value = '194.26.29.102']", "[ipv6-addr:value = '2a0e:97c0:3e3:2a2::1']"}
    sightings = {obj.sighting_of_ref: obj for obj in parsed.objects if obj.type == "sighting"}
    blocked = indicators["[ipv4-addr:value = '194.26.29.102']"]
    assert "block_ip applied" in sightings[blocked.id].description
    assert sightings[blocked.id].first_seen <= sightings[blocked.id].last_seen
    assert blocked.valid_from == sightings[blocked.id].first_seen
    assert (
        blocked.external_references[0].external_id
        == normalise(load_event("eventbridge/guardduty_port_probe_high")["detail"]).finding_id
    )


def test_export_is_deterministic() -> None:
    assert brute_force_bundle() == brute_force_bundle()


def test_allow_listed_addresses_are_not_shared() -> None:
    bundle = brute_force_bundle(allow_list=(ipaddress.ip_network("194.26.29.0/24"),))
    assert bundle is not None
    patterns = [o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"]  # type: ignore[index,union-attr]
    assert patterns == ["[ipv6-addr:value = '2a0e:97c0:3e3:2a2::1']"]


def test_sample_findings_and_incidents_without_public_addresses_share_nothing() -> None:
    sample = normalise(load_event("eventbridge/guardduty_sample_rdp_brute_force")["detail"])
    assert incident_bundle(INCIDENT_ID, sample, "DRY_RUN", [], None, None) is None
    mining = normalise(load_event("eventbridge/guardduty_root_credential_usage")["detail"])
    private_only = type(mining)(**{**mining.__dict__, "remote_ips": ("10.0.0.9",)})
    assert incident_bundle(INCIDENT_ID, private_only, "NOTIFIED", [], None, None) is None
