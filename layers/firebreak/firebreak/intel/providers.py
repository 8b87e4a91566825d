"""Threat-intelligence sources behind one small interface: each answers for one address by a deadline and never raises.

A provider is anything with a `name` and `lookup(address, deadline) -> ProviderResult`, where `deadline` is a
`time.monotonic()` instant. Built-in: AbuseIPDB (v2 check), GreyNoise (v3 community), VirusTotal (v3 ip_addresses),
AlienVault OTX (v1 indicators, general section) and reverse DNS. Add your own by writing such a class and a factory
in `FACTORIES`; its key (and optional base URL) then comes from the provider-keys secret like the others.

How an answer maps to this provider's own verdict and score (0-100; malicious >= 75, suspicious 25-74):

| provider | malicious | suspicious | benign |
|---|---|---|---|
| AbuseIPDB | confidence >= 75 | confidence >= 25 | whitelisted |
| GreyNoise | classification malicious (80) | seen mass-scanning, `noise` (40) | RIOT or classification benign |
| VirusTotal | >= 3 engines say malicious | any engine says malicious or suspicious | engines answered, none flagged |
| OTX | >= 5 pulses | 1-4 pulses | - |

Reverse DNS gives context (the host name), never a verdict.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

MAX_ANSWER_BYTES = 2_000_000
_TEXT_LIMIT = 200


class LookupStatus(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"
    NOT_ASKED = "not_asked"


# Only definitive answers are cached: a timeout or a 429 must be asked again next time.
CACHEABLE = frozenset({LookupStatus.OK, LookupStatus.NOT_FOUND})


@dataclass(frozen=True)
class ProviderResult:
    """One source's answer about one address: its own verdict and score, a short summary and a few details."""

    provider: str
    status: LookupStatus
    verdict: str | None = None
    score: int | None = None
    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False
    elapsed_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "status": self.status.value,
            "verdict": self.verdict,
            "score": self.score,
            "summary": self.summary,
            "details": dict(self.details),
            "cached": self.cached,
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderResult:
        return cls(
            provider=str(data["provider"]),
            status=LookupStatus(data["status"]),
            verdict=data.get("verdict"),
            score=None if data.get("score") is None else int(data["score"]),
            summary=str(data.get("summary") or ""),
            details=dict(data.get("details") or {}),
            cached=bool(data.get("cached")),
            elapsed_ms=int(data.get("elapsed_ms") or 0),
        )


class Provider(Protocol):
    """A source of intelligence about an address; lookup answers by `deadline` (time.monotonic) and never raises."""

    name: str

    def lookup(self, address: str, deadline: float) -> ProviderResult: ...


@dataclass(frozen=True)
class ProviderConfig:
    """What the provider-keys secret says about one provider; the key never appears in a repr or a log."""

    key: str = field(repr=False)
    base_url: str | None = None


class InvalidAnswer(ValueError):
    """The provider answered, but not in the documented shape."""


def clean_text(value: Any, limit: int = _TEXT_LIMIT) -> str | None:
    """Printable text cut to limit: provider answers and PTR records are attacker-influenced and end up in emails."""
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidAnswer(f"expected text, got {type(value).__name__}")
    return "".join(ch for ch in str(value) if ch.isprintable())[:limit]


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidAnswer(f"{what} is not an object")
    return value


