"""Verdicts on remote addresses from the finding, the stack's allow and deny lists and, when addresses may be shared,
reverse DNS and threat-intelligence providers asked concurrently under one deadline.

Precedence, per address:
1. not globally routable, or on the allow list: benign, score 0. Never blocked, never sent anywhere.
2. on the deny list: malicious, score 100. Blocked whatever else is known, never sent anywhere.
3. otherwise the highest level any source reaches (malicious > suspicious > unknown), scored by the highest score at
   that level. A provider can raise the verdict but never make it benign: the finding is itself evidence of an attack
   on this account, and a third party's opinion (which an attacker can influence) must not veto containment.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from firebreak.core.addresses import refusal_reason
from firebreak.core.models import Action, ActionType, Incident, Outcome, Verdict
from firebreak.core.settings import EnrichmentSettings, IpNetwork, Settings
from firebreak.intel.cache import CachedProvider, ResultCache
from firebreak.intel.providers import LookupStatus, Provider, ProviderResult, ReverseDns, configured
from firebreak.intel.remote_config import AddressLists, address_lists, provider_keys

GUARDS = "guards"
FINDING = "finding"
MAX_WORKERS = 16
WITHHELD = "third parties not asked: ShareAddressesWithThirdParties is false"
# Room left after the deadline for the answer to get back to Step Functions before the Lambda timeout.
RETURN_MARGIN_SECONDS = 2.0
# GuardDuty found these on a threat list, or saw them command a compromised host.
_MALICIOUS_MARKERS = ("MaliciousIPCaller", "TorIPCaller", "C&CActivity", "BlackholeTraffic", "DropPoint")
# The address was seen attacking this account: enough to block, not proof of a known-bad actor.
_SUSPICIOUS_MARKERS = ("BruteForce", "PortProbe", "PortSweep", "Recon:", "UnauthorizedAccess:")
_LEVELS = {"unknown": 0, "suspicious": 1, "malicious": 2}
_NAMES = {level: name for name, level in _LEVELS.items()}


@dataclass(frozen=True)
class Assessment:
    """One address: the verdict block_ip reads, and every source's full answer for the record and the message."""

    verdict: Verdict
    sources: tuple[ProviderResult, ...]
    notes: tuple[str, ...] = ()

    def reason(self) -> str:
        return f"{self.verdict.verdict} ({self.verdict.score}): " + "; ".join(self.verdict.evidence)

    def after(self) -> dict[str, Any]:
        """JSON-serialisable evidence per source; provider keys are never part of a result."""
        return {
            "verdict": self.verdict.verdict,
            "score": self.verdict.score,
            "sources": {result.provider: result.to_dict() for result in self.sources},
            "notes": list(self.notes),
        }

    def to_action(self) -> Action:
        return Action(ActionType.ENRICH_IP, self.verdict.address, Outcome.APPLIED, self.reason(), after=self.after())


@dataclass(frozen=True)
class Enrichment:
    """What Enrich Addresses returns: every address assessed, and what degraded the sources (for the log)."""

    assessments: tuple[Assessment, ...]
    problems: tuple[str, ...]
    limit: int

    def actions(self) -> list[Action]:
        """Evidence for the first `limit` addresses, one line for the rest: a thousand would burst 256 KiB."""
        actions = [assessment.to_action() for assessment in self.assessments[: self.limit]]
        rest = len(self.assessments) - self.limit
        if rest > 0:
            reason = f"evidence not kept: over the cap of {self.limit} addresses per incident (verdicts still given)"
            actions.append(Action(ActionType.ENRICH_IP, f"{rest} more addresses", Outcome.SKIPPED, reason))
        return actions

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdicts": [assessment.verdict.to_dict() for assessment in self.assessments],
            "actions": [action.to_dict() for action in self.actions()],
        }


def enrich(
    incident: Incident,
    settings: Settings,
    config: EnrichmentSettings,
    client: Callable[[str], Any],
    remaining_seconds: float,
) -> Enrichment:
    """Every remote address of the incident assessed by the configured deadline and within the time left."""
    deadline = time.monotonic() + min(config.deadline_seconds, remaining_seconds - RETURN_MARGIN_SECONDS)
    lists = address_lists(client("ssm"), config.allow_list_parameter, config.deny_list_parameter, settings.allow_list)
    providers, key_problems = sources(config, client)
    problems = (*lists.problems, *key_problems)
    notes = problems if config.share_with_third_parties else (*problems, WITHHELD)
    limit = settings.max_addresses_per_incident
    return Enrichment(tuple(assess_all(incident, lists, providers, deadline, limit, notes)), problems, limit)


def sources(config: EnrichmentSettings, client: Callable[[str], Any]) -> tuple[list[Provider], list[str]]:
    """Reverse DNS and every provider with a key, behind the cache, and what kept any off; none unless sharing is on."""
    if not config.share_with_third_parties:
        return [], []
    keys = provider_keys(client("secretsmanager"), config.provider_keys_secret)
    providers: list[Provider] = [ReverseDns(), *configured(keys.configs)]
    if config.cache_table:
        cache = ResultCache(client("dynamodb"), config.cache_table, config.cache_seconds)
        providers = [CachedProvider(provider, cache) for provider in providers]
    return providers, list(keys.problems)


def guard_result(address: str, lists: AddressLists) -> ProviderResult:
    """What the stack itself says: benign when unroutable or allow-listed, malicious when deny-listed, else nothing."""
    reason = refusal_reason(address, lists.allow)
    if reason is not None:
        allowed = reason.removeprefix("allow-listed by ") if reason.startswith("allow-listed by ") else None
        details = {"allow_list": allowed} if allowed else {}
        return ProviderResult(GUARDS, LookupStatus.OK, "benign", 0, reason, details)
    denied = _deny_match(address, lists.deny)
    if denied is not None:
        summary = f"deny-listed by {denied.with_prefixlen}"
        return ProviderResult(GUARDS, LookupStatus.OK, "malicious", 100, summary, {"deny_list": denied.with_prefixlen})
    return ProviderResult(GUARDS, LookupStatus.OK, summary="on neither the allow nor the deny list")


