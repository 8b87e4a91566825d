"""Each provider against a local server on 127.0.0.1: documented answers, unknown addresses, hangs, 429s, garbage."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from firebreak.intel.providers import (
    AbuseIpDb,
    GreyNoise,
    LookupStatus,
    Otx,
    Provider,
    ProviderConfig,
    ProviderResult,
    ReverseDns,
    VirusTotal,
    configured,
)
from tests.fake_intel import FakeIntel, documented, fake_intel

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

ATTACKER = "45.155.205.233"
KEY = "test-key-do-not-leak-7f3a"
DEADLINE_SECONDS = 0.5
# Every provider with the path its lookup asks for, so the same scenarios run against each.
PROVIDERS: dict[str, tuple[Callable[[ProviderConfig], Provider], str]] = {
    "abuseipdb": (AbuseIpDb, "/check"),
    "greynoise": (GreyNoise, f"/v3/community/{ATTACKER}"),
    "virustotal": (VirusTotal, f"/ip_addresses/{ATTACKER}"),
    "otx": (Otx, f"/indicators/IPv4/{ATTACKER}/general"),
}


@pytest.fixture
def intel() -> Iterator[FakeIntel]:
    with fake_intel() as server:
        yield server


def ask(intel: FakeIntel, name: str, address: str = ATTACKER, seconds: float = DEADLINE_SECONDS) -> ProviderResult:
    factory, _ = PROVIDERS[name]
    return factory(ProviderConfig(KEY, intel.base_url)).lookup(address, time.monotonic() + seconds)


# --- documented answers ------------------------------------------------------------------------------------------


def test_abuseipdb_reads_the_confidence_score_and_sends_the_key_as_a_header(intel: FakeIntel) -> None:
    # GIVEN AbuseIPDB's documented /check answer for an address reported 1372 times with confidence 100
    intel.on("/check", body=documented("abuseipdb_check"))

    # WHEN the address is looked up
    result = ask(intel, "abuseipdb")

    # THEN the verdict is malicious at the provider's own score, and the request was the documented one
    assert (result.status, result.verdict, result.score) == (LookupStatus.OK, "malicious", 100)
    assert result.details["total_reports"] == 1372
    assert result.summary == "AbuseIPDB confidence 100/100, 1372 reports"
    [request] = intel.requests
    assert request.path == f"/check?ipAddress={ATTACKER}&maxAgeInDays=90"
    assert request.headers["key"] == KEY
    assert request.headers["accept"] == "application/json"


def test_abuseipdb_whitelisted_address_is_benign_in_its_own_opinion(intel: FakeIntel) -> None:
    # GIVEN AbuseIPDB says the address is whitelisted
    answer = documented("abuseipdb_check")
    answer["data"].update(isWhitelisted=True, abuseConfidenceScore=0)
    intel.on("/check", body=answer)

    # WHEN it is looked up
    result = ask(intel, "abuseipdb")

    # THEN AbuseIPDB's verdict is benign
    assert (result.verdict, result.score) == ("benign", 0)


@pytest.mark.parametrize(("score", "verdict"), [(74, "suspicious"), (25, "suspicious"), (24, "unknown")])
def test_abuseipdb_confidence_bands(intel: FakeIntel, score: int, verdict: str) -> None:
    # GIVEN a confidence score on a band edge
    answer = documented("abuseipdb_check")
    answer["data"]["abuseConfidenceScore"] = score
    intel.on("/check", body=answer)

    # WHEN the address is looked up
    # THEN the band decides the verdict
    assert ask(intel, "abuseipdb").verdict == verdict


def test_greynoise_malicious_classification(intel: FakeIntel) -> None:
    # GIVEN GreyNoise's community answer classifying the address malicious
    intel.on("/v3/community/", body=documented("greynoise_community_malicious"))

    # WHEN it is looked up
    result = ask(intel, "greynoise")

    # THEN it is malicious and the key went in the `key` header
    assert (result.status, result.verdict, result.score) == (LookupStatus.OK, "malicious", 80)
    assert intel.requests[0].headers["key"] == KEY


def test_greynoise_riot_service_is_benign_in_its_own_opinion(intel: FakeIntel) -> None:
    # GIVEN a RIOT (known business service) answer
    intel.on("/v3/community/", body=documented("greynoise_community_riot"))

    # WHEN it is looked up
    result = ask(intel, "greynoise", "8.8.8.8")

    # THEN GreyNoise's verdict is benign and it names the service
    assert result.verdict == "benign"
    assert result.details["name"] == "Google Public DNS"


def test_greynoise_404_with_its_message_means_never_seen(intel: FakeIntel) -> None:
    # GIVEN GreyNoise's documented 404 for an address it never observed
    intel.on("/v3/community/", status=404, body=documented("greynoise_community_not_found"))

    # WHEN it is looked up
    result = ask(intel, "greynoise")

    # THEN that is an answer (not a failure) without a verdict
    assert (result.status, result.verdict) == (LookupStatus.NOT_FOUND, None)


def test_greynoise_community_is_not_asked_about_ipv6(intel: FakeIntel) -> None:
    # GIVEN an IPv6 attacker (the community API takes routable IPv4 only)
    # WHEN GreyNoise is asked
    result = ask(intel, "greynoise", "2a0e:97c0:3e3:2a2::1")

    # THEN it says so without sending anything
    assert result.status is LookupStatus.UNSUPPORTED
    assert intel.count() == 0


def test_virustotal_counts_the_engines_that_flag_the_address(intel: FakeIntel) -> None:
    # GIVEN VirusTotal's documented IP address object with 9 malicious and 2 suspicious engines
    intel.on("/ip_addresses/", body=documented("virustotal_ip_address"))

    # WHEN it is looked up
    result = ask(intel, "virustotal")

    # THEN the verdict is malicious, and the key went in x-apikey
    assert (result.status, result.verdict, result.score) == (LookupStatus.OK, "malicious", 100)
    assert (result.details["malicious"], result.details["suspicious"], result.details["reputation"]) == (9, 2, -11)
    assert result.summary == "VirusTotal: 9 malicious, 2 suspicious of 94 engines"
    assert intel.requests[0].headers["x-apikey"] == KEY


@pytest.mark.parametrize(
    ("malicious", "suspicious", "verdict", "score"),
    [(3, 0, "malicious", 85), (1, 0, "suspicious", 40), (0, 1, "suspicious", 40), (0, 0, "benign", 0)],
)
def test_virustotal_engine_bands(intel: FakeIntel, malicious: int, suspicious: int, verdict: str, score: int) -> None:
    # GIVEN an answer with the given engine counts
    answer = documented("virustotal_ip_address")
    answer["data"]["attributes"]["last_analysis_stats"].update(malicious=malicious, suspicious=suspicious)
    intel.on("/ip_addresses/", body=answer)

    # WHEN it is looked up
    result = ask(intel, "virustotal")

    # THEN the counts decide verdict and score
    assert (result.verdict, result.score) == (verdict, score)


def test_virustotal_not_found_error_is_an_answer(intel: FakeIntel) -> None:
    # GIVEN VirusTotal's documented NotFoundError
    intel.on("/ip_addresses/", status=404, body=documented("virustotal_not_found"))

    # WHEN the address is looked up
    # THEN it is a definitive "nothing known"
    assert ask(intel, "virustotal").status is LookupStatus.NOT_FOUND


def test_otx_counts_pulses_and_names_a_few(intel: FakeIntel) -> None:
    # GIVEN OTX's general section naming the address in 7 pulses
    intel.on("/indicators/", body=documented("otx_general"))

    # WHEN it is looked up
    result = ask(intel, "otx")

    # THEN it is malicious, the pulses are named, and the key went in X-OTX-API-KEY
    assert (result.status, result.verdict, result.score) == (LookupStatus.OK, "malicious", 77)
    assert result.details["pulse_names"] == ["SSH brute force sources", "Honeypot attackers, March 2026"]
    assert intel.requests[0].headers["x-otx-api-key"] == KEY


def test_otx_address_in_no_pulse_is_unknown(intel: FakeIntel) -> None:
    # GIVEN OTX knows the address but no pulse names it
    intel.on("/indicators/", body=documented("otx_general_unknown"))

    # WHEN it is looked up
    # THEN nothing is concluded
    assert ask(intel, "otx").verdict == "unknown"


def test_otx_asks_the_ipv6_section_for_an_ipv6_address(intel: FakeIntel) -> None:
    # GIVEN an IPv6 attacker
    intel.on("/indicators/", body=documented("otx_general_unknown"))

    # WHEN OTX is asked
    ask(intel, "otx", "2a0e:97c0:3e3:2a2::1")

    # THEN it used the IPv6 indicator path
    assert intel.requests[0].path == "/indicators/IPv6/2a0e%3A97c0%3A3e3%3A2a2%3A%3A1/general"


# --- failures: every provider, every way ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_provider_that_hangs_is_a_timeout_by_its_deadline(intel: FakeIntel, name: str) -> None:
    # GIVEN the provider accepts the connection and never answers
    intel.hang(PROVIDERS[name][1])
    started = time.monotonic()

    # WHEN it is asked with a 0.5 s deadline
    result = ask(intel, name, seconds=0.5)

    # THEN it returns a timeout, on time
    assert result.status is LookupStatus.TIMEOUT
    assert time.monotonic() - started < 1.5
    assert intel.count() == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_provider_answering_429_is_rate_limited(intel: FakeIntel, name: str) -> None:
    # GIVEN the provider is over its quota (VirusTotal's and AbuseIPDB's documented bodies; any body will do)
    body = documented("virustotal_quota_exceeded") if name == "virustotal" else documented("abuseipdb_rate_limited")
    intel.on(PROVIDERS[name][1], status=429, body=body)

    # WHEN it is asked
    result = ask(intel, name)

    # THEN that is recorded as rate limited
    assert result.status is LookupStatus.RATE_LIMITED
    assert "429" in result.summary


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(
    "raw",
    [b"<html>502 Bad Gateway</html>", b"{", b"[]", b'{"data": "x", "pulse_info": 7}', b"\x00\xff" * 10],
    ids=["html", "truncated", "list", "wrong-types", "binary"],
)
def test_a_provider_answering_garbage_failed_and_says_so(intel: FakeIntel, name: str, raw: bytes) -> None:
    # GIVEN the provider answers 200 with something that is not its documented shape
    intel.on(PROVIDERS[name][1], raw=raw)

    # WHEN it is asked
    result = ask(intel, name)

    # THEN the lookup failed with a reason instead of raising
    assert result.status is LookupStatus.FAILED
    assert "unreadable answer" in result.summary


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("status", [401, 500, 503])
def test_a_provider_refusing_or_erroring_failed(intel: FakeIntel, name: str, status: int) -> None:
    # GIVEN the provider refuses the key or errors
    intel.on(PROVIDERS[name][1], status=status, body={"error": "nope"})

    # WHEN it is asked
    result = ask(intel, name)

    # THEN the lookup failed and names the HTTP status
    assert result.status is LookupStatus.FAILED
    assert f"HTTP {status}" in result.summary


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_provider_that_is_down_failed(name: str) -> None:
    # GIVEN nothing listens where the provider should be
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    factory, _ = PROVIDERS[name]

    # WHEN it is asked
    result = factory(ProviderConfig(KEY, f"http://127.0.0.1:{port}")).lookup(ATTACKER, time.monotonic() + 1)

    # THEN the lookup failed: unreachable
    assert result.status is LookupStatus.FAILED
    assert "unreachable" in result.summary


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_redirect_is_not_followed_so_the_key_stays_with_the_provider(intel: FakeIntel, name: str) -> None:
    # GIVEN the provider answers with a redirect to another path of the server
    intel.on(PROVIDERS[name][1], status=302, body={})
    intel.answers[PROVIDERS[name][1]].raw = b""

    # WHEN it is asked
    result = ask(intel, name)

    # THEN the lookup failed and the redirect target was never asked
    assert result.status is LookupStatus.FAILED
    assert intel.count() == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_no_time_left_sends_nothing(intel: FakeIntel, name: str) -> None:
    # GIVEN the deadline has already passed
    # WHEN the provider is asked
    result = ask(intel, name, seconds=-1)

    # THEN it times out without a request
    assert result.status is LookupStatus.TIMEOUT
    assert intel.count() == 0


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_result_never_contains_the_key(intel: FakeIntel, name: str) -> None:
    # GIVEN documented answers for every provider
    for prefix, body in [
        ("/check", documented("abuseipdb_check")),
        ("/v3/community/", documented("greynoise_community_malicious")),
        ("/ip_addresses/", documented("virustotal_ip_address")),
        ("/indicators/", documented("otx_general")),
    ]:
        intel.on(prefix, body=body)

    # WHEN a provider answers and its result is serialised
    text = json.dumps(ask(intel, name).to_dict())

    # THEN the key is nowhere in it, nor in the provider's configuration repr
    assert KEY not in text
    assert KEY not in repr(ProviderConfig(KEY, intel.base_url))


# --- reverse DNS and configuration -------------------------------------------------------------------------------


def test_reverse_dns_names_the_host_printable_only() -> None:
    # GIVEN a PTR record with a control character in it (PTR records belong to the attacker)
    provider = ReverseDns(lambda address: ("scanner\n.example.net", [], [address]))

    # WHEN the address is looked up
    result = provider.lookup(ATTACKER, time.monotonic() + 1)

    # THEN the host name is reported without the control character, and gives no verdict
    assert (result.status, result.verdict) == (LookupStatus.OK, None)
    assert result.details["hostname"] == "scanner.example.net"


def test_reverse_dns_without_a_ptr_record_is_not_found() -> None:
    # GIVEN the resolver has no PTR record
    def missing(address: str) -> tuple[str, list[str], list[str]]:
        raise socket.herror(1, "Unknown host")

    # WHEN the address is looked up
    # THEN that is a definitive answer
    assert ReverseDns(missing).lookup(ATTACKER, time.monotonic() + 1).status is LookupStatus.NOT_FOUND


def test_reverse_dns_that_hangs_times_out_by_the_deadline() -> None:
    # GIVEN a resolver that does not answer
    release = threading.Event()

    def hanging(address: str) -> tuple[str, list[str], list[str]]:
        release.wait(10)
        return ("late.example.net", [], [address])

    started = time.monotonic()

    # WHEN the address is looked up with a 0.3 s deadline
    result = ReverseDns(hanging).lookup(ATTACKER, time.monotonic() + 0.3)
    release.set()

    # THEN the lookup returns a timeout on time
    assert result.status is LookupStatus.TIMEOUT
    assert time.monotonic() - started < 1.0


def test_only_providers_with_a_key_are_switched_on() -> None:
    # GIVEN keys for two providers, an empty one for a third and one for a provider nobody wrote
    configs = {
        "virustotal": ProviderConfig("k1"),
        "otx": ProviderConfig("k2"),
        "abuseipdb": ProviderConfig(""),
        "shodan": ProviderConfig("k3"),
    }

    # WHEN the providers are built
    # THEN exactly the two with a key and a factory exist
    assert sorted(provider.name for provider in configured(configs)) == ["otx", "virustotal"]
