"""Crafted events from someone who can write Security Hub findings or control strings GuardDuty copies into findings.

Every event runs through `firebreak run --json` (cli.main in-process, one engine for all). Each one is accounted for:
refused as unusable with a one-line reason (not JSON, or past EventBridge's 256 KB event limit, which PutEvents
refuses before any rule sees it), IGNORED by the rules, REJECTED with a record and a notification, or handled with the
guards holding. Never a traceback, never a range blocked, never a subject SNS would refuse, never markup or control
characters in what the responders read: the notification is plain text (no HTML part), so "rendering" means
characters reaching the reader, which are checked here.
"""

from __future__ import annotations

import contextlib
import copy
import io
import ipaddress
import itertools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import IncidentStatus
from firebreak.core.settings import Settings
from firebreak.incident.notifications import sns_message, subject
from firebreak.triage import decision
from firebreak.triage.findings import normalise
from firebreak_local.cli import main
from tests.support import ROOT, load_event, once_per_run

Event = dict[str, Any]
MARKUP = "<script>alert(1)</script><img src=x onerror=alert(2)>"
CONTROL = "\x00\x07\x1b[31m\r\n\u202e\u2028"
EVENTBRIDGE_LIMIT = 256 * 1024


_IDS = itertools.count()


def gd() -> Event:
    """The SSH brute-force sample with a finding id of its own, so no crafted event is a mere duplicate."""
    event = copy.deepcopy(load_event("eventbridge/guardduty_ssh_brute_force"))
    event["detail"]["id"] = f"hostile{next(_IDS):025d}"
    return event


def probe() -> Event:
    event = copy.deepcopy(load_event("eventbridge/guardduty_port_probe_high"))
    event["detail"]["id"] = f"hostile{next(_IDS):025d}"
    return event


def asff() -> Event:
    event = copy.deepcopy(load_event("eventbridge/securityhub_custom_action"))
    event["detail"]["findings"][0]["Id"] += f"/hostile-{next(_IDS)}"
    return event


def remote(event: Event) -> dict[str, Any]:
    return event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]  # type: ignore[no-any-return]


def edit(base: Callable[[], Event], change: Callable[[Event], Any]) -> Event:
    event = base()
    change(event)
    return event


def set_ip(value: Any) -> Callable[[Event], Any]:
    return lambda event: remote(event).update(ipAddressV4=value)


def set_detail(key: str, value: Any) -> Callable[[Event], Any]:
    return lambda event: event["detail"].update({key: value})


def add_tag(key: Any, value: Any) -> Callable[[Event], Any]:
    return lambda event: event["detail"]["resource"]["instanceDetails"]["tags"].append({"key": key, "value": value})


def many_probes(count: int, v6: bool = False) -> Callable[[Event], Any]:
    def change(event: Event) -> None:
        details = event["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"]
        template = details[0]
        details[:] = []
        for n in range(count):
            entry = copy.deepcopy(template)
            address = (
                f"2a03:2880:f{n // 65536:03x}:{n % 65536:x}::1"
                if v6
                else f"{45 + n // 65536}.{n // 256 % 256}.{n % 256}.7"
            )
            entry["remoteIpDetails"] = {"ipAddressV6" if v6 else "ipAddressV4": address}
            details.append(entry)

    return change