def finding_result(address: str, incident: Incident) -> ProviderResult:
    """GuardDuty's own judgement: its threat lists, the finding type, and its details of the address."""
    detail = next((d for d in incident.remote_ip_details if d.address == address), None)
    details: dict[str, Any] = {"finding_type": incident.finding_type, "threat_lists": list(incident.threat_lists)}
    if detail is not None:
        details.update(
            organization=detail.organization, asn=detail.asn, isp=detail.isp, country=detail.country, city=detail.city
        )
    summary = f"finding {incident.finding_type}"
    if incident.threat_lists:
        return ProviderResult(FINDING, LookupStatus.OK, "malicious", 95, summary, details)
    if any(marker in incident.finding_type for marker in _MALICIOUS_MARKERS):
        return ProviderResult(FINDING, LookupStatus.OK, "malicious", 90, summary, details)
    if any(marker in incident.finding_type for marker in _SUSPICIOUS_MARKERS):
        return ProviderResult(FINDING, LookupStatus.OK, "suspicious", 60, summary, details)
    return ProviderResult(FINDING, LookupStatus.OK, "unknown", 20, summary, details)


def judge(address: str, guard: ProviderResult, finding: ProviderResult, answers: Sequence[ProviderResult]) -> Verdict:
    """The verdict and its concise evidence, by the precedence in this module's docstring."""
    evidence = _evidence(guard, finding, answers)
    if guard.verdict is not None and guard.score is not None:
        return Verdict(address, guard.verdict, guard.score, evidence)
    votes = [finding] + [
        a for a in answers if a.status is LookupStatus.OK and a.verdict in _LEVELS and a.score is not None
    ]
    level = max(_LEVELS[str(vote.verdict)] for vote in votes)
    score = max(int(vote.score or 0) for vote in votes if _LEVELS[str(vote.verdict)] == level)
    return Verdict(address, _NAMES[level], score, evidence)


def assess_all(
    incident: Incident,
    lists: AddressLists,
    providers: Sequence[Provider],
    deadline: float,
    limit: int,
    notes: Iterable[str] = (),
) -> list[Assessment]:
    """Every remote address judged; providers are asked for at most `limit` addresses, all by `deadline`."""
    shared_notes = tuple(notes)
    guards = {address: guard_result(address, lists) for address in incident.remote_ips}
    undecided = [address for address, guard in guards.items() if guard.verdict is None]
    asked = undecided[:limit] if providers else []
    answers = ask_all([(address, provider) for address in asked for provider in providers], deadline)
    assessments = []
    for address in incident.remote_ips:
        guard, finding = guards[address], finding_result(address, incident)
        own = [answers[(address, provider.name)] for provider in providers if (address, provider.name) in answers]
        address_notes = shared_notes
        if providers and guard.verdict is None and address not in asked:
            address_notes += (f"providers not asked: over the cap of {limit} addresses per incident",)
        verdict = judge(address, guard, finding, own)
        assessments.append(Assessment(verdict, (guard, finding, *own), address_notes))
    return assessments


def ask_all(tasks: Sequence[tuple[str, Provider]], deadline: float) -> dict[tuple[str, str], ProviderResult]:
    """Every (address, provider) asked concurrently; whatever has not answered by the deadline is a timeout."""
    if not tasks:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(tasks)), thread_name_prefix="enrich")
    futures = {pool.submit(_ask, provider, address, deadline): (address, provider.name) for address, provider in tasks}
    done, _ = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    # Not a `with` block: leaving one joins every worker, and a provider that overran would hold containment up.
    pool.shutdown(wait=False, cancel_futures=True)
    results: dict[tuple[str, str], ProviderResult] = {}
    for future, (address, name) in futures.items():
        if future in done:
            results[(address, name)] = future.result()
        else:
            results[(address, name)] = ProviderResult(name, LookupStatus.TIMEOUT, summary=f"{name}: timed out")
    return results


def _ask(provider: Provider, address: str, deadline: float) -> ProviderResult:
    try:
        return provider.lookup(address, deadline)
    except Exception as error:  # noqa: BLE001 - a provider is code answering from the internet; its bug is evidence
        return ProviderResult(provider.name, LookupStatus.FAILED, summary=f"{provider.name}: {type(error).__name__}")


def _evidence(guard: ProviderResult, finding: ProviderResult, answers: Sequence[ProviderResult]) -> tuple[str, ...]:
    lines = [guard.summary] if guard.verdict is not None else [finding.summary]
    threat_lists = finding.details.get("threat_lists") or []
    if threat_lists:
        lines.append("on GuardDuty threat list " + ", ".join(threat_lists))
    lines.append(_describe(finding.details))
    lines += [answer.summary for answer in answers if answer.status is not LookupStatus.NOT_ASKED]
    return tuple(line for line in lines if line)


def _describe(details: Mapping[str, Any]) -> str:
    # GuardDuty writes "-1" for an ASN it does not know.
    asn = details.get("asn")
    parts = (details.get("organization"), f"AS{asn}" if asn and asn != "-1" else None, details.get("country"))
    return ", ".join(part for part in parts if part)


def _deny_match(address: str, deny: Iterable[IpNetwork]) -> IpNetwork | None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return next((network for network in deny if network.version == ip.version and ip in network), None)
