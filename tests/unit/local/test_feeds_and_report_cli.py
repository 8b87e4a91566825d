"""`firebreak feeds sync` and `firebreak report --stix` on the embedded engine: output, exit statuses, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2

from firebreak_local.cli import main
from tests.support import ROOT

EXAMPLE = "events/sync_threat_feeds/local_feeds.json"
EXPECTED_IPV4 = [
    "185.220.101.0/24",
    "194.26.29.102/32",
    "45.155.205.233/32",
    "71.6.199.23/32",
    "89.248.165.0/24",
    "91.92.240.1/32",
    "91.92.241.0/24",
]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_feeds_sync_reports_each_run_and_a_second_run_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the bundled example configuration (plaintext, CSV and STIX files synced through the feed bucket)
    # WHEN it is synced twice with --json
    status = main(["feeds", "sync", "--json", EXAMPLE, EXAMPLE])
    document = json.loads(capsys.readouterr().out)

    # THEN both runs succeed, the first adds and the second changes nothing, and the sets hold the valid entries
    assert status == 0
    first, second = document["runs"]
    assert [(f["feed"], f["added"], f["rejected"]) for f in first["feeds"]] == [
        ("example-blocklist", 4, 4),
        ("example-scanners", 2, 1),
        ("example-stix", 3, 3),
    ]
    assert all((f["added"], f["removed"]) == (0, 0) for f in second["feeds"])
    assert "wafv2.UpdateIPSet" not in second["api_calls"]
    assert document["feed_ipsets"] == {"ipv4": EXPECTED_IPV4, "ipv6": ["2a06:4880::/32", "2a0e:97c0:3e3::/48"]}


def test_feeds_sync_names_an_unusable_file_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a configuration that breaks the schema, next to a missing file
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"feeds": [{"name": "x", "format": "csv", "url": "https://feeds.example/x.csv"}]}))
    # WHEN both are given
    status = main(["feeds", "sync", str(broken), str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    # THEN each gets one line naming it, no traceback, and the exit status is 2
    assert status == 2
    assert f"firebreak: {broken}: feed configuration breaks its schema" in err
    assert "missing.json: cannot read" in err
    assert "Traceback" not in err


def test_report_stix_prints_the_stored_bundle_by_finding_id(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the SSH brute force event, whose finding id is known from the event file
    event = "events/eventbridge/guardduty_ssh_brute_force.json"
    finding_id = json.loads((ROOT / event).read_text())["detail"]["id"]
    # WHEN its STIX bundle is asked for
    status = main(["report", finding_id, "--stix", "--events", event])
    out = capsys.readouterr().out
    # THEN stdout is only the bundle, and stix2 parses it
    assert status == 0
    bundle = stix2.parse(out, allow_custom=False)
    assert [o.pattern for o in bundle.objects if o.type == "indicator"] == ["[ipv4-addr:value = '45.155.205.233']"]


def test_report_stix_for_an_unknown_incident_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["report", "fb-nothing", "--stix", "--events", "events/eventbridge/guardduty_port_probe_low.json"])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert "no incident fb-nothing" in captured.err