HOSTILE: dict[str, Event | str] = {
    # --- volume (first: the circuit breaker's address budget, 375 an hour, must not be what stops them)
    "probes_2000_v4_oversized": edit(probe, many_probes(2000)),
    "probes_1400_v4": edit(probe, many_probes(1400)),
    "probes_1500_v6": edit(probe, many_probes(1500, v6=True)),
    # --- unusable files: refused before anything runs
    "truncated_json": json.dumps(gd())[:500],
    "empty_file": "",
    "json_array": "[1, 2, 3]",
    "no_detail": json.dumps({"source": "aws.guardduty", "detail-type": "GuardDuty Finding"}),
    "oversized_title": edit(gd, set_detail("title", "A" * (EVENTBRIDGE_LIMIT + 10))),
    "oversized_padding": edit(gd, lambda e: e["detail"]["service"].update(padding=["x" * 1000] * 300)),
    # --- wrong types and impossible values
    "severity_negative": edit(gd, set_detail("severity", -5)),
    "severity_huge": edit(gd, set_detail("severity", 1e308)),
    "severity_string": edit(gd, set_detail("severity", "8")),
    "severity_bool": edit(gd, set_detail("severity", True)),
    "severity_nan_like": edit(gd, set_detail("severity", 11)),
    "id_number": edit(gd, set_detail("id", 12345)),
    "id_empty": edit(gd, set_detail("id", "")),
    "id_control": edit(gd, set_detail("id", "abc\x00def")),
    "id_huge": edit(gd, set_detail("id", "f" * 5000)),
    "account_wrong": edit(gd, set_detail("accountId", "12345")),
    "region_markup": edit(gd, set_detail("region", MARKUP)),
    "resource_list": edit(gd, set_detail("resource", [])),
    "service_string": edit(gd, set_detail("service", "oops")),
    "tags_not_list": edit(gd, lambda e: e["detail"]["resource"]["instanceDetails"].update(tags="a=b")),
    "instance_id_markup": edit(gd, lambda e: e["detail"]["resource"]["instanceDetails"].update(instanceId=MARKUP)),
    "count_negative": edit(gd, lambda e: e["detail"]["service"].update(count=-1)),
    "sample_string": edit(gd, lambda e: e["detail"]["service"]["additionalInfo"].update(sample="true")),
    "probe_details_object": edit(
        probe, lambda e: e["detail"]["service"]["action"]["portProbeAction"].update(portProbeDetails={})
    ),
    # --- markup and control characters in strings that reach the responders
    "type_markup": edit(gd, set_detail("type", "UnauthorizedAccess:EC2/SSHBruteForce" + MARKUP)),
    "type_control": edit(gd, set_detail("type", "UnauthorizedAccess:EC2/SSHBruteForce\r\nBcc: x@evil")),
    "title_markup": edit(gd, set_detail("title", MARKUP * 3)),
    "title_control": edit(gd, set_detail("title", "brute force" + CONTROL * 5)),
    "description_markup": edit(gd, set_detail("description", MARKUP)),
    "org_markup": edit(gd, lambda e: remote(e)["organization"].update(org=MARKUP, isp=CONTROL)),
    "city_control": edit(gd, lambda e: remote(e).update(city={"cityName": CONTROL * 40})),
    "tag_value_markup": edit(gd, add_tag("Name", MARKUP)),
    "tag_value_too_long": edit(gd, add_tag("Owner", "v" * 300)),
    "tag_key_control": edit(gd, add_tag("k\x00ey", "v")),
    "tag_key_not_string": edit(gd, add_tag(7, "v")),
    "exempt_tag_padded": edit(gd, add_tag("firebreak:exempt", " true ")),
    # --- addresses that must never be blocked as given
    "ip_any_cidr": edit(gd, set_ip("0.0.0.0/0")),
    "ip_cidr_16": edit(gd, set_ip("45.155.0.0/16")),
    "ip_unspecified": edit(gd, set_ip("0.0.0.0")),
    "ip_broadcast": edit(gd, set_ip("255.255.255.255")),
    "ip_private": edit(gd, set_ip("10.1.2.3")),
    "ip_loopback": edit(gd, set_ip("127.0.0.1")),
    "ip_cgnat": edit(gd, set_ip("100.64.1.1")),
    "ip_documentation": edit(gd, set_ip("203.0.113.9")),
    "ip_v4_mapped_v6": edit(gd, lambda e: remote(e).update(ipAddressV4=None, ipAddressV6="::ffff:45.155.205.233")),
    "ip_v4_mapped_private": edit(gd, lambda e: remote(e).update(ipAddressV4=None, ipAddressV6="::ffff:10.0.0.1")),
    "ip_v6_range": edit(gd, lambda e: remote(e).update(ipAddressV4=None, ipAddressV6="2a03:2880::/32")),
    "ip_v6_zone": edit(gd, lambda e: remote(e).update(ipAddressV4=None, ipAddressV6="fe80::1%eth0")),
    "ip_number": edit(gd, set_ip(760073705)),
    "ip_markup": edit(gd, set_ip(MARKUP)),
    "ip_leading_zeros": edit(gd, set_ip("045.155.205.233")),
    # --- Security Hub findings
    "asff_label_lowercase": edit(asff, lambda e: e["detail"]["findings"][0]["Severity"].update(Label="critical")),
    "asff_two_findings": edit(
        asff, lambda e: e["detail"]["findings"].append(copy.deepcopy(e["detail"]["findings"][0]))
    ),
    "asff_no_findings": edit(asff, lambda e: e["detail"].update(findings=[])),
    "asff_title_markup": edit(asff, lambda e: e["detail"]["findings"][0].update(Title=MARKUP + CONTROL)),
    "asff_normalized_huge": edit(asff, lambda e: e["detail"]["findings"][0]["Severity"].update(Normalized=10**400)),
}
UNUSABLE = {
    "truncated_json",
    "empty_file",
    "json_array",
    "no_detail",
    "oversized_title",
    "oversized_padding",
    "probes_2000_v4_oversized",
}
NOT_SUBJECT_SAFE = re.compile(r"[^\x20-\x7e]")
READER_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")


