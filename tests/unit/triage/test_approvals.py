"""Approval domain: when an incident waits, what it will do, and the signed single-use token that answers it."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firebreak.core.errors import ApprovalAnswerInvalid, ApprovalTokenExpired, ApprovalTokenInvalid
from firebreak.core.models import (
    ActionType,
    Approval,
    Decision,
    Incident,
    Mode,
    Outcome,
    Playbook,
    TimeoutAction,
)
from firebreak.core.settings import Settings
from firebreak.triage.approvals import (
    DIRECT_CALLER,
    TIMEOUT_POLICY,
    Answer,
    AnswerStatus,
    ApprovalRequest,
    decide_mode,
    denial_reason,
    new_request,
    planned_actions,
    sign,
    store_pending,
    take_pending,
    verify,
)
from firebreak.triage.findings import normalise
from tests.support import load_event

KEY = b"k" * 64
NOW = 1_800_000_000
UNTRUSTED = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"


def settings_with(response_mode: Mode = Mode.ENFORCE, **changes: Any) -> Settings:
    base = Settings(
        incident_table="incidents",
        responder_topic_arn="arn:aws:sns:us-east-1:123456789012:topic",
        blocked_ipv4_set_arn="",
        blocked_ipv6_set_arn="",
        response_mode=response_mode,
        playbook_modes=(),
        allow_list=(),
        max_addresses_per_incident=50,
        approval_window_seconds=900,
        approval_on_timeout=TimeoutAction.DENY,
    )
    return dataclasses.replace(base, **changes)


def incident(name: str = "guardduty_ssh_brute_force", **changes: Any) -> Incident:
    return dataclasses.replace(normalise(load_event(f"eventbridge/{name}")), **changes)


# --- decide_mode --------------------------------------------------------------------------------------------------


def test_an_ordinary_finding_acts_at_once() -> None:
    # GIVEN a trusted finding on an untagged resource and an enforcing stack
    # WHEN its mode is decided
    mode, approval = decide_mode(incident(), Playbook.BLOCK_IP, settings_with())
    # THEN it acts without waiting
    assert (mode, approval) == (Mode.ENFORCE, None)


def test_approval_required_tag_waits_with_the_stack_window_and_policy() -> None:
    # GIVEN a resource tagged firebreak:approval=required (any case) and a 15-minute approve-on-timeout stack
    tagged = incident(resource_tags=(("firebreak:approval", "Required"),))
    stack = settings_with(approval_window_seconds=900, approval_on_timeout=TimeoutAction.APPROVE)
    # WHEN its mode is decided
    mode, approval = decide_mode(tagged, Playbook.BLOCK_IP, stack)
    # THEN it waits, saying why, for the stack's window and timeout policy
    assert mode is Mode.APPROVAL
    assert approval == Approval("resource tagged firebreak:approval=required", 900, TimeoutAction.APPROVE)


def test_untrusted_security_hub_product_waits_and_keeps_the_escalation_text() -> None:
    # GIVEN a Security Hub finding written by a product the stack does not trust
    forged = incident("securityhub_custom_action", product_arn=UNTRUSTED)
    # WHEN its mode is decided
    mode, approval = decide_mode(forged, Playbook.BLOCK_IP, settings_with())
    # THEN it waits for a person, naming the product
    assert mode is Mode.APPROVAL
    assert approval is not None
    assert approval.reason == f"finding from untrusted product {UNTRUSTED}: review it before acting"


def test_trusted_security_hub_product_acts() -> None:
    # GIVEN the same finding from AWS's own product, with another company trusted as well
    finding = incident("securityhub_custom_action")
    # WHEN its mode is decided
    mode, _ = decide_mode(finding, Playbook.BLOCK_IP, settings_with(trusted_product_companies=("aws", "acme")))
    # THEN it acts
    assert mode is Mode.ENFORCE


def test_stack_in_approval_mode_waits_and_lists_every_reason() -> None:
    # GIVEN an approval stack and a finding that is also tagged
    tagged = incident(resource_tags=(("firebreak:approval", "required"),))
    # WHEN its mode is decided
    mode, approval = decide_mode(tagged, Playbook.BLOCK_IP, settings_with(Mode.APPROVAL))
    # THEN both reasons are given
    assert mode is Mode.APPROVAL
    assert approval is not None
    assert approval.reason == "block-ip runs in approval mode; resource tagged firebreak:approval=required"


def test_per_playbook_approval_mode_overrides_an_enforcing_stack() -> None:
    # GIVEN an enforcing stack whose contain-instance playbook is set to approval
    stack = settings_with(playbook_modes=((Playbook.CONTAIN_INSTANCE, Mode.APPROVAL),))
    # WHEN modes are decided for both playbooks
    contain, _ = decide_mode(incident("guardduty_c2_outbound"), Playbook.CONTAIN_INSTANCE, stack)
    block, _ = decide_mode(incident(), Playbook.BLOCK_IP, stack)
    # THEN only contain-instance waits
    assert (contain, block) == (Mode.APPROVAL, Mode.ENFORCE)


@pytest.mark.parametrize("stack_mode", [Mode.ENFORCE, Mode.APPROVAL, Mode.DRY_RUN])
def test_sample_findings_are_dry_run_whatever_the_tags_and_mode(stack_mode: Mode) -> None:
    # GIVEN a sample finding on a resource that requires approval
    sample = incident("guardduty_sample_rdp_brute_force", resource_tags=(("firebreak:approval", "required"),))
    # WHEN its mode is decided
    # THEN it only plans, and nobody is asked
    assert decide_mode(sample, Playbook.BLOCK_IP, settings_with(stack_mode)) == (Mode.DRY_RUN, None)


def test_dry_run_stack_plans_even_a_finding_that_needs_approval() -> None:
    # GIVEN a dry-run stack and an untrusted finding: nothing would change, so nothing needs approving
    forged = incident("securityhub_custom_action", product_arn=UNTRUSTED)
    # THEN it plans without asking
    assert decide_mode(forged, Playbook.BLOCK_IP, settings_with(Mode.DRY_RUN)) == (Mode.DRY_RUN, None)


def test_notify_only_never_waits_for_approval() -> None:
    # GIVEN an approval stack and an untrusted finding that only notifies (telling people is what approval asks)
    forged = incident("securityhub_inspector_high", product_arn=UNTRUSTED)
    # THEN it notifies at once
    assert decide_mode(forged, Playbook.NOTIFY_ONLY, settings_with(Mode.APPROVAL)) == (Mode.ENFORCE, None)


# --- what will happen ---------------------------------------------------------------------------------------------


def test_block_ip_plan_names_every_remote_address() -> None:
    # GIVEN a port probe from three addresses
    probe = incident("guardduty_port_probe_high")
    # WHEN the block-ip plan is drawn up
    plan = planned_actions(Playbook.BLOCK_IP, probe, Outcome.AWAITING_APPROVAL)
    # THEN each address is an action awaiting approval
    assert [(a.type, a.target, a.outcome) for a in plan] == [
        (ActionType.BLOCK_IP, address, Outcome.AWAITING_APPROVAL) for address in probe.remote_ips
    ]
    assert all(a.reason.startswith("will add to the WAF block list") for a in plan)


@pytest.mark.parametrize(
    ("playbook", "name", "first"),
    [
        (Playbook.CONTAIN_INSTANCE, "guardduty_c2_outbound", (ActionType.ISOLATE_INSTANCE, "i-0a1b2c3d4e5f60003")),
        (
            Playbook.REVOKE_CREDENTIALS,
            "guardduty_iam_user_key_compromised",
            (ActionType.REVOKE_CREDENTIALS, "AKIAZ4FQH7XKN2LD3VB6"),
        ),
    ],
)
def test_containment_plans_name_the_resource_then_the_addresses(
    playbook: Playbook, name: str, first: tuple[ActionType, str]
) -> None:
    # GIVEN a finding for a containment playbook
    finding = incident(name)
    # WHEN its plan is drawn up
    plan = planned_actions(playbook, finding, Outcome.SKIPPED, "not done")
    # THEN the resource comes first, then every remote address, all with the reason given
    assert (plan[0].type, plan[0].target) == first
    assert [a.target for a in plan[1:]] == list(finding.remote_ips)
    assert {a.reason for a in plan} == {"not done"}


def test_notify_only_plans_nothing() -> None:
    assert planned_actions(Playbook.NOTIFY_ONLY, incident(), Outcome.AWAITING_APPROVAL) == ()


@pytest.mark.parametrize(
    ("decided_by", "reason"),
    [
        (TIMEOUT_POLICY, "not done: no answer within 60 s, and the timeout policy denies"),
        ("arn:aws:iam::123456789012:user/alice", "not done: approval denied by arn:aws:iam::123456789012:user/alice"),
    ],
)
def test_denial_reason_says_who_or_what_denied(decided_by: str, reason: str) -> None:
    approval = Approval("tagged", 60, decision=Decision.DENIED, decided_by=decided_by)
    assert denial_reason(approval) == reason


# --- the token ----------------------------------------------------------------------------------------------------


def test_a_genuine_token_verifies_to_its_approval_id_until_it_expires() -> None:
    # GIVEN a request made now with a 60-second window
    request = new_request(KEY, "task-token-1", 60, NOW)
    # WHEN its token is verified within the window, and at its expiry
    # THEN it names its approval id, and then it is expired
    assert verify(KEY, request.token, NOW + 59) == request.approval_id
    with pytest.raises(ApprovalTokenExpired):
        verify(KEY, request.token, NOW + 60)


def test_the_token_carries_no_step_functions_task_token() -> None:
    # GIVEN a request for a task token
    request = new_request(KEY, "secret-task-token", 60, NOW)
    # THEN neither the token nor the id contains it
    assert "secret-task-token" not in request.token
    assert request.approval_id in request.token


def test_approval_id_is_stable_per_task_token_and_keyed() -> None:
    # GIVEN two requests for one task token (a retried step), one for another, and one under another key
    first, retried = new_request(KEY, "t1", 60, NOW), new_request(KEY, "t1", 60, NOW + 5)
    other, other_key = new_request(KEY, "t2", 60, NOW), new_request(b"x" * 64, "t1", 60, NOW)
    # THEN the retry reuses the id, and neither another task nor another key can reproduce it
    assert first.approval_id == retried.approval_id
    assert len({first.approval_id, other.approval_id, other_key.approval_id}) == 3


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.replace(".1800000060.", ".1900000060."),  # expiry extended
        lambda t: "fb1.someone-elses-id." + t.split(".", 2)[2],  # id swapped
        lambda t: "fb2." + t.split(".", 1)[1],  # version changed
    ],
    ids=["signature", "expiry", "approval-id", "version"],
)
def test_a_tampered_token_is_refused(tamper: Any) -> None:
    # GIVEN a genuine token, altered
    token = tamper(new_request(KEY, "t", 60, NOW).token)
    # WHEN it is verified
    # THEN it is refused as invalid, not merely expired
    with pytest.raises(ApprovalTokenInvalid) as raised:
        verify(KEY, token, NOW)
    assert not isinstance(raised.value, ApprovalTokenExpired)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = sign(b"attacker-key", "abc", NOW + 60)
    with pytest.raises(ApprovalTokenInvalid, match="signature"):
        verify(KEY, token, NOW)


@pytest.mark.parametrize("token", ["", "fb1", "fb1.a.b.c", "fb1.a.12.sig.extra", "x" * 5000, "fb1.é.12.ü"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ApprovalTokenInvalid):
        verify(KEY, token, NOW)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=300))
def test_any_string_verifies_or_is_refused_nothing_else(token: str) -> None:
    # GIVEN any string as a token  WHEN verified  THEN an approval id or ApprovalTokenInvalid
    try:
        verify(KEY, token, NOW)
    except ApprovalTokenInvalid:
        return


def test_request_expiry_is_readable_utc() -> None:
    assert ApprovalRequest("id", "tok", 0).expires == "1970-01-01T00:00:00+00:00"


# --- reading an answer --------------------------------------------------------------------------------------------


def url_event(body: str, caller: str | None = "arn:aws:iam::123456789012:user/alice", **extra: Any) -> dict[str, Any]:
    authorizer = {"iam": {"userArn": caller}} if caller else {}
    return {
        "version": "2.0",
        "requestContext": {"http": {"method": "POST"}, "authorizer": authorizer},
        "body": body,
        **extra,
    }


def test_function_url_answer_names_the_sigv4_caller() -> None:
    answer = Answer.from_event(url_event(json.dumps({"token": "t", "decision": "approve"})))
    assert answer == Answer("t", Decision.APPROVED, "arn:aws:iam::123456789012:user/alice")


def test_base64_body_is_read() -> None:
    body = base64.b64encode(json.dumps({"token": "t", "decision": "DENY"}).encode()).decode()
    answer = Answer.from_event(url_event(body, isBase64Encoded=True))
    assert answer.decision is Decision.DENIED


def test_direct_invocation_says_the_caller_is_in_cloudtrail() -> None:
    answer = Answer.from_event({"token": "t", "decision": "deny"})
    assert (answer.decision, answer.answered_by) == (Decision.DENIED, DIRECT_CALLER)


@pytest.mark.parametrize(
    "event",
    [
        {"decision": "approve"},
        {"token": 42, "decision": "approve"},
        {"token": "t", "decision": "maybe"},
        {"token": "t"},
        url_event("{not json"),
        url_event("[1, 2]"),
        url_event("!!notbase64!!", isBase64Encoded=True),
    ],
    ids=["no-token", "token-not-text", "bad-decision", "no-decision", "body-not-json", "body-not-object", "bad-b64"],
)
def test_unreadable_answers_are_bad_requests(event: dict[str, Any]) -> None:
    with pytest.raises(ApprovalAnswerInvalid):
        Answer.from_event(event)


@pytest.mark.parametrize(
    ("status", "http"),
    [
        (AnswerStatus.APPROVED, 200),
        (AnswerStatus.DENIED, 200),
        (AnswerStatus.BAD_REQUEST, 400),
        (AnswerStatus.REFUSED, 403),
        (AnswerStatus.ALREADY_ANSWERED, 409),
        (AnswerStatus.EXPIRED, 410),
        (AnswerStatus.NOT_WAITING, 410),
    ],
)
def test_answer_statuses_map_to_http(status: AnswerStatus, http: int) -> None:
    assert status.http_status == http


# --- the pending entry is single-use ------------------------------------------------------------------------------


def test_a_pending_entry_is_taken_exactly_once(aws: None) -> None:
    # GIVEN a pending approval in a table shaped like the template's
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="approvals",
        KeySchema=[{"AttributeName": "approval_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "approval_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    request = new_request(KEY, "task-token", 60, NOW)
    store_pending(dynamodb, "approvals", request, {"task_token": "task-token", "incident_id": "fb-1"})

    # WHEN two answers take it
    first = take_pending(dynamodb, "approvals", request.approval_id)
    second = take_pending(dynamodb, "approvals", request.approval_id)

    # THEN the first gets the task token, the second nothing, and the entry is gone
    assert first is not None
    assert (first["task_token"], first["incident_id"], first["expires_at"]) == ("task-token", "fb-1", str(NOW + 60))
    assert second is None
    assert dynamodb.scan(TableName="approvals")["Count"] == 0
