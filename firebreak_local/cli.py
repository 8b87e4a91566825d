"""`firebreak run`, `demo`, `feeds sync` and `report --stix` on the embedded local AWS (contracts/CLI.md)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from firebreak_local import samconfig
from firebreak_local.events import Unusable, read_event

DEMO_EVENTS = (
    "events/eventbridge/guardduty_ssh_brute_force.json",
    "events/eventbridge/guardduty_ssh_brute_force_redelivered.json",
    "events/eventbridge/guardduty_port_probe_low.json",
    "events/eventbridge/guardduty_sample_rdp_brute_force.json",
    "events/eventbridge/guardduty_port_probe_high.json",
    "events/eventbridge/guardduty_crypto_mining.json",
    "events/eventbridge/guardduty_c2_outbound.json",
    "events/eventbridge/guardduty_iam_user_key_compromised.json",
    "events/eventbridge/guardduty_access_key_malicious_ip.json",
    "events/eventbridge/guardduty_root_credential_usage.json",
    "events/eventbridge/guardduty_ssh_brute_force_approval_required.json",
    "events/eventbridge/securityhub_untrusted_product_brute_force.json",
    "events/eventbridge/guardduty_malformed.json",
    # contain-function: a crypto-mining Lambda function, stopped and kept as evidence.
    "events/eventbridge/guardduty_lambda_crypto_mining.json",
    # protect-bucket: a bucket made public; contain-database: a login that succeeded waits for a person by default;
    # contain-task: an ECS task talking to a C2 server; an EKS pod's runtime finding contains its node.
    "events/eventbridge/guardduty_s3_bucket_anonymous_access_granted.json",
    "events/eventbridge/guardduty_rds_login_attempt.json",
    "events/eventbridge/guardduty_runtime_ecs_c2_fargate.json",
    "events/eventbridge/guardduty_runtime_eks_node_crypto.json",
    # An organization: findings of two member accounts in other Regions, answered there through the member roles.
    "events/eventbridge/guardduty_member_c2_outbound.json",
    "events/eventbridge/guardduty_member_iam_user_key_compromised.json",
)
PLAYBOOK_MODE_PARAMETERS = (
    "BlockIpMode",
    "ContainInstanceMode",
    "RevokeCredentialsMode",
    "ProtectBucketMode",
    "ContainFunctionMode",
    "ContainDatabaseMode",
    "ContainTaskMode",
)
# Results whose incident a release may act on: an incident was opened for them (duplicates share the first's);
# one still waiting for approval has changed nothing yet.
UNRELEASED = frozenset({"IGNORED", "REJECTED", "DUPLICATE", "AWAITING_APPROVAL"})
ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass(frozen=True)
class Overrides:
    """The parameter values a run gives the stack, and where each came from (for the line that refuses one)."""

    values: dict[str, str]
    sources: dict[str, str]

    def source(self, names: Sequence[str]) -> str:
        found = sorted({self.sources[name] for name in names if name in self.sources})
        return ", ".join(found) or "template"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebreak", description="Run Firebreak on the embedded local AWS.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run event files through the stack")
    # Not required here: event files may also follow --parameter-overrides, whose values run to the next option.
    run.add_argument("event_files", nargs="*", metavar="EVENT_FILE")
    run.add_argument("--json", action="store_true", help="print one JSON report (run-report.schema.json)")
    run.add_argument("--mode", choices=["enforce", "approval", "dry-run"], help="override the stack's response mode")
    run.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters for this run, as sam deploy takes them, over samconfig.toml's default environment; "
        "a playbook's mode set here wins over --mode",
    )
    run.add_argument("--release", action="store_true", help="undo every incident after all events ran")
    run.add_argument("--approve", action="store_true", help="approve every approval request at once")
    run.add_argument("--template", default="template.yaml", help="the SAM template (default: ./template.yaml)")
    run.add_argument("--report-dir", metavar="DIR", help="write each incident's post-incident report to DIR/<id>.md")
    run.add_argument(
        "--without-member-role",
        action="append",
        default=[],
        metavar="ACCOUNT",
        help="leave this member account without the member stack (repeatable)",
    )
    demo = commands.add_parser("demo", help="run the bundled scenarios")
    demo.add_argument("--template", default="template.yaml")
    feeds = commands.add_parser("feeds", help="threat feeds on the embedded local AWS")
    feed_commands = feeds.add_subparsers(dest="feeds_command", required=True)
    feeds_sync = feed_commands.add_parser("sync", help="sync feed configurations into the feed IPSets, in order")
    feeds_sync.add_argument("feed_files", nargs="+", metavar="FEED_FILE")
    feeds_sync.add_argument("--json", action="store_true", help="print one JSON document")
    feeds_sync.add_argument("--template", default="template.yaml")
    report = commands.add_parser("report", help="what the record of one incident holds")
    report.add_argument("incident", metavar="INCIDENT_ID", help="the incident id (fb-...) or the finding id")
    report.add_argument("--stix", action="store_true", required=True, help="print its STIX 2.1 bundle")
    report.add_argument("--events", nargs="+", required=True, metavar="EVENT_FILE", help="events to run first")
    report.add_argument("--template", default="template.yaml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("feeds", "report"):
        return _local_command(args)
    if args.command == "demo":
        root = Path(args.template).resolve().parent
        return run([str(root / name) for name in DEMO_EVENTS], template=Path(args.template), as_json=False, mode=None)
    report_dir = Path(args.report_dir) if args.report_dir else None
    # A parameter override always holds "=" (or names a file://); anything else after the option is an event file.
    overrides = [token for token in args.parameter_overrides if "=" in token or token.startswith("file://")]
    files = [*args.event_files, *(token for token in args.parameter_overrides if token not in overrides)]
    if not files:
        parser.error("the following arguments are required: EVENT_FILE")
    malformed = [account for account in args.without_member_role if not ACCOUNT_ID.fullmatch(account)]
    if malformed:
        print(f"firebreak: --without-member-role {malformed[0]}: not a 12-digit account id", file=sys.stderr)
        return 2
    return run(
        files,
        Path(args.template),
        args.json,
        args.mode,
        release=args.release,
        report_dir=report_dir,
        approve=args.approve,
        without_member_role=args.without_member_role,
        parameter_overrides=overrides,
    )


def _local_command(args: argparse.Namespace) -> int:
    """`feeds sync` and `report --stix`: handler output goes to stderr, stdout carries the command's own."""
    template = Path(args.template)
    if not _template_exists(template):
        return 2
    with _stdout_for_the_command() as out:
        if args.command == "feeds":
            from firebreak_local.feeds import sync

            return sync(args.feed_files, template, args.json, out)
        from firebreak_local.sharing import report_stix

        return report_stix(args.incident, args.events, template, out)


