"""Verdict logic, the bounded, concurrent asking of providers (assess_all) and the evidence it returns."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from firebreak.core.models import Incident
from firebreak.intel.enrichment import Enrichment, assess_all
from firebreak.intel.providers import (
    AbuseIpDb,
    GreyNoise,
    LookupStatus,
    Otx,
    ProviderConfig,
    ProviderResult,
    VirusTotal,
)
from firebreak.intel.remote_config import AddressLists
from firebreak.triage.findings import normalise
from tests.fake_intel import FakeIntel, documented, fake_intel
from tests.support import load_event

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

ATTACKER = "45.155.205.233"
NO_LISTS = AddressLists()


@dataclass
class Scripted:
    """An in-memory provider: answers what it is told, and remembers what it was asked."""

    name: str
    verdict: str | None = None
    score: int | None = None
    status: LookupStatus = LookupStatus.OK
    asked: list[str] = field(default_factory=list)

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        self.asked.append(address)
        return ProviderResult(self.name, self.status, self.verdict, self.score, f"{self.name} says {self.verdict}")


class Broken:
    name = "broken"

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        raise KeyError("a bug in a provider someone added")


@pytest.fixture
def intel() -> Iterator[FakeIntel]:
    with fake_intel() as server:
        yield server


def brute_force(**changes: object) -> Incident:
    return replace(normalise(load_event("eventbridge/guardduty_ssh_brute_force")), **changes)  # type: ignore[arg-type]


def lists(allow: str = "", deny: str = "") -> AddressLists:
    def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(part) for part in text.split(",") if part)

    return AddressLists(allow=networks(allow), deny=networks(deny))


def assess_one(incident: Incident, address_lists: AddressLists = NO_LISTS, *providers: object) -> dict[str, object]:
    [assessment] = assess_all(incident, address_lists, providers, time.monotonic() + 1, 50)  # type: ignore[arg-type]
    return {"verdict": assessment.verdict, "after": assessment.after(), "reason": assessment.reason()}


# --- precedence ----------------------------------------------------------------------------------------------------


def test_allow_list_makes_the_address_benign_and_keeps_it_from_every_provider() -> None:
    # GIVEN the attacker's range is on the allow list (and, by mistake, on the deny list too)
    provider = Scripted("virustotal", "malicious", 100)

    # WHEN it is assessed
    result = assess_one(brute_force(), lists(allow="45.155.205.0/24", deny="45.155.205.233/32"), provider)

    # THEN the allow list wins, and no provider heard of the address
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score, verdict.blocks) == ("benign", 0, False)  # type: ignore[attr-defined]
    assert "allow-listed by 45.155.205.0/24" in str(result["reason"])
    assert provider.asked == []


def test_deny_list_forces_malicious_without_asking_anyone() -> None:
    # GIVEN an address GuardDuty only saw probing (unknown type), but that is on the deny list
    provider = Scripted("greynoise", "benign", 0)
    incident = brute_force(finding_type="Behavior:EC2/NetworkPortUnusual")

    # WHEN it is assessed
    result = assess_one(incident, lists(deny="45.155.205.0/24"), provider)

    # THEN it is malicious at 100 and no provider was asked
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score) == ("malicious", 100)  # type: ignore[attr-defined]
    assert str(result["reason"]).startswith("malicious (100): deny-listed by 45.155.205.0/24")
    assert provider.asked == []


def test_unroutable_address_is_benign_and_never_looked_up() -> None:
    # GIVEN a private address in the finding
    provider = Scripted("abuseipdb", "malicious", 100)
    incident = brute_force(remote_ips=("10.0.0.9",), remote_ip_details=())

    # WHEN it is assessed
    result = assess_one(incident, NO_LISTS, provider)

    # THEN it is benign and stayed inside the account
    assert result["verdict"].verdict == "benign"  # type: ignore[attr-defined]
    assert provider.asked == []


def test_guardduty_threat_list_makes_it_malicious() -> None:
    # GIVEN GuardDuty matched the address against a threat list
    incident = brute_force(threat_lists=("ProofPoint",))

    # WHEN it is assessed with no provider
    result = assess_one(incident)

    # THEN it is malicious and the list is named in the evidence
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score) == ("malicious", 95)  # type: ignore[attr-defined]
    assert "on GuardDuty threat list ProofPoint" in str(result["reason"])


def test_finding_alone_keeps_the_old_verdicts() -> None:
    # GIVEN a brute force with its GuardDuty details and no provider
    # WHEN it is assessed
    result = assess_one(brute_force())

    # THEN it is suspicious on the finding's word, with GuardDuty's organisation, ASN and country as evidence
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score) == ("suspicious", 60)  # type: ignore[attr-defined]
    assert verdict.evidence[0] == "finding UnauthorizedAccess:EC2/SSHBruteForce"  # type: ignore[attr-defined]
    assert verdict.evidence[1] == "Example Bulletproof Hosting Ltd, AS206728, Netherlands"  # type: ignore[attr-defined]


def test_a_provider_raises_the_verdict_and_its_score_counts() -> None:
    # GIVEN the finding says suspicious and AbuseIPDB says malicious at 97
    # WHEN the address is assessed
    result = assess_one(brute_force(), NO_LISTS, Scripted("abuseipdb", "malicious", 97))

    # THEN the verdict is malicious at the provider's score
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score) == ("malicious", 97)  # type: ignore[attr-defined]


def test_providers_calling_it_benign_do_not_stop_a_block() -> None:
    # GIVEN every provider thinks the brute-forcing address is benign
    providers = (Scripted("greynoise", "benign", 0), Scripted("virustotal", "benign", 0))

    # WHEN it is assessed
    result = assess_one(brute_force(), NO_LISTS, *providers)

    # THEN the finding's own evidence stands: suspicious, still blocked
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score, verdict.blocks) == ("suspicious", 60, True)  # type: ignore[attr-defined]


def test_unknown_finding_raised_to_suspicious_by_a_provider() -> None:
    # GIVEN a finding type with no marker and OTX naming the address in 2 pulses
    incident = brute_force(finding_type="Behavior:EC2/NetworkPortUnusual")

    # WHEN it is assessed
    result = assess_one(incident, NO_LISTS, Scripted("otx", "suspicious", 45), Scripted("virustotal", "unknown", 0))

    # THEN the provider's level and score win
    verdict = result["verdict"]
    assert (verdict.verdict, verdict.score) == ("suspicious", 45)  # type: ignore[attr-defined]


def test_failed_sources_are_evidence_not_votes() -> None:
    # GIVEN one provider rate limited and one with a bug
    providers = (Scripted("virustotal", status=LookupStatus.RATE_LIMITED), Broken())

    # WHEN the address is assessed
    result = assess_one(brute_force(), NO_LISTS, *providers)

    # THEN the verdict is the finding's, and both failures are recorded per source
    after = result["after"]
    assert result["verdict"].verdict == "suspicious"  # type: ignore[attr-defined]
    assert after["sources"]["virustotal"]["status"] == "rate_limited"  # type: ignore[index]
    assert after["sources"]["broken"]["status"] == "failed"  # type: ignore[index]
    assert after["sources"]["broken"]["summary"] == "broken: KeyError"  # type: ignore[index]


def test_evidence_after_is_json_with_every_source() -> None:
    # GIVEN a provider answering
    # WHEN the address is assessed
    after = assess_one(brute_force(), NO_LISTS, Scripted("otx", "suspicious", 35))["after"]

    # THEN the evidence serialises and names the stack's guards, the finding and the provider
    assert json.loads(json.dumps(after)) == after
    assert set(after["sources"]) == {"guards", "finding", "otx"}  # type: ignore[index]
    assert after["sources"]["finding"]["details"]["country"] == "Netherlands"  # type: ignore[index]


# --- real providers against the local server ---------------------------------------------------------------------


def real_providers(intel: FakeIntel) -> list[object]:
    config = ProviderConfig("key", intel.base_url)
    return [AbuseIpDb(config), GreyNoise(config), VirusTotal(config), Otx(config)]


def test_documented_answers_from_all_four_make_a_malicious_verdict(intel: FakeIntel) -> None:
    # GIVEN every provider answers as documented about a known attacker
    intel.on("/check", body=documented("abuseipdb_check"))
    intel.on("/v3/community/", body=documented("greynoise_community_malicious"))
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))
    intel.on("/indicators/", body=documented("otx_general"))

    # WHEN the brute force is assessed
    [assessment] = assess_all(brute_force(), NO_LISTS, real_providers(intel), time.monotonic() + 2, 50)  # type: ignore[arg-type]

    # THEN the verdict is malicious at 100, each provider asked once, and each summary is in the reason
    assert (assessment.verdict.verdict, assessment.verdict.score) == ("malicious", 100)
    assert intel.count() == 4
    assert "AbuseIPDB confidence 100/100, 1372 reports" in assessment.reason()
    assert "OTX: 7 pulses" in assessment.reason()


def test_hanging_providers_are_asked_at_once_and_cut_off_at_the_deadline(intel: FakeIntel) -> None:
    # GIVEN all four providers hang
    for prefix in ("/check", "/v3/community/", "/ip_addresses/", "/indicators/"):
        intel.hang(prefix)
    started = time.monotonic()

    # WHEN two addresses are assessed with a 2 s deadline (room for eight connections on a loaded test machine)
    incident = brute_force(remote_ips=(ATTACKER, "194.26.29.102"))
    assessments = assess_all(incident, NO_LISTS, real_providers(intel), started + 2.0, 50)  # type: ignore[arg-type]

    # THEN all eight lookups ran concurrently (one at a time, the deadline would cut off all but the first) and the
    # step returned at the deadline, not after eight of them
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"took {elapsed:.2f} s"
    assert intel.count() == 8
    for assessment in assessments:
        statuses = {name: source["status"] for name, source in assessment.after()["sources"].items()}
        assert statuses == {
            "guards": "ok",
            "finding": "ok",
            "abuseipdb": "timeout",
            "greynoise": "timeout",
            "virustotal": "timeout",
            "otx": "timeout",
        }
        assert assessment.verdict.verdict == "suspicious"


def test_providers_are_asked_about_at_most_the_cap_of_addresses(intel: FakeIntel) -> None:
    # GIVEN three attackers and a cap of two addresses per incident
    intel.on("/indicators/", body=documented("otx_general_unknown"))
    incident = brute_force(remote_ips=(ATTACKER, "194.26.29.102", "185.220.101.47"))
    otx = Otx(ProviderConfig("key", intel.base_url))

    # WHEN they are assessed
    assessments = assess_all(incident, NO_LISTS, [otx], time.monotonic() + 2, 2)

    # THEN only two were sent out, and the third says why it was not
    assert intel.count() == 2
    assert "over the cap of 2 addresses" in assessments[2].after()["notes"][0]
    assert "otx" not in assessments[2].after()["sources"]


def test_evidence_is_kept_for_the_cap_of_addresses_and_one_line_stands_for_the_rest() -> None:
    # GIVEN three attackers assessed and a cap of two addresses per incident
    incident = brute_force(remote_ips=(ATTACKER, "194.26.29.102", "185.220.101.47"))
    enrichment = Enrichment(tuple(assess_all(incident, NO_LISTS, [], time.monotonic() + 1, 2)), (), 2)

    # WHEN the step's answer is built
    answer = enrichment.to_dict()

    # THEN every address has a verdict, two carry their evidence and one line says why the third does not
    assert [verdict["address"] for verdict in answer["verdicts"]] == [ATTACKER, "194.26.29.102", "185.220.101.47"]
    assert [(action["target"], action["outcome"]) for action in answer["actions"]] == [
        (ATTACKER, "applied"),
        ("194.26.29.102", "applied"),
        ("1 more addresses", "skipped"),
    ]
    assert answer["actions"][2]["reason"].startswith("evidence not kept: over the cap of 2 addresses per incident")
