"""`firebreak run` and `firebreak demo`: events through the stack on the embedded local AWS (contracts/CLI.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

DEMO_EVENTS = (
    "events/eventbridge/guardduty_ssh_brute_force.json",
    "events/eventbridge/guardduty_ssh_brute_force_redelivered.json",
    "events/eventbridge/guardduty_port_probe_low.json",
    "events/eventbridge/guardduty_sample_rdp_brute_force.json",
    "events/eventbridge/guardduty_port_probe_high.json",
    "events/eventbridge/guardduty_crypto_mining.json",
    "events/eventbridge/guardduty_ssh_brute_force_approval_required.json",
    "events/eventbridge/securityhub_untrusted_product_brute_force.json",
    "events/eventbridge/guardduty_malformed.json",
)
UNAVAILABLE = {
    "release": "--release needs the release workflow, which this stack does not have yet",
}
# --mode sets the stack's mode and lets every playbook inherit it.
PLAYBOOK_MODE_PARAMETERS = ("BlockIpMode", "ContainInstanceMode", "RevokeCredentialsMode")


class Unusable(Exception):
    """An argument or event file the command cannot use; the message is the one line printed for it."""


def read_event(path: str) -> dict[str, Any]:
    """One EventBridge event from a file, or Unusable saying exactly what is wrong with it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise Unusable(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise Unusable(f"{path}: not UTF-8 text") from None
    try:
        event = json.loads(text)
    except ValueError as error:
        raise Unusable(f"{path}: not JSON: {error}") from None
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise Unusable(f"{path}: not an EventBridge event: no 'detail' object")
    missing = [key for key in ("source", "detail-type") if not isinstance(event.get(key), str)]
    if missing:
        raise Unusable(f"{path}: not an EventBridge event: no {' or '.join(repr(key) for key in missing)}")
    return event


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebreak", description="Run Firebreak on the embedded local AWS.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run event files through the stack")
    run.add_argument("event_files", nargs="+", metavar="EVENT_FILE")
    run.add_argument("--json", action="store_true", help="print one JSON report (run-report.schema.json)")
    run.add_argument("--mode", choices=["enforce", "approval", "dry-run"], help="override the stack's response mode")
    run.add_argument("--release", action="store_true", help="undo every incident after all events ran")
    run.add_argument("--approve", action="store_true", help="approve every approval request at once")
    run.add_argument("--template", default="template.yaml", help="the SAM template (default: ./template.yaml)")
    demo = commands.add_parser("demo", help="run the bundled scenarios")
    demo.add_argument("--template", default="template.yaml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        root = Path(args.template).resolve().parent
        files = [str(root / name) for name in DEMO_EVENTS]
        return run(files, template=Path(args.template), as_json=False, mode=None)
    if args.release:
        print(f"firebreak: {UNAVAILABLE['release']}", file=sys.stderr)
        return 2
    return run(args.event_files, template=Path(args.template), as_json=args.json, mode=args.mode, approve=args.approve)


def run(files: Sequence[str], template: Path, as_json: bool, mode: str | None, approve: bool = False) -> int:
    """Exit 2 if any file was unusable, else 1 if any execution failed, else 0."""
    if not template.is_file():
        print(f"firebreak: {template}: no such template", file=sys.stderr)
        return 2
    out: IO[str] = sys.stdout
    # Handlers log to stdout as Lambda does; with --json, stdout carries the report alone.
    sys.stdout = sys.stderr
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    try:
        return _run(files, template, as_json, mode, approve, out)
    finally:
        sys.stdout = out


def _run(files: Sequence[str], template: Path, as_json: bool, mode: str | None, approve: bool, out: IO[str]) -> int:
    from firebreak_local import console, report
    from firebreak_local.engine import Approvals, Engine

    overrides = {"ResponseMode": mode, **dict.fromkeys(PLAYBOOK_MODE_PARAMETERS, "inherit")} if mode else {}
    approvals = Approvals.APPROVE if approve else Approvals.REPORT
    unusable = False
    results: list[dict[str, Any]] = []
    with Engine(template, overrides) as engine:
        # Handler logs at their configured level would drown the timeline; the engine keeps warnings and errors.
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("FIREBREAK_LOG_LEVEL", "WARNING")
        for index, path in enumerate(files, 1):
            try:
                event = read_event(path)
            except Unusable as error:
                print(f"firebreak: {error}", file=sys.stderr)
                unusable = True
                continue
            if not as_json:
                console.progress(index, len(files), path, out)
            rule = engine.matching_rule(event)
            if rule is None:
                outcome = report.ignored(path)
            else:
                outcome = report.result(path, rule, engine.start(rule, event, approvals))
            results.append(outcome)
            if not as_json:
                console.timeline(outcome, out)
        world = report.world(engine)
    document = {"version": 1, "results": results, "world": world}
    if as_json:
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        console.summary(document, out)
    if unusable:
        return 2
    return 1 if any(item["status"] == "FAILED" and item["triggered"] for item in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
