"""verdict_for: a verdict on each remote address from the finding and the allow list, with its evidence."""

from __future__ import annotations

from typing import Any

import pytest

from firebreak.enrichment import verdict_for
from firebreak.models import Incident, RemoteIpDetails, Source, Verdict
from firebreak.settings import parse_cidrs

ATTACKER = "45.155.205.233"
DETAILS = RemoteIpDetails(
    ATTACKER, organization="Example Bulletproof Hosting Ltd", asn="206728", isp="Example", country="Netherlands"
)


def incident(finding_type: str, *details: RemoteIpDetails, **fields: Any) -> Incident:
    return Incident(
        source=Source.GUARDDUTY,
        finding_id="62c8f1a3b5d94e7f8a2b6c0d1e3f4a5b",
        account_id="123456789012",
        region="us-east-1",
        finding_type=finding_type,
        severity=5.0,
        severity_label="MEDIUM",
        remote_ips=tuple(d.address for d in details),
        remote_ip_details=details,
        **fields,
    )


def test_allow_listed_address_is_benign_with_the_reason_and_its_evidence() -> None:
    # GIVEN a malicious-IP finding about an address the operators allow-listed
    finding = incident("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", DETAILS)

    # WHEN it is judged
    verdict = verdict_for(ATTACKER, finding, parse_cidrs("45.155.205.0/24"))

    # THEN the allow list wins: benign, score 0, the reason first and what GuardDuty knows after it
    assert verdict == Verdict(
        ATTACKER,
        "benign",
        0,
        ("allow-listed by 45.155.205.0/24", "Example Bulletproof Hosting Ltd, AS206728, Netherlands"),
    )
    assert not verdict.blocks


@pytest.mark.parametrize("address", ["10.0.1.25", "192.168.0.7", "100.64.3.2", "fd00::1"])
def test_private_address_is_benign(address: str) -> None:
    # GIVEN a brute-force finding whose remote address is not routable
    finding = incident("UnauthorizedAccess:EC2/SSHBruteForce", RemoteIpDetails(address))

    # WHEN it is judged
    verdict = verdict_for(address, finding, ())

    # THEN it is benign, and says why
    assert verdict == Verdict(address, "benign", 0, ("not a globally routable address",))
    assert not verdict.blocks


@pytest.mark.parametrize(
    "finding_type",
    [
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
        "Recon:IAMUser/MaliciousIPCaller",
        "UnauthorizedAccess:EC2/TorIPCaller",
        "Backdoor:EC2/C&CActivity.B",
        "TTPs/Command and Control/Backdoor:EC2-C&CActivity.B",
        "Trojan:EC2/BlackholeTraffic",
        "Trojan:EC2/DropPoint",
    ],
)
def test_threat_list_findings_are_malicious(finding_type: str) -> None:
    # GIVEN a finding that puts the address on a threat list or in command of a host
    finding = incident(finding_type, DETAILS)

    # WHEN it is judged
    verdict = verdict_for(ATTACKER, finding, ())

    # THEN it is malicious, naming the finding and the network it comes from
    assert verdict == Verdict(
        ATTACKER, "malicious", 90, (f"finding {finding_type}", "Example Bulletproof Hosting Ltd, AS206728, Netherlands")
    )
    assert verdict.blocks


@pytest.mark.parametrize(
    "finding_type",
    [
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "UnauthorizedAccess:EC2/RDPBruteForce",
        "Recon:EC2/PortProbeUnprotectedPort",
        "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    ],
)
def test_attacks_on_this_account_are_suspicious(finding_type: str) -> None:
    # GIVEN a finding that saw the address attack this account
    finding = incident(finding_type, DETAILS)

    # WHEN it is judged
    verdict = verdict_for(ATTACKER, finding, ())

    # THEN it is suspicious: enough to block
    assert (verdict.verdict, verdict.score, verdict.evidence[0]) == ("suspicious", 60, f"finding {finding_type}")
    assert verdict.blocks


def test_other_findings_are_unknown_with_only_the_address_evidence() -> None:
    # GIVEN a finding type that says nothing about the remote address
    finding = incident("Policy:IAMUser/RootCredentialUsage", DETAILS)

    # WHEN it is judged
    verdict = verdict_for(ATTACKER, finding, ())

    # THEN it is unknown (still blocks: not benign) and carries what GuardDuty knows of the address
    assert verdict == Verdict(ATTACKER, "unknown", 50, ("Example Bulletproof Hosting Ltd, AS206728, Netherlands",))
    assert verdict.blocks


def test_unknown_asn_minus_one_is_left_out_of_the_evidence() -> None:
    # GIVEN details in which GuardDuty did not know the ASN
    details = RemoteIpDetails(ATTACKER, organization="Some ISP", asn="-1", country="Brazil")

    # WHEN the address is judged
    verdict = verdict_for(ATTACKER, incident("UnauthorizedAccess:EC2/SSHBruteForce", details), ())

    # THEN the evidence names the organisation and country and no AS-1
    assert verdict.evidence == ("finding UnauthorizedAccess:EC2/SSHBruteForce", "Some ISP, Brazil")


def test_address_without_details_has_no_empty_evidence() -> None:
    # GIVEN details with nothing known, and another address with no details at all
    finding = incident("Policy:IAMUser/RootCredentialUsage", RemoteIpDetails(ATTACKER), RemoteIpDetails("8.8.8.8"))

    # WHEN an address with empty details is judged
    verdict = verdict_for(ATTACKER, finding, ())

    # THEN there is no blank evidence line
    assert verdict.evidence == ()


def test_evidence_is_only_about_the_address_judged() -> None:
    # GIVEN a port probe from two networks
    other = RemoteIpDetails("194.26.29.102", organization="Other Net", asn="57523", country="Russia")
    finding = incident("Recon:EC2/PortProbeUnprotectedPort", DETAILS, other)

    # WHEN each address is judged
    first, second = (verdict_for(address, finding, ()) for address in (ATTACKER, "194.26.29.102"))

    # THEN each verdict carries its own network and not the other's
    assert first.evidence[1:] == ("Example Bulletproof Hosting Ltd, AS206728, Netherlands",)
    assert second.evidence[1:] == ("Other Net, AS57523, Russia",)


def test_verdict_round_trips_through_its_dict() -> None:
    # GIVEN a verdict
    verdict = verdict_for(ATTACKER, incident("UnauthorizedAccess:EC2/SSHBruteForce", DETAILS), ())

    # WHEN it goes to a dict and back, as between states
    # THEN it is the same verdict, with evidence as a JSON list on the way
    assert verdict.to_dict()["evidence"] == list(verdict.evidence)
    assert Verdict.from_dict(verdict.to_dict()) == verdict