def _template_exists(template: Path) -> bool:
    if not template.is_file():
        print(f"firebreak: {template}: no such template", file=sys.stderr)
        return False
    return True


@contextmanager
def _stdout_for_the_command() -> Iterator[IO[str]]:
    """Handlers log to stdout as Lambda does; they get stderr, and the command's own output (a JSON report, a
    bundle) keeps stdout to itself."""
    out: IO[str] = sys.stdout
    sys.stdout = sys.stderr
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    try:
        yield out
    finally:
        sys.stdout = out


def run(
    files: Sequence[str],
    template: Path,
    as_json: bool,
    mode: str | None,
    release: bool = False,
    report_dir: Path | None = None,
    approve: bool = False,
    without_member_role: Sequence[str] = (),
    parameter_overrides: Sequence[str] = (),
) -> int:
    """Exit 2 if an argument or any file was unusable, else 1 if any execution failed, else 0."""
    if not _template_exists(template):
        return 2
    try:
        overrides = stack_parameters(template, mode, parameter_overrides)
    except samconfig.OverridesError as error:
        print(f"firebreak: {error}", file=sys.stderr)
        return 2
    with _stdout_for_the_command() as out:
        return _run(files, template, as_json, overrides, out, release, report_dir, approve, without_member_role)


def stack_parameters(template: Path, mode: str | None, parameter_overrides: Sequence[str] = ()) -> Overrides:
    """The parameters a run deploys the stack with: samconfig.toml's default environment, then --mode, then
    --parameter-overrides (a playbook's own mode named there stays; a ResponseMode other than --mode's is refused)."""
    # Beside the template as named, a link not followed, as SAM CLI looks for it.
    configured = samconfig.default_overrides(template.absolute().parent)
    try:
        given = samconfig.parse(list(parameter_overrides))
    except samconfig.OverridesError as error:
        raise samconfig.OverridesError(f"--parameter-overrides: {error}") from error
    if mode and given.get("ResponseMode", mode) != mode:
        contradiction = f"--mode {mode} contradicts --parameter-overrides ResponseMode={given['ResponseMode']}"
        raise samconfig.OverridesError(contradiction)
    # --mode sets the stack's mode and lets every playbook inherit it.
    by_mode = {"ResponseMode": mode, **dict.fromkeys(PLAYBOOK_MODE_PARAMETERS, "inherit")} if mode else {}
    layers = (
        (f"{samconfig.FILE_NAME} [{samconfig.ENVIRONMENT}]", configured),
        ("--mode", by_mode),
        ("--parameter-overrides", given),
    )
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        values.update(layer)
        sources.update(dict.fromkeys(layer, source))
    return Overrides(values, sources)


