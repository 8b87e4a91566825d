"""`make bench`: median engine time, state transitions and AWS API calls per playbook run. Prints, never asserts."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from firebreak_local.engine import Engine, Execution

SCENARIOS = {
    "block-ip (enforce)": "guardduty_ssh_brute_force",
    "block-ip (sample, dry-run)": "guardduty_sample_rdp_brute_force",
    "contain-instance": "guardduty_crypto_mining",
    "contain-instance + block C&C": "guardduty_c2_outbound",
    "revoke-credentials (user)": "guardduty_iam_user_key_compromised",
    "revoke-credentials (role)": "guardduty_access_key_malicious_ip",
    "contain-instance (member)": "guardduty_member_c2_outbound",
    "revoke-credentials (member)": "guardduty_member_iam_user_key_compromised",
    "protect-bucket": "guardduty_s3_bucket_anonymous_access_granted",
    "contain-function": "guardduty_lambda_crypto_mining",
    "contain-database (Aurora)": "guardduty_rds_login_attempt",
    "notify-only": "guardduty_root_credential_usage",
    "rejected": "guardduty_malformed",
}
SCENARIOS["contain-task"] = "guardduty_runtime_ecs_c2_fargate"
RUNS = 15
BREAKER_LIMIT = 10_000
RELEASED = "block-ip (enforce)"
_ATTACKERS = ("45.155.205.233", "185.220.101.47", "146.70.119.82", "103.151.103.15")


def _fresh(event: dict[str, Any], run: int) -> dict[str, Any]:
    """A new finding id, attacker and instance, so each run opens an incident and really changes the account."""
    text = json.dumps(event)
    for address in _ATTACKERS:
        text = text.replace(f'"{address}"', f'"{address.rsplit(".", 1)[0]}.{100 + run}"')
    resource = event["detail"].get("resource")
    instance = resource.get("instanceDetails", {}).get("instanceId") if isinstance(resource, dict) else None
    if isinstance(instance, str):
        # Unique per scenario too: two scenarios naming one instance would find it already isolated.
        text = text.replace(instance, f"i-{zlib.crc32(instance.encode() + text.encode()):08x}{run + 2:09x}")
    buckets = resource.get("s3BucketDetails") if isinstance(resource, dict) else None
    if (
        isinstance(buckets, list)
        and buckets
        and isinstance(buckets[0], dict)
        and isinstance(buckets[0].get("name"), str)
    ):
        # protect-bucket: a bucket of its own per run, so each run protects one rather than finding it protected.
        text = text.replace(f'"{buckets[0]["name"]}"', f'"{buckets[0]["name"]}-{run + 2}"')
        text = text.replace(f':::{buckets[0]["name"]}"', f':::{buckets[0]["name"]}-{run + 2}"')
    function = resource.get("lambdaDetails", {}).get("functionName") if isinstance(resource, dict) else None
    if isinstance(function, str):
        # contain-function: a function (and role) per run, or every later run would find it stopped already.
        text = text.replace(function, f"{function}-bench{run + 2}")
    database = resource.get("rdsDbInstanceDetails", {}) if isinstance(resource, dict) else {}
    for key in ("dbInstanceIdentifier", "dbClusterIdentifier"):
        # contain-database: a new database per run, or every run after the first would find it quarantined.
        if isinstance(database.get(key), str):
            text = text.replace(f'"{database[key]}"', f'"{database[key]}-bench{run + 2}"')
    # contain-task: a new task per run, or every run after the first would find it already isolated.
    details = resource.get("ecsClusterDetails", {}) if isinstance(resource, dict) else {}
    task = details.get("taskDetails", {}).get("arn") if isinstance(details, dict) else None
    if isinstance(task, str):
        text = text.replace(task, f"{task[:-9]}{run + 2:09x}")
    fresh: dict[str, Any] = json.loads(text)
    if isinstance(fresh["detail"].get("id"), str):
        fresh["detail"]["id"] = f"{fresh['detail']['id']}-bench{run}"
    return fresh


def _row(out: Any, label: str, runs: list[Execution]) -> None:
    times = [run.duration_ms for run in runs]
    last = runs[-1]
    calls = ", ".join(f"{op} {n}" for op, n in sorted(last.api_calls.items()))
    out.write(
        f"{label:<28} {statistics.median(times):>9.1f} {min(times):>7.1f} {last.transitions:>11} "
        f"{sum(last.api_calls.values()):>9} {last.api_calls.get('sts.AssumeRole', 0):>10}  {calls}\n"
    )


def main() -> int:
    root = Path("template.yaml").resolve().parent
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    sys.stdout = sys.stderr  # handler logs stay off the figures
    out = sys.__stdout__
    assert out is not None
    started = time.perf_counter()
    # The circuit breaker would hold every destructive run past its hourly budgets for approval: measured apart.
    budgets = {"MaxContainmentsPerHour": str(BREAKER_LIMIT), "MaxBlockedAddressesPerHour": str(BREAKER_LIMIT)}
    # contain-database waits for a person by default; the bench measures the playbook itself.
    budgets["ContainDatabaseMode"] = "enforce"
    # On the simulated clock, as a storm runs: a step's waits (its poll for the IPSets' writer, Retry back-offs) take
    # no real time, so the figures are the engine's own cost of a run.
    with Engine(root / "template.yaml", budgets, simulated_time=True) as engine:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
        provisioned_ms = (time.perf_counter() - started) * 1000
        out.write(f"engine start (provision template.yaml on moto): {provisioned_ms:.0f} ms\n\n")
        columns = (
            f"{'scenario':<28} {'median ms':>9} {'min ms':>7} {'transitions':>11} {'API calls':>9} {'AssumeRole':>10}"
        )
        out.write(columns + "  calls by operation\n")
        for label, name in SCENARIOS.items():
            event = json.loads((root / "events" / "eventbridge" / f"{name}.json").read_text())
            rule = engine.matching_rule(event)
            if rule is None:
                out.write(f"{label:<28} not triggered\n")
                continue
            engine.start(rule, _fresh(event, -1))  # warm: imports and JSONata compilation happen once
            runs = [engine.start(rule, _fresh(event, run)) for run in range(RUNS)]
            _row(out, label, runs)
            if label == RELEASED:
                incidents = [run.output["incident_id"] for run in runs if isinstance(run.output, dict)]
                _row(out, "release (of block-ip)", [engine.release(incident) for incident in incidents])
    out.write(
        f"\n{RUNS} runs per scenario after one warm-up; API calls include Step Functions' own service calls and those\n"
        "of the incident stream consumer (events, report), which runs after the execution, as Lambda polls a stream.\n"
        "AssumeRole: member-role sessions opened (one per acting step and role in a member account, none at home).\n"
        "Times are real; waits (the block step's poll for the IPSets' writer, Retry back-offs) run on the simulated\n"
        "clock and cost none of it.\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