def write(directory: Path, name: str, event: Event | str) -> str:
    path = directory / f"{name}.json"
    path.write_text(event if isinstance(event, str) else json.dumps(event))
    return str(path)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `firebreak run --json` over every crafted event: exit status, the JSON report and stderr (one run for
    every worker of the suite: the tests read events by their names, never by where they were written)."""

    def run() -> dict[str, Any]:
        directory = tmp_path_factory.mktemp("hostile")
        files = [write(directory, name, event) for name, event in HOSTILE.items()]
        out, err = io.StringIO(), io.StringIO()
        cwd, environment = Path.cwd(), dict(os.environ)
        os.chdir(ROOT)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = main(["run", "--json", *files])
        finally:
            # Module-scoped, so the per-test restore does not cover the engine's environment: restore it here.
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(environment)
        return {"status": status, "document": json.loads(out.getvalue()), "stderr": err.getvalue()}

    result: dict[str, Any] = once_per_run(tmp_path_factory, "hostile-input-run", run)
    return result


def results(outcome: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(item["event_file"]).stem: item for item in outcome["document"]["results"]}


def test_at_least_forty_crafted_events() -> None:
    assert len(HOSTILE) >= 40


def test_every_event_is_accounted_for_and_none_crashes(outcome: dict[str, Any]) -> None:
    # GIVEN the crafted events WHEN they run through `firebreak run --json`
    lines = [line for line in outcome["stderr"].splitlines() if line.startswith("firebreak: ")]
    refused = {Path(line.split(": ", 2)[1]).stem for line in lines}

    # THEN each is refused with one line or has a result, there is no traceback, and the exit status says so
    assert refused == UNUSABLE
    assert set(results(outcome)) == set(HOSTILE) - UNUSABLE
    assert "Traceback" not in outcome["stderr"]
    assert outcome["status"] == 2
    oversized = [line for line in lines if "256 KB" in line]
    assert len(oversized) == 3  # the two padded findings and 2,000 probes: EventBridge refuses them


def test_unreadable_findings_are_rejected_and_the_rest_never_fail(outcome: dict[str, Any]) -> None:
    statuses = {name: item["status"] for name, item in results(outcome).items()}
    rejected = {name for name, status in statuses.items() if status == "REJECTED"}
    assert {"severity_negative", "severity_huge", "severity_string", "id_control", "ip_number"} <= rejected
    assert {name for name, status in statuses.items() if status == "IGNORED"} == {"type_markup", "type_control"}
    assert "FAILED" not in statuses.values()
    assert statuses["probes_1400_v4"] == statuses["probes_1500_v6"] == "CONTAINED"


def test_no_range_or_unsafe_address_is_ever_blocked(outcome: dict[str, Any]) -> None:
    blocked = outcome["document"]["world"]["blocked_ips"]
    for cidr in blocked:
        network = ipaddress.ip_network(cidr)
        assert network.prefixlen == network.max_prefixlen, cidr
        assert network.network_address.is_global, cidr
    # the IPv4-mapped spelling is blocked as the IPv4 address it is; the thousands of probes only up to the cap
    assert "45.155.205.233/32" in blocked
    assert len([cidr for cidr in blocked if cidr.startswith("2a03:")]) == 50


def test_every_triggered_event_is_told_once_with_a_subject_sns_accepts(outcome: dict[str, Any]) -> None:
    triggered = [item for item in results(outcome).values() if item["triggered"]]
    notifications = outcome["document"]["world"]["notifications"]
    # Past a circuit breaker budget (default 20 workloads, 375 addresses) it alerts once, then each finding asks for
    # approval; this crowd fits the address budget, so at most the workload budget trips.
    alerts = [n for n in notifications if n["subject"].startswith("Firebreak ALERT: circuit breaker open")]
    assert len(alerts) <= 1
    assert len(notifications) - len(alerts) == len(triggered)
    for notification in notifications:
        assert len(notification["subject"]) < 100
        assert not NOT_SUBJECT_SAFE.search(notification["subject"]), notification["subject"]


@pytest.mark.parametrize("name", sorted(name for name, event in HOSTILE.items() if name not in UNUSABLE))
def test_readable_summary_carries_no_control_characters_and_is_plain_text(name: str) -> None:
    # GIVEN a crafted event that can be read as a finding
    event = HOSTILE[name]
    assert isinstance(event, dict)
    try:
        incident = normalise(event)
    except FindingRejected:
        return
    triage = decision.triage(incident, Settings.from_env())

    # WHEN the responders' message is built
    message = json.loads(sns_message(IncidentStatus.NOTIFIED, triage, (), "arn:aws:states:::execution:x"))

    # THEN it is plain text (no HTML part for a client to render), with no control or bidi characters, and bounded
    assert set(message) == {"default", "email", "sqs", "lambda", "https"}
    assert not READER_UNSAFE.search(message["email"]), repr(message["email"])
    assert len(message["email"].encode()) < 250_000
    assert not NOT_SUBJECT_SAFE.search(subject(IncidentStatus.NOTIFIED, triage))
