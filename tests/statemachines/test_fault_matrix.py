"""Every AWS call of the entry machine and the block-ip playbook, failing transiently and permanently.

Faults are real error responses on moto's request path (firebreak_local/faults.py), so the handlers' boto3 clients
and the interpreter's SDK tasks see what AWS would send. The contract: a transient error is retried (by the client's
standard retries or the ASL Retry) and the incident is still CONTAINED; a permanent error ends in a truthful status,
a notification and a record. The one dependency that cannot report its own failure is SNS: when every publish is
refused, the record still says FAILED and the execution fails (which the stack's ExecutionFailedRule alerts on).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from firebreak_local.engine import Engine, Execution
from tests.support import TEMPLATE, Case, load_event, records, report_of, run_with_fault, status_of

ADDRESS = "45.155.205.233/32"
CONTAINED = "Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"
FAILED = "Firebreak FAILED: UnauthorizedAccess:EC2/SSHBruteForce"
FAILED_EARLY = "Firebreak FAILED: response did not complete"
# Retries wait 10 ms at most: the contract is about what is retried and what the incident ends as, not the waits.
pytestmark = pytest.mark.usefixtures("short_retry_waits")


def run_with(engine: Engine, case: Case) -> tuple[Execution, int]:
    return run_with_fault(engine, load_event("eventbridge/guardduty_ssh_brute_force"), case)


# Fails once (or past the client's own three attempts where it says 3): retried, and the incident still contained.
TRANSIENT = [
    Case("lambda", "Invoke", "TooManyRequestsException", 1),
    Case("lambda", "Invoke", "ServiceException", 1),
    Case("dynamodb", "PutItem", "ThrottlingException", 1),
    Case("dynamodb", "PutItem", "InternalServerError", 1),
    Case("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", 1),
    Case("dynamodb", "UpdateItem", "InternalServerError", 1),
    Case("ssm", "GetParameters", "ThrottlingException", 3),
    Case("wafv2", "GetIPSet", "WAFInternalErrorException", 1),
    Case("wafv2", "UpdateIPSet", "ThrottlingException", 3),
    Case("wafv2", "UpdateIPSet", "WAFOptimisticLockException", 3),
    # The block list's truth (BlocklistTable): the scan of what is blocked, which every writer reads.
    Case("dynamodb", "Scan", "ThrottlingException", 3),
    # The own-address guard's reads of the account's Elastic IPs and NAT gateways.
    Case("ec2", "DescribeAddresses", "RequestLimitExceeded", 3),
    Case("ec2", "DescribeNatGateways", "InternalError", 1),
    Case("sns", "Publish", "Throttled", 3),
    Case("sns", "Publish", "InternalError", 4),
    # The playbook did not start: Run Block Ip Playbook's Retry starts it again under the same name.
    Case("stepfunctions", "StartExecution", "ThrottlingException", 1),
    Case("stepfunctions", "StartExecution", "ExecutionLimitExceeded", 2),
]


@pytest.mark.parametrize("case", TRANSIENT, ids=str)
def test_transient_error_is_retried_and_the_incident_still_contained(engine: Engine, case: Case) -> None:
    # GIVEN one AWS call of the response fails for a while with a transient error
    # WHEN the brute force runs
    execution, hits = run_with(engine, case)

    # THEN the fault really fired, and the address is blocked, recorded and told as CONTAINED
    assert hits == (case.times or hits) and hits > 0
    assert execution.status == "SUCCEEDED", execution.cause
    assert status_of(execution) == "CONTAINED"
    assert engine.blocked_ips() == [ADDRESS]
    assert [record["status"] for record in records(engine)] == ["CONTAINED"]
    assert [message["subject"] for message in engine.notifications()] == [CONTAINED]


@dataclass(frozen=True)
class Permanent:
    case: Case
    record: str
    subject: str
    blocked: bool

    def __str__(self) -> str:
        return str(self.case)


PERMANENT = [
    # The address could not be blocked: FAILED everywhere, nothing claimed.
    Permanent(Case("wafv2", "UpdateIPSet", "AccessDeniedException", None), "FAILED", FAILED, False),
    Permanent(Case("wafv2", "GetIPSet", "WAFNonexistentItemException", None), "FAILED", FAILED, False),
    Permanent(Case("wafv2", "UpdateIPSet", "WAFOptimisticLockException", None), "FAILED", FAILED, False),
    Permanent(Case("stepfunctions", "StartExecution", "AccessDeniedException", None), "FAILED", FAILED, False),
    # The block list's truth cannot be read, or the account's own addresses cannot be told apart: nothing blocked.
    Permanent(Case("dynamodb", "Scan", "AccessDeniedException", None), "FAILED", FAILED, False),
    Permanent(Case("ec2", "DescribeAddresses", "UnauthorizedOperation", None), "FAILED", FAILED, False),
    # Enrichment degrades: the lists could not be read, the finding's own evidence still blocks.
    Permanent(Case("ssm", "GetParameters", "AccessDeniedException", None), "CONTAINED", CONTAINED, True),
    # The incident could not be opened, or no step could run: recorded and told through the failure path.
    Permanent(Case("dynamodb", "PutItem", "AccessDeniedException", None), "FAILED", FAILED_EARLY, False),
    Permanent(Case("dynamodb", "PutItem", "ResourceNotFoundException", None), "FAILED", FAILED_EARLY, False),
    Permanent(Case("lambda", "Invoke", "AccessDeniedException", None), "FAILED", FAILED_EARLY, False),
    Permanent(Case("lambda", "Invoke", "ResourceNotFoundException", None), "FAILED", FAILED_EARLY, False),
]


@pytest.mark.parametrize("expected", PERMANENT, ids=str)
def test_permanent_error_ends_in_a_truthful_status_a_record_and_a_notification(
    engine: Engine, expected: Permanent
) -> None:
    # GIVEN one AWS call of the response is refused every time
    # WHEN the brute force runs
    execution, hits = run_with(engine, expected.case)

    # THEN the record and the one notification say what happened, and nothing blocked is claimed otherwise
    assert hits > 0
    assert [record["status"] for record in records(engine)] == [expected.record]
    assert [message["subject"] for message in engine.notifications()] == [expected.subject]
    assert engine.blocked_ips() == ([ADDRESS] if expected.blocked else [])
    assert status_of(execution) == expected.record
    assert (execution.status == "SUCCEEDED") == (expected.record == "CONTAINED")


def test_record_updates_refused_stop_before_acting_and_are_still_told(engine: Engine) -> None:
    # GIVEN DynamoDB refuses every UpdateItem: the circuit breaker cannot count, and no record can be written
    execution, _ = run_with(engine, Case("dynamodb", "UpdateItem", "AccessDeniedException", None))

    # THEN Firebreak fails safe: nothing is blocked (an uncounted response could exceed the breaker), no record can
    # exist (the table refuses writes), and the responders are told the response did not complete, with the error
    assert engine.blocked_ips() == []
    assert records(engine) == []
    notifications = engine.notifications()
    assert [message["subject"] for message in notifications] == [FAILED_EARLY]
    assert "Error:     ClientError" in notifications[0]["message"]
    assert execution.status == "FAILED"


def test_sns_refusing_every_publish_still_leaves_a_failed_record(engine: Engine) -> None:
    # GIVEN the responder topic refuses every publish (the one dependency that cannot report its own failure)
    execution, hits = run_with(engine, Case("sns", "Publish", "AuthorizationError", None))

    # THEN nobody could be told, but the record says FAILED with the error, and the execution fails so the
    # ExecutionFailedRule (EventBridge publishing under the topic policy, not this role) can still alert
    assert hits == 2  # Notify Responders, then Notify Responders Of Failure
    assert engine.notifications() == []
    stored = records(engine)
    assert [record["status"] for record in stored] == ["FAILED"]
    assert stored[0]["error"] == "AuthorizationErrorException"
    assert execution.status == "FAILED"


# The optional network ACL step (NaclBlocking): it runs after the WAF block, which stays whatever happens to it.
NACL_TRANSIENT = [
    Case("ec2", "DescribeNetworkAcls", "RequestLimitExceeded", 3),
    Case("ec2", "CreateNetworkAclEntry", "InternalError", 1),
]
NACL_PERMANENT = [
    Case("ec2", "CreateNetworkAclEntry", "UnauthorizedOperation", None),
    Case("ec2", "DescribeNetworkAcls", "UnauthorizedOperation", None),
]


@pytest.fixture
def nacl_engine() -> Iterator[Engine]:
    with Engine(TEMPLATE, {"NaclBlocking": "true"}) as running:
        yield running


def network_acl_outcomes(execution: Execution) -> list[str]:
    return [
        a["outcome"]
        for a in report_of(execution)["actions"]
        if a["type"] == "block_ip" and "network ACL" in a["target"]
    ]


@pytest.mark.parametrize("case", NACL_TRANSIENT, ids=str)
def test_transient_network_acl_error_is_retried_and_the_address_denied_there_too(
    nacl_engine: Engine, case: Case
) -> None:
    # GIVEN network ACL blocking on, and one EC2 call of that step failing for a while
    # WHEN the brute force runs
    execution, hits = run_with(nacl_engine, case)

    # THEN the fault fired, the deny entries were still written, and the incident is CONTAINED
    assert hits == case.times
    assert status_of(execution) == "CONTAINED", execution.cause
    assert network_acl_outcomes(execution) == ["applied"]
    assert nacl_engine.blocked_ips() == [ADDRESS]
    assert [message["subject"] for message in nacl_engine.notifications()] == [CONTAINED]


@pytest.mark.parametrize("case", NACL_PERMANENT, ids=str)
def test_permanent_network_acl_error_keeps_the_waf_block_and_says_the_acl_failed(
    nacl_engine: Engine, case: Case
) -> None:
    # GIVEN network ACL blocking on, and EC2 refusing that step every time
    # WHEN the brute force runs
    execution, hits = run_with(nacl_engine, case)

    # THEN the WAF block stands, the network ACL action is failed, and record and notification say PARTIALLY_CONTAINED
    assert hits > 0
    assert nacl_engine.blocked_ips() == [ADDRESS]
    assert network_acl_outcomes(execution) == ["failed"]
    assert [record["status"] for record in records(nacl_engine)] == ["PARTIALLY_CONTAINED"]
    assert status_of(execution) == "PARTIALLY_CONTAINED"
    subjects = [message["subject"] for message in nacl_engine.notifications()]
    assert subjects == ["Firebreak PARTIALLY_CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"]
