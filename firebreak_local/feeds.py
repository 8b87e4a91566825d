"""`firebreak feeds sync FEED_FILE...`: feed configurations through the Sync Threat Feeds machine on the local engine.

Each file is one feed configuration (the document the FeedConfigParameter holds), synced in order in one emulated
account, so a second file shows what a later scheduled run would change. A feed may name a local `path` instead of
a `url`: the file is put in the stack's feed bucket and synced from there as `s3://` (what a deployer would do).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from firebreak_local.events import Unusable

MACHINE = "SyncThreatFeedsStateMachine"
FEED_SETS = {"ipv4": "FeedIpv4Set", "ipv6": "FeedIpv6Set"}


def read_feed_file(path: str, engine: Any) -> str:
    """The configuration document to store, local paths uploaded; Unusable when it is not a valid configuration."""
    from firebreak.core.errors import FeedConfigInvalid
    from firebreak.feeds.config import parse_config

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise Unusable(f"{path}: cannot read: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise Unusable(f"{path}: not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("feeds"), list):
        raise Unusable(f"{path}: not a feed configuration: no 'feeds' list")
    bucket = engine.resources["FeedBucket"].ref
    for feed in document["feeds"]:
        if isinstance(feed, dict) and "path" in feed:
            local = Path(path).parent / str(feed.pop("path"))
            key = f"feeds/{feed.get('name', 'feed')}/{local.name}"
            try:
                engine.client("s3").put_object(Bucket=bucket, Key=key, Body=local.read_bytes())
            except OSError as error:
                raise Unusable(f"{path}: feed file {local}: {error.strerror or error}") from None
            feed["url"] = f"s3://{bucket}/{key}"
    text = json.dumps(document)
    try:
        parse_config(text)
    except FeedConfigInvalid as error:
        raise Unusable(f"{path}: {error}") from None
    return text


def run_result(path: str, execution: Any) -> dict[str, Any]:
    """One run's report: the execution status and each feed's counts, read from its output or failure cause."""
    try:
        output = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    except ValueError:
        output = {}
    output = output if isinstance(output, dict) else {}
    return {
        "feed_file": path,
        "status": execution.status,
        "feeds": output.get("feeds") or [],
        "error": output.get("error") or execution.error,
        "reason": output.get("cause"),
        "states": execution.states,
        "api_calls": execution.api_calls,
    }


def feed_ipsets(engine: Any) -> dict[str, list[str]]:
    waf = engine.client("wafv2")
    sets: dict[str, list[str]] = {}
    with engine.api_calls.quiet():
        for family, logical_id in FEED_SETS.items():
            name, ipset_id, scope = engine.resources[logical_id].ref.split("|")
            sets[family] = sorted(waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)["IPSet"]["Addresses"])
    return sets


def print_run(result: dict[str, Any], out: IO[str]) -> None:
    out.write(f"\n{result['feed_file']}: {result['status']}\n")
    if not result["feeds"]:
        out.write(f"  no feed synced: {result['error']}: {result['reason']}\n")
        return
    out.write(f"  {'feed':<24} {'status':<8} {'added':>6} {'removed':>8} {'rejected':>9} {'unchanged':>10}\n")
    for feed in result["feeds"]:
        counts = [feed.get(key, "-") for key in ("added", "removed", "rejected", "unchanged")]
        out.write(
            f"  {feed['feed']:<24} {feed['status']:<8} {counts[0]:>6} {counts[1]:>8} {counts[2]:>9} {counts[3]:>10}\n"
        )
        if feed["status"] == "FAILED":
            out.write(f"      kept as it was: {feed.get('error')}: {feed.get('reason')}\n")
        for reason, count in (feed.get("rejected_by_reason") or {}).items():
            out.write(f"      rejected {count:>4}  {reason}\n")
    writes = result["api_calls"].get("wafv2.UpdateIPSet", 0)
    out.write(f"  UpdateIPSet calls: {writes}\n")


def sync(files: Sequence[str], template: Path, as_json: bool, out: IO[str]) -> int:
    """Exit 2 if any file was unusable, else 1 if any feed or run failed, else 0."""
    from firebreak_local.engine import Engine

    unusable = False
    runs: list[dict[str, Any]] = []
    with Engine(template) as engine:
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("FIREBREAK_LOG_LEVEL", "WARNING")
        parameter = engine.resources["FeedConfigParameter"].ref
        for path in files:
            try:
                config = read_feed_file(path, engine)
            except Unusable as error:
                print(f"firebreak: {error}", file=sys.stderr)
                unusable = True
                continue
            engine.client("ssm").put_parameter(Name=parameter, Value=config, Type="String", Overwrite=True)
            result = run_result(path, engine.run_machine(MACHINE, {}))
            runs.append(result)
            if not as_json:
                print_run(result, out)
        ipsets = feed_ipsets(engine)
        notifications = engine.notifications()
    document = {"version": 1, "runs": runs, "feed_ipsets": ipsets, "notifications": notifications}
    if as_json:
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        out.write(f"\nFeed IPSets now hold {len(ipsets['ipv4'])} IPv4 and {len(ipsets['ipv6'])} IPv6 entries.\n")
        for notification in notifications:
            out.write(f"Responders were told: {notification['subject']}\n")
    if unusable:
        return 2
    return 1 if any(run["status"] != "SUCCEEDED" for run in runs) else 0
