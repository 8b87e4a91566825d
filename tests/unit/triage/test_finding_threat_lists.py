"""The GuardDuty threat lists a finding names, read from GuardDuty's own JSON and from its ASFF copy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import Incident
from firebreak.triage.findings import MAX_THREAT_LISTS, normalise
from tests.support import load_event


def guardduty(**service: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("eventbridge/guardduty_ssh_brute_force"))
    event["detail"]["service"].update(service)
    return event


def test_threat_list_names_come_from_the_evidence_section() -> None:
    # GIVEN a finding whose evidence names two threat lists
    event = guardduty(
        evidence={
            "threatIntelligenceDetails": [
                {"threatListName": "ProofPoint", "threatNames": ["Scanner"]},
                {"threatListName": "CrowdStrike", "threatNames": ["Brute forcer"]},
            ]
        }
    )

    # WHEN it is normalised
    # THEN both lists are named, in order
    assert normalise(event).threat_lists == ("ProofPoint", "CrowdStrike")


def test_older_findings_name_the_list_in_additional_info() -> None:
    # GIVEN an older finding with the list in additionalInfo, and the same list again in evidence
    event = guardduty(
        additionalInfo={"threatListName": "ThreatIntelIOC-IPs", "threatName": "Customer Threat Intel"},
        evidence={"threatIntelligenceDetails": [{"threatListName": "ThreatIntelIOC-IPs"}]},
    )

    # WHEN it is normalised
    # THEN the list is named once
    assert normalise(event).threat_lists == ("ThreatIntelIOC-IPs",)


def test_a_finding_without_threat_intelligence_names_none() -> None:
    # GIVEN the sample brute force (no evidence section)
    # WHEN it is normalised
    # THEN no list is named
    assert normalise(load_event("eventbridge/guardduty_ssh_brute_force")).threat_lists == ()


def test_threat_list_names_are_printable_and_capped() -> None:
    # GIVEN a hostile finding with a control character in a name and far too many lists
    details = [{"threatListName": f"list-{i}\n"} for i in range(MAX_THREAT_LISTS + 5)]
    event = guardduty(evidence={"threatIntelligenceDetails": details})

    # WHEN it is normalised
    names = normalise(event).threat_lists

    # THEN at most the cap is kept, each without the control character
    assert len(names) == MAX_THREAT_LISTS
    assert names[0] == "list-0"


def test_evidence_that_is_not_a_list_is_rejected_naming_the_field() -> None:
    # GIVEN evidence.threatIntelligenceDetails is an object instead of a list
    event = guardduty(evidence={"threatIntelligenceDetails": {"threatListName": "x"}})

    # WHEN it is normalised
    # THEN the rejection names the field
    with pytest.raises(FindingRejected, match=r"detail\.service\.evidence\.threatIntelligenceDetails is not a list"):
        normalise(event)


def test_asff_copy_names_the_lists_from_product_fields() -> None:
    # GIVEN GuardDuty's finding as Security Hub imported it, with flattened evidence keys
    event = copy.deepcopy(load_event("eventbridge/securityhub_guardduty_copy"))
    fields = event["detail"]["findings"][0]["ProductFields"]
    fields["aws/guardduty/service/evidence/threatIntelligenceDetails.0_/threatListName"] = "ThreatIntelIOC-IPs"
    fields["aws/guardduty/service/evidence/threatIntelligenceDetails.0_/threatNames.0_"] = "Customer Threat Intel"
    fields["aws/guardduty/service/additionalInfo/threatListName"] = "ProofPoint"

    # WHEN it is normalised
    # THEN both lists are named
    assert set(normalise(event).threat_lists) == {"ThreatIntelIOC-IPs", "ProofPoint"}


def test_threat_lists_survive_the_trip_between_states() -> None:
    # GIVEN an incident that names a threat list
    incident = normalise(guardduty(evidence={"threatIntelligenceDetails": [{"threatListName": "ProofPoint"}]}))

    # WHEN it is passed on as a dict and read back
    # THEN it is the same incident
    assert Incident.from_dict(incident.to_dict()) == incident