def _count(value: Any, what: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidAnswer(f"{what} is not a non-negative integer")
    return value


def _flag(value: Any) -> bool:
    return value is True


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidAnswer(f"{what} is not a boolean")
    return value


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the API key header to whatever host the answer names.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy from the environment: a lookup goes straight to the provider's base URL and nowhere else.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _RefuseRedirects())
_Parser = Callable[[int, Any], ProviderResult]


def http_lookup(name: str, url: str, headers: Mapping[str, str], deadline: float, parse: _Parser) -> ProviderResult:
    """GET url as JSON within the deadline; a timeout, a 429, a failure or garbage becomes a result, never an error."""
    started = time.monotonic()
    result = _http_lookup(name, url, headers, deadline, parse)
    return replace(result, elapsed_ms=int((time.monotonic() - started) * 1000))


def _http_lookup(name: str, url: str, headers: Mapping[str, str], deadline: float, parse: _Parser) -> ProviderResult:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return ProviderResult(name, LookupStatus.TIMEOUT, summary=f"{name}: no time left before the deadline")
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "firebreak", **headers})
    try:
        with _OPENER.open(request, timeout=remaining) as response:
            status, raw = response.status, response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:
        status, raw = error.code, _error_body(error)
    except TimeoutError:
        return ProviderResult(name, LookupStatus.TIMEOUT, summary=f"{name}: timed out")
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            return ProviderResult(name, LookupStatus.TIMEOUT, summary=f"{name}: timed out")
        return ProviderResult(name, LookupStatus.FAILED, summary=f"{name}: unreachable ({type(error.reason).__name__})")
    except (OSError, http.client.HTTPException) as error:
        return ProviderResult(name, LookupStatus.FAILED, summary=f"{name}: connection failed ({type(error).__name__})")
    if status == 429:
        return ProviderResult(name, LookupStatus.RATE_LIMITED, summary=f"{name}: rate limited (HTTP 429)")
    if len(raw) > MAX_ANSWER_BYTES:
        return ProviderResult(name, LookupStatus.FAILED, summary=f"{name}: answer too large")
    try:
        return parse(status, json.loads(raw) if raw.strip() else None)
    except ValueError as error:
        # json.JSONDecodeError and InvalidAnswer are both ValueErrors: the answer was garbage.
        return ProviderResult(
            name,
            LookupStatus.FAILED,
            summary=f"{name}: unreadable answer (HTTP {status})",
            details={"error": str(error)[:200]},
        )


def _error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(MAX_ANSWER_BYTES + 1)
    except (OSError, http.client.HTTPException):
        return b""


def _unexpected(name: str, status: int) -> ProviderResult:
    reason = "key refused" if status in (401, 403) else "unexpected answer"
    return ProviderResult(name, LookupStatus.FAILED, summary=f"{name}: {reason} (HTTP {status})")


def _base(config: ProviderConfig, default: str) -> str:
    return (config.base_url or default).rstrip("/")


class AbuseIpDb:
    """AbuseIPDB APIv2 `GET /check`: the community's abuse confidence score (0-100) and report count."""

    name = "abuseipdb"
    DEFAULT_BASE_URL = "https://api.abuseipdb.com/api/v2"

    def __init__(self, config: ProviderConfig, max_age_days: int = 90) -> None:
        self._config = config
        self._base_url = _base(config, self.DEFAULT_BASE_URL)
        self._max_age_days = max_age_days

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        query = urllib.parse.urlencode({"ipAddress": address, "maxAgeInDays": self._max_age_days})
        return http_lookup(
            self.name, f"{self._base_url}/check?{query}", {"Key": self._config.key}, deadline, self.parse
        )

    def parse(self, status: int, body: Any) -> ProviderResult:
        if status != 200:
            return _unexpected(self.name, status)
        data = _object(_object(body, "answer").get("data"), "data")
        score = _count(data.get("abuseConfidenceScore"), "abuseConfidenceScore")
        if score > 100:
            raise InvalidAnswer("abuseConfidenceScore is above 100")
        reports = _count(data.get("totalReports"), "totalReports", default=0)
        whitelisted, tor = _flag(data.get("isWhitelisted")), _flag(data.get("isTor"))
        if whitelisted:
            verdict = "benign"
        elif score >= 75:
            verdict = "malicious"
        elif score >= 25:
            verdict = "suspicious"
        else:
            verdict = "unknown"
        summary = f"AbuseIPDB confidence {score}/100, {reports} reports" + (", Tor exit" if tor else "")
        details = {
            "abuse_confidence_score": score,
            "total_reports": reports,
            "distinct_users": _count(data.get("numDistinctUsers"), "numDistinctUsers", default=0),
            "is_whitelisted": whitelisted,
            "is_tor": tor,
            "usage_type": clean_text(data.get("usageType")),
            "isp": clean_text(data.get("isp")),
            "domain": clean_text(data.get("domain")),
            "country_code": clean_text(data.get("countryCode"), 8),
            "last_reported_at": clean_text(data.get("lastReportedAt"), 40),
        }
        return ProviderResult(self.name, LookupStatus.OK, verdict, score, summary, details)


