"""Approval on the real entry machine: waiting, approved, denied, timed out, and tokens that must change nothing."""

from __future__ import annotations

from typing import Any

from firebreak_local.engine import LOCAL_APPROVER, Approvals, Engine, Execution
from tests.statemachines.test_respond_to_finding import subjects
from tests.support import BLOCK_IP_STATES, incident_record, load_event, stack_with

APPROVAL_REQUIRED = "guardduty_ssh_brute_force_approval_required"
ATTACKER = "103.151.103.15"
WAITING = ["Parse Finding", "Open Incident", "Which Playbook?", "Wait For Approval"]
BLOCK_IP = BLOCK_IP_STATES
CLOSING = ["Notify Responders", "Record Outcome", "Export Stix Bundle", "Did Response Fail?", "Response Complete"]


def run(engine: Engine, approvals: Approvals, name: str = APPROVAL_REQUIRED) -> Execution:
    event = load_event(f"eventbridge/{name}")
    rule = engine.matching_rule(event)
    assert rule is not None
    return engine.start(rule, event, approvals)


def report(execution: Execution) -> dict[str, Any]:
    """The output of a finished execution, or the AWAITING_APPROVAL report of one the engine left waiting."""
    assert execution.status in {"SUCCEEDED", "RUNNING"}, execution.cause
    assert isinstance(execution.output, dict)
    return execution.output


def outcomes(execution: Execution, action_type: str) -> dict[str, str]:
    return {a["target"]: a["outcome"] for a in report(execution)["actions"] if a["type"] == action_type}


def request_token(engine: Engine, execution: Execution) -> str:
    (request,) = engine.approval_requests(execution.arn)
    token: str = request["approval"]["request"]["token"]
    return token


def test_approval_required_finding_waits_and_is_reported_awaiting_approval(engine: Engine) -> None:
    # GIVEN an SSH brute force against an instance tagged firebreak:approval=required
    # WHEN it runs and nobody answers
    execution = run(engine, Approvals.REPORT)

    # THEN the execution waits in Wait For Approval, reported AWAITING_APPROVAL with what will happen
    assert execution.status == "RUNNING"
    assert execution.states == WAITING
    waiting = report(execution)
    assert (waiting["status"], waiting["playbook"], waiting["mode"]) == ("AWAITING_APPROVAL", "block-ip", "approval")
    assert outcomes(execution, "block_ip") == {ATTACKER: "awaiting_approval"}
    assert waiting["reason"] == "resource tagged firebreak:approval=required"
    # AND the record says so, the responders were asked, and nothing was blocked
    assert incident_record(engine, waiting["incident_id"])["status"] == "AWAITING_APPROVAL"
    assert subjects(engine) == ["Firebreak AWAITING_APPROVAL: UnauthorizedAccess:EC2/SSHBruteForce"]
    assert engine.blocked_ips() == []


def test_approved_finding_acts_in_enforce_mode(engine: Engine) -> None:
    # GIVEN the approval-required brute force
    # WHEN every request is approved as soon as it is made (firebreak run --approve)
    execution = run(engine, Approvals.APPROVE)

    # THEN the playbook ran after the approval, the attacker is blocked, and the record names the approver
    assert execution.states == [*WAITING, "Which Playbook?", *BLOCK_IP, *CLOSING]
    done = report(execution)
    assert (done["status"], done["mode"]) == ("CONTAINED", "enforce")
    assert engine.blocked_ips() == [f"{ATTACKER}/32"]
    stored = incident_record(engine, done["incident_id"])
    assert (stored["status"], stored["approval_decided_by"]) == ("CONTAINED", LOCAL_APPROVER)
    assert subjects(engine)[-1] == "Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"


