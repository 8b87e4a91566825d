"""Feed configuration schema, parsers and the guards every feed entry passes before it may be blocked."""

from __future__ import annotations

import ipaddress
import json

import pytest

from firebreak.core.errors import FeedConfigInvalid, FeedParseFailed
from firebreak.feeds.config import Candidate, FeedSettings, network_refusal, parse_config, screen
from firebreak.feeds.formats import parse_csv, parse_plaintext
from firebreak.feeds.sync import admit

SETTINGS = FeedSettings(allow_list=(ipaddress.ip_network("185.220.0.0/16"), ipaddress.ip_network("2a01:4f8::/32")))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("45.155.205.10", None),
        ("91.92.241.0/24", None),
        ("2a0e:97c0:3e3::/48", None),
        ("10.1.2.3", "not a globally routable address"),
        ("100.64.0.0/16", "overlaps the non-global range 100.64.0.0/10"),
        ("203.0.0.0/16", "overlaps the non-global range 203.0.113.0/24"),
        ("8.0.0.0/8", "/8 is broader than the /16 a feed may block"),
        ("0.0.0.0/0", "/0 is broader than the /16 a feed may block"),
        ("2a00::/16", "/16 is broader than the /32 a feed may block"),
        ("185.220.101.7", "allow-listed by 185.220.0.0/16"),
        ("185.0.0.0/12", "/12 is broader than the /16 a feed may block"),
        ("185.220.101.0/24", "overlaps allow-listed 185.220.0.0/16"),
        ("2a01:4f8:1c17::/48", "overlaps allow-listed 2a01:4f8::/32"),
        ("185.221.0.5/24", "host bits set: not a network address"),
        ("fe80::1%eth0", "not an IP address or CIDR"),
        ("example.com", "not an IP address or CIDR"),
        ("::1", "special-purpose address"),
    ],
)
def test_network_refusal_applies_the_incident_guards_to_ranges(value: str, reason: str | None) -> None:
    _, refused = network_refusal(value, SETTINGS)
    assert refused == reason


def test_screen_deduplicates_canonically_and_caps_the_feed() -> None:
    # GIVEN the same address three ways and more entries than the cap
    candidates = [
        Candidate(v, f"line {i}")
        for i, v in enumerate(["45.155.205.10", "45.155.205.10/32", "80.82.77.33", "71.6.199.23"])
    ]
    # WHEN screened with a cap of 2
    screened = screen(candidates, SETTINGS, cap=2)
    # THEN one entry per network, and the third distinct one is refused for the cap
    assert screened.accepted == ("45.155.205.10/32", "80.82.77.33/32")
    assert [(r.value, r.reason) for r in screened.rejections] == [("71.6.199.23", "over the feed's cap of 2 entries")]


def test_admit_keeps_what_is_there_before_taking_new_entries_up_to_the_ceiling() -> None:
    # GIVEN an IPSet ceiling of 3, one entry from another feed and one this feed already holds
    kept, full = admit(["1.1.1.1/32", "2.2.2.2/32", "3.3.3.3/32"], {"3.3.3.3/32"}, {"9.9.9.9/32"}, ceiling=3)
    # THEN the held entry stays and only one new entry fits
    assert kept == ["1.1.1.1/32", "3.3.3.3/32"]
    assert full == ["2.2.2.2/32"]


def test_plaintext_reads_comments_and_marks_lines_with_extra_words() -> None:
    parsed = parse_plaintext("# header\n45.155.205.10 # trailing\n; semicolon comment\n\n1.1.1.1 and more\n")
    assert [(c.value, c.origin) for c in parsed.candidates] == [("45.155.205.10", "line 2")]
    assert [(r.origin, r.reason) for r in parsed.rejections] == [("line 5", "more than one value on the line")]


def test_csv_without_the_named_column_is_a_parse_failure() -> None:
    with pytest.raises(FeedParseFailed, match="no column 'ip'"):
        parse_csv("address,kind\n1.1.1.1,x\n", "ip")


def test_csv_reads_the_named_column_with_another_delimiter() -> None:
    parsed = parse_csv("#c\nkind;ip\nx;45.155.205.10\ny;\n", "ip", ";")
    assert [c.value for c in parsed.candidates] == ["45.155.205.10"]
    assert [r.reason for r in parsed.rejections] == ["no ip value"]


def test_config_applies_defaults_and_round_trips() -> None:
    text = json.dumps({"feeds": [{"name": "a", "format": "plaintext", "url": "https://feeds.example/a.txt"}]})
    (feed,) = parse_config(text)
    assert (feed.max_bytes, feed.timeout_seconds, feed.allow_empty, feed.auth) == (10 * 1024 * 1024, 20, False, None)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("not json", "not JSON"),
        ({"feeds": [{"name": "a", "format": "csv", "url": "https://x/a.csv"}]}, "breaks its schema"),
        ({"feeds": [{"name": "a", "format": "taxii", "url": "https://x/api/"}]}, "breaks its schema"),
        ({"feeds": [{"name": "A B", "format": "plaintext", "url": "https://x/a"}]}, "breaks its schema"),
        ({"feeds": [{"name": "a", "format": "plaintext", "url": "ftp://x/a"}]}, "breaks its schema"),
        ({"feeds": [{"name": "a", "format": "plaintext", "url": "https://x/a", "extra": 1}]}, "breaks its schema"),
        (
            {
                "feeds": [
                    {
                        "name": "a",
                        "format": "plaintext",
                        "url": "https://x/a",
                        "auth": {"secret_id": "other/x", "scheme": "basic"},
                    }
                ]
            },
            "breaks its schema",
        ),
        (
            {
                "feeds": [
                    {
                        "name": "a",
                        "format": "plaintext",
                        "url": "https://x/a",
                        "auth": {"secret_id": "firebreak/feeds/x", "scheme": "header"},
                    }
                ]
            },
            "breaks its schema",
        ),
        ({"feeds": [{"name": "a", "format": "plaintext", "url": "https://x/a"}] * 2}, "unique"),
    ],
)
def test_config_that_breaks_the_schema_is_refused_with_the_reason(document: object, problem: str) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(FeedConfigInvalid, match=problem):
        parse_config(text)