class GreyNoise:
    """GreyNoise v3 Community API `GET /v3/community/{ip}`: mass scanner (noise), known-good service (RIOT)."""

    name = "greynoise"
    DEFAULT_BASE_URL = "https://api.greynoise.io"

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._base_url = _base(config, self.DEFAULT_BASE_URL)

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        if ipaddress.ip_address(address).version != 4:
            return ProviderResult(self.name, LookupStatus.UNSUPPORTED, summary="GreyNoise: IPv4 only")
        url = f"{self._base_url}/v3/community/{address}"
        return http_lookup(self.name, url, {"key": self._config.key}, deadline, self.parse)

    def parse(self, status: int, body: Any) -> ProviderResult:
        if status == 404:
            # GreyNoise answers 404, with a JSON message, for an address it has never seen.
            message = clean_text(_object(body, "answer").get("message")) if isinstance(body, Mapping) else None
            return ProviderResult(
                self.name, LookupStatus.NOT_FOUND, summary="GreyNoise: not observed", details={"message": message}
            )
        if status != 200:
            return _unexpected(self.name, status)
        data = _object(body, "answer")
        classification = clean_text(data.get("classification"), 32) or ""
        # noise and riot are in every community answer; without them this is not GreyNoise talking.
        noise, riot = _boolean(data.get("noise"), "noise"), _boolean(data.get("riot"), "riot")
        name = clean_text(data.get("name"))
        verdict: str | None
        if classification == "malicious":
            verdict, score, summary = "malicious", 80, "GreyNoise: malicious"
        elif riot or classification == "benign":
            verdict, score, summary = "benign", 0, f"GreyNoise: benign ({name or 'known service'})"
        elif noise:
            verdict, score, summary = "suspicious", 40, "GreyNoise: mass internet scanner"
        else:
            verdict, score, summary = "unknown", None, f"GreyNoise: {classification or 'no classification'}"
        details = {
            "classification": classification or None,
            "noise": noise,
            "riot": riot,
            "name": name,
            "last_seen": clean_text(data.get("last_seen"), 40),
            "link": clean_text(data.get("link")),
        }
        return ProviderResult(self.name, LookupStatus.OK, verdict, score, summary, details)


class VirusTotal:
    """VirusTotal API v3 `GET /ip_addresses/{ip}`: how many engines flag the address (last_analysis_stats)."""

    name = "virustotal"
    DEFAULT_BASE_URL = "https://www.virustotal.com/api/v3"

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._base_url = _base(config, self.DEFAULT_BASE_URL)

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        url = f"{self._base_url}/ip_addresses/{urllib.parse.quote(address)}"
        return http_lookup(self.name, url, {"x-apikey": self._config.key}, deadline, self.parse)

    def parse(self, status: int, body: Any) -> ProviderResult:
        if status == 404:
            return ProviderResult(self.name, LookupStatus.NOT_FOUND, summary="VirusTotal: no report")
        if status != 200:
            return _unexpected(self.name, status)
        attributes = _object(_object(_object(body, "answer").get("data"), "data").get("attributes"), "attributes")
        stats = _object(attributes.get("last_analysis_stats"), "last_analysis_stats")
        malicious = _count(stats.get("malicious"), "malicious", default=0)
        suspicious = _count(stats.get("suspicious"), "suspicious", default=0)
        harmless = _count(stats.get("harmless"), "harmless", default=0)
        undetected = _count(stats.get("undetected"), "undetected", default=0)
        engines = malicious + suspicious + harmless + undetected
        verdict: str
        if malicious >= 3:
            verdict, score = "malicious", min(100, 70 + 5 * malicious)
        elif malicious + suspicious >= 1:
            verdict, score = "suspicious", min(74, 30 + 10 * (malicious + suspicious))
        else:
            verdict, score = ("benign" if harmless else "unknown"), 0
        reputation = attributes.get("reputation")
        details = {
            "malicious": malicious,
            "suspicious": suspicious,
            "harmless": harmless,
            "undetected": undetected,
            "reputation": reputation if isinstance(reputation, int) and not isinstance(reputation, bool) else None,
            "as_owner": clean_text(attributes.get("as_owner")),
            "country": clean_text(attributes.get("country"), 8),
        }
        summary = f"VirusTotal: {malicious} malicious, {suspicious} suspicious of {engines} engines"
        return ProviderResult(self.name, LookupStatus.OK, verdict, score, summary, details)