def _run(
    files: Sequence[str],
    template: Path,
    as_json: bool,
    overrides: Overrides,
    out: IO[str],
    release: bool = False,
    report_dir: Path | None = None,
    approve: bool = False,
    without_member_role: Sequence[str] = (),
) -> int:
    from firebreak_local import console, report
    from firebreak_local.engine import Approvals, Engine
    from firebreak_local.template import ParameterError, TemplateError
    from firebreak_local.world import finding_places

    approvals = Approvals.APPROVE if approve else Approvals.REPORT
    unusable = False
    results: list[dict[str, Any]] = []
    try:
        stack = Engine(template, overrides.values, without_member_role)
    except ParameterError as error:
        print(f"firebreak: {overrides.source(error.names)}: {error}", file=sys.stderr)
        return 2
    except TemplateError as error:
        print(f"firebreak: {template}: {error}", file=sys.stderr)
        return 2
    with stack as engine:
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
            # The finding's account joins the organization with the member stack before its first event runs.
            engine.prepare(event)
            place = next(iter(finding_places(event)), report.NOWHERE)
            if rule is None:
                outcome = report.ignored(path, place)
            else:
                outcome = report.result(path, rule, engine.start(rule, event, approvals), place)
            results.append(outcome)
            if not as_json:
                console.timeline(outcome, out)
        if release:
            results = _release_all(engine, results, as_json, out)
        if report_dir is not None:
            from firebreak_local.postmortems import write_reports

            ids = [item["incident_id"] for item in results if item["triggered"] and item.get("incident_id")]
            for written in write_reports(engine, ids, report_dir):
                print(f"firebreak: wrote {written}", file=sys.stderr)
        world = report.world(engine)
    document = {"version": 1, "results": results, "world": world}
    if as_json:
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        console.summary(document, out)
    if unusable:
        return 2
    return 1 if any(item["status"] == "FAILED" and item["triggered"] for item in results) else 0


def _release_all(engine: Any, results: list[dict[str, Any]], as_json: bool, out: IO[str]) -> list[dict[str, Any]]:
    """Run the release machine once per incident, after every event ran; its result replaces the opening one's."""
    from firebreak_local import console, report

    released: set[str] = set()
    updated = []
    for item in results:
        incident_id = item.get("incident_id")
        if not item["triggered"] or not incident_id or item["status"] in UNRELEASED or incident_id in released:
            updated.append(item)
            continue
        released.add(incident_id)
        if not as_json:
            console.progress(len(released), len(results), f"release {incident_id}", out)
        item = report.released(item, engine.release(incident_id))
        if not as_json:
            console.timeline(item, out)
        updated.append(item)
    return updated


def console() -> None:
    """The `firebreak` command: main, then out without tearing the interpreter down. Everything is written and
    flushed by then; what is left is moto's heap, which the interpreter would spend half a second freeing."""
    try:
        code = main()
    except SystemExit as exit_:  # argparse's usage errors and --help
        code = exit_.code if isinstance(exit_.code, int) else 1 if exit_.code else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