def test_denied_finding_skips_the_playbook_and_is_notified_not_contained(engine: Engine) -> None:
    # GIVEN the approval-required brute force waiting for an answer
    waiting = run(engine, Approvals.REPORT)

    # WHEN a responder denies it
    answer = engine.answer_approval(request_token(engine, waiting), "deny")
    execution = engine.wait(waiting.arn)

    # THEN no playbook ran, the block is reported skipped with who denied, and the status is NOTIFIED
    assert answer["status"] == "DENIED"
    assert execution.states == [*WAITING, *CLOSING]
    denied = report(execution)
    assert denied["status"] == "NOTIFIED"
    (block,) = [a for a in denied["actions"] if a["type"] == "block_ip"]
    assert (block["target"], block["outcome"]) == (ATTACKER, "skipped")
    assert block["reason"] == f"not done: approval denied by {LOCAL_APPROVER}"
    assert engine.blocked_ips() == []
    assert incident_record(engine, denied["incident_id"])["status"] == "NOTIFIED"


def test_unanswered_request_is_denied_when_the_window_closes() -> None:
    # GIVEN a stack whose approval window is about a second, with the default timeout policy (deny)
    with stack_with({"ApprovalTimeoutMinutes": "0.02"}) as engine:
        # WHEN the approval-required brute force runs and nobody answers
        execution = run(engine, Approvals.WAIT)

        # THEN the timeout policy denies: nothing blocked, the block skipped with the reason, status NOTIFIED
        assert execution.states == [*WAITING, "Approve On Timeout?", *CLOSING]
        timed_out = report(execution)
        assert timed_out["status"] == "NOTIFIED"
        assert [a["reason"] for a in timed_out["actions"] if a["type"] == "block_ip"] == [
            "not done: no answer within 1 s, and the timeout policy denies"
        ]
        assert engine.blocked_ips() == []


def test_timeout_policy_approve_acts_when_nobody_answers() -> None:
    # GIVEN a one-second window whose timeout policy is approve
    with stack_with({"ApprovalTimeoutMinutes": "0.02", "ApprovalTimeoutAction": "approve"}) as engine:
        # WHEN nobody answers
        execution = run(engine, Approvals.WAIT)

        # THEN the playbook runs after the timeout and the attacker is blocked
        assert execution.states == [*WAITING, "Approve On Timeout?", "Which Playbook?", *BLOCK_IP, *CLOSING]
        assert report(execution)["status"] == "CONTAINED"
        assert engine.blocked_ips() == [f"{ATTACKER}/32"]


def test_forged_and_replayed_tokens_change_nothing(engine: Engine) -> None:
    # GIVEN a waiting request and its genuine token
    waiting = run(engine, Approvals.REPORT)
    token = request_token(engine, waiting)

    # WHEN a forged token (signature altered) is sent first
    forged = engine.answer_approval(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), "approve")

    # THEN it is refused and the execution still waits
    assert (forged["statusCode"], forged["status"]) == (403, "REFUSED")
    assert engine.approval_requests(waiting.arn)

    # WHEN the genuine token approves, and is then replayed to deny
    approved = engine.answer_approval(token, "approve")
    finished = engine.wait(waiting.arn)
    sent = len(subjects(engine))
    replayed = engine.answer_approval(token, "deny")

    # THEN the approval acted once and the replay changed nothing: same block list, record and messages
    assert approved["status"] == "APPROVED"
    assert (replayed["statusCode"], replayed["status"]) == (409, "ALREADY_ANSWERED")
    assert report(finished)["status"] == "CONTAINED"
    assert engine.blocked_ips() == [f"{ATTACKER}/32"]
    assert incident_record(engine, report(finished)["incident_id"])["status"] == "CONTAINED"
    assert len(subjects(engine)) == sent


def test_findings_that_need_no_approval_pass_the_playbook_choice_without_an_extra_state(engine: Engine) -> None:
    # GIVEN an ordinary brute force (no tag, trusted source, enforcing stack)
    execution = run(engine, Approvals.REPORT, "guardduty_ssh_brute_force")

    # THEN the approval check costs no state: Which Playbook? goes straight to the playbook
    assert execution.states == ["Parse Finding", "Open Incident", "Which Playbook?", *BLOCK_IP, *CLOSING]