class Otx:
    """AlienVault OTX API v1 `GET /indicators/{IPv4|IPv6}/{ip}/general`: the pulses that name the address."""

    name = "otx"
    DEFAULT_BASE_URL = "https://otx.alienvault.com/api/v1"

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._base_url = _base(config, self.DEFAULT_BASE_URL)

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        section = "IPv4" if ipaddress.ip_address(address).version == 4 else "IPv6"
        url = f"{self._base_url}/indicators/{section}/{urllib.parse.quote(address)}/general"
        return http_lookup(self.name, url, {"X-OTX-API-KEY": self._config.key}, deadline, self.parse)

    def parse(self, status: int, body: Any) -> ProviderResult:
        if status == 404:
            return ProviderResult(self.name, LookupStatus.NOT_FOUND, summary="OTX: unknown address")
        if status != 200:
            return _unexpected(self.name, status)
        pulse_info = _object(_object(body, "answer").get("pulse_info"), "pulse_info")
        pulses = _count(pulse_info.get("count"), "pulse_info.count")
        listed = pulse_info.get("pulses")
        names = [
            clean_text(pulse.get("name"), 80)
            for pulse in (listed if isinstance(listed, list) else [])[:3]
            if isinstance(pulse, Mapping)
        ]
        verdict: str
        if pulses >= 5:
            verdict, score = "malicious", min(100, 70 + pulses)
        elif pulses >= 1:
            verdict, score = "suspicious", 25 + 10 * pulses
        else:
            verdict, score = "unknown", 0
        details = {"pulses": pulses, "pulse_names": [name for name in names if name]}
        return ProviderResult(self.name, LookupStatus.OK, verdict, score, f"OTX: {pulses} pulses", details)


Resolver = Callable[[str], tuple[str, list[str], list[str]]]


class ReverseDns:
    """The address's PTR record, resolved in a thread so the lookup returns by its deadline whatever DNS does.

    A PTR query is answered by the DNS servers of whoever holds the address block, often the attacker: asking is
    disclosure, so reverse DNS runs only when addresses may be shared with third parties.
    """

    name = "reverse_dns"

    def __init__(self, resolve: Resolver | None = None) -> None:
        self._resolve = resolve

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        started = time.monotonic()
        answer: dict[str, Any] = {}
        resolve = self._resolve or socket.gethostbyaddr

        def run() -> None:
            try:
                answer["hostname"] = resolve(address)[0]
            except (socket.herror, socket.gaierror):
                answer["missing"] = True
            except (OSError, ValueError) as error:
                answer["error"] = type(error).__name__

        worker = threading.Thread(target=run, name=f"reverse-dns-{address}", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if worker.is_alive() or not answer:
            return ProviderResult(self.name, LookupStatus.TIMEOUT, summary="rDNS: timed out", elapsed_ms=elapsed_ms)
        if "error" in answer:
            summary = f"rDNS: failed ({answer['error']})"
            return ProviderResult(self.name, LookupStatus.FAILED, summary=summary, elapsed_ms=elapsed_ms)
        if "missing" in answer:
            return ProviderResult(
                self.name, LookupStatus.NOT_FOUND, summary="rDNS: no PTR record", elapsed_ms=elapsed_ms
            )
        hostname = clean_text(answer["hostname"], 253) or ""
        return ProviderResult(
            self.name,
            LookupStatus.OK,
            summary=f"rDNS {hostname}",
            details={"hostname": hostname},
            elapsed_ms=elapsed_ms,
        )


# Providers a user can switch on by putting a key for them in the provider-keys secret; add your own here.
FACTORIES: dict[str, Callable[[ProviderConfig], Provider]] = {
    AbuseIpDb.name: AbuseIpDb,
    GreyNoise.name: GreyNoise,
    VirusTotal.name: VirusTotal,
    Otx.name: Otx,
}


def configured(configs: Mapping[str, ProviderConfig]) -> list[Provider]:
    """A provider for every factory that has a key; one without a key is disabled."""
    return [factory(configs[name]) for name, factory in FACTORIES.items() if name in configs and configs[name].key]
