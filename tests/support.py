"""Helpers the tests share: where the repo is, the sample events in events/, and running a finding under a fault."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firebreak.intel.remote_config import forget
from firebreak_local.runtime import CappedClock as CappedClock  # the engine's, shared with the tests
from firebreak_local.template import load_template

if TYPE_CHECKING:
    from firebreak_local.engine import Approvals, Engine, Execution

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
# How often a test's HTTP server checks for shutdown(): serve_forever's default 0.5 s is paid by every test using one.
SERVER_POLL_SECONDS = 0.01
# The entry machine's Run Block Ip Playbook state and the block-ip playbook's states, in order, without NACLs.
BLOCK_IP_STATES = [
    "Run Block Ip Playbook",
    "Enrich Addresses",
    "Block Addresses",
    "Block In Network Acls?",
    "Blocking Complete",
]


class SteppedClock:
    """The time module for code that reads the clock to wait: time() and monotonic() stand still until sleep() or
    advance() moves them on, at once. A test of waiting then waits for nothing in real time."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._monotonic = time.monotonic()
        self.slept = 0.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.advance(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def once_per_run(tmp_path_factory: Any, name: str, produce: Callable[[], Any]) -> Any:
    """produce()'s result (JSON data), computed by the first pytest-xdist worker that asks and read by the others.

    A module-scoped fixture runs once in every worker that runs one of its module's tests, and worksteal spreads a
    module's tests over the workers: a fixture that is a whole `firebreak run` ran twice in every suite. Outside
    xdist it simply runs.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return produce()
    shared = tmp_path_factory.getbasetemp().parent  # the run's own directory, above each worker's
    result = shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait for the first, then read what it wrote
        if result.is_file():
            return json.loads(result.read_text())
        value = produce()
        result.write_text(json.dumps(value))
        return value


def load_event(name: str) -> dict[str, Any]:
    """An event from events/ by its path without .json: load_event("eventbridge/guardduty_ssh_brute_force")."""
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event


@dataclass(frozen=True)
class Case:
    """One AWS call (boto3 names) failing with one error code, `times` times (None: every call)."""

    service: str
    operation: str
    code: str
    times: int | None

    def __str__(self) -> str:
        return f"{self.service}.{self.operation}-{self.code}-{'always' if self.times is None else self.times}"


def start(engine: Engine, event: Mapping[str, Any], approvals: Approvals | None = None) -> Execution:
    """The execution the event starts through the template rule it matches (it must match one); approvals as the
    engine's default (report a wait) unless given."""
    rule = engine.matching_rule(event)
    assert rule is not None, "the event should trigger a rule"
    return engine.start(rule, event) if approvals is None else engine.start(rule, event, approvals)


def out_of_memory(event: Mapping[str, Any], context: Any) -> Any:
    """A handler that dies as a Lambda function rarely does, for engine.dispatcher.override: the step fails as a
    crashed invocation, not as an AWS error the domain code would answer."""
    raise RuntimeError("out of memory")


@contextmanager
def stack_with(overrides: Mapping[str, str]) -> Iterator[Engine]:
    """The stack with parameter overrides, leaving the process environment as it found it (a test may start
    several)."""
    from firebreak_local.engine import Engine

    saved = dict(os.environ)
    try:
        with Engine(TEMPLATE, overrides) as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_with_fault(engine: Engine, event: Mapping[str, Any], case: Case) -> tuple[Execution, int]:
    """The finding run through the stack while the case's fault is in force; the execution and the fault's hits."""
    rule = engine.matching_rule(event)
    assert rule is not None, "the event should trigger a rule"
    # Enrichment caches the SSM address lists per process: a fault on GetParameters must meet a real call, and the
    # lists read (or not) under the fault must not carry over to the next test.
    forget()
    try:
        with engine.faults.inject(case.service, case.operation, case.code, times=case.times) as fault:
            execution = engine.start(rule, event)
    finally:
        forget()
    return execution, fault.hits


def records(engine: Engine) -> list[dict[str, Any]]:
    """Every incident record, each attribute unwrapped from its DynamoDB type."""
    items = engine.client("dynamodb").scan(TableName=engine.resources["IncidentTable"].ref)["Items"]
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]


def report_of(execution: Execution) -> dict[str, Any]:
    """The incident report the execution returned: its output or, when it failed, its cause."""
    report = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    assert isinstance(report, dict)
    return report


def status_of(execution: Execution) -> str:
    """The incident status the execution reports."""
    return str(report_of(execution)["status"])


def incident_record(engine: Engine, incident_id: str) -> dict[str, Any]:
    """The incident's record, which must exist."""
    item = engine.record(incident_id)
    assert item is not None, f"no record of {incident_id}"
    return item


def create_blocklist_table(dynamodb: Any, name: str) -> None:
    """The blocklist table with the key schema of template.yaml, so a test cannot drift from the deployed table."""
    table = load_template(TEMPLATE).resources["BlocklistTable"]["Properties"]
    dynamodb.create_table(
        TableName=name,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )


def refuse_assume_role(
    monkeypatch: Any, code: str = "AccessDenied", status: int = 403, times: int = 4, region: str = "eu-west-1"
) -> None:
    """The next `times` AssumeRole calls of firebreak.core.aws answer `code`, as STS would: the member role is
    missing or its trust refuses the caller (moto checks neither). Member sessions opened before are forgotten."""
    import boto3
    from botocore.stub import Stubber

    from firebreak.core import aws

    aws.forget_member_sessions()
    sts = boto3.client("sts", region_name=region)
    stubber = Stubber(sts)
    for _ in range(times):
        stubber.add_client_error("assume_role", code, "not authorized to perform: sts:AssumeRole", status)
    stubber.activate()
    real = aws._client
    monkeypatch.setattr(aws, "_client", lambda service, region: sts if service == "sts" else real(service, region))
