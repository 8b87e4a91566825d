"""Release writes back only Firebreak's own policies: a forged incident record cannot put a policy on a principal."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from firebreak.core.models import Action, ActionType, Outcome
from firebreak.incident.undo import ReleaseContext, not_firebreaks, undo

DENY = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def iam() -> Any:
    return boto3.client("iam", region_name="us-east-1")


def context() -> ReleaseContext:
    return ReleaseContext("fb-incident", lambda service: boto3.client(service, region_name="us-east-1"))


@pytest.fixture
def user_with(aws: None) -> Any:
    def attach(policy: str, document: dict[str, Any]) -> None:
        iam().create_user(UserName="deploy-bot")
        iam().put_user_policy(UserName="deploy-bot", PolicyName=policy, PolicyDocument=json.dumps(document))

    return attach


def step(policy: str, before: dict[str, Any] | None, after: dict[str, Any]) -> Action:
    ids = {"user": "deploy-bot", "policy_name": policy}
    return Action(
        ActionType.REVOKE_CREDENTIALS,
        "deploy-bot",
        Outcome.APPLIED,
        "revoked",
        {**ids, "document": before},
        {**ids, "document": after},
    )


def test_a_recorded_allow_document_is_refused_and_firebreaks_deny_stays(user_with: Any) -> None:
    # GIVEN a record whose "earlier document" of FirebreakDenyAll allows everything (a forged or corrupted record)
    user_with("FirebreakDenyAll", DENY)

    # WHEN release undoes the step
    entry = undo(step("FirebreakDenyAll", ALLOW_ALL, DENY), context())

    # THEN it refuses as a conflict, says why, and the deny policy is untouched
    assert entry.outcome is Outcome.SKIPPED
    assert "conflict" in entry.reason and "Deny statements only" in entry.reason
    document = iam().get_user_policy(UserName="deploy-bot", PolicyName="FirebreakDenyAll")["PolicyDocument"]
    assert document == DENY


def test_a_policy_name_firebreak_never_writes_is_neither_deleted_nor_rewritten(user_with: Any) -> None:
    # GIVEN a record naming the user's own policy, as if Firebreak had attached it
    user_with("team-access", ALLOW_ALL)

    entry = undo(step("team-access", None, ALLOW_ALL), context())

    assert entry.outcome is Outcome.SKIPPED and "not a policy Firebreak writes" in entry.reason
    assert iam().list_user_policies(UserName="deploy-bot")["PolicyNames"] == ["team-access"]


def test_firebreaks_own_deny_documents_are_still_put_back(user_with: Any) -> None:
    older = {"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}}
    user_with("FirebreakDenyAll", DENY)

    entry = undo(step("FirebreakDenyAll", older, DENY), context())

    assert entry.outcome is Outcome.RELEASED, entry.reason
    document = iam().get_user_policy(UserName="deploy-bot", PolicyName="FirebreakDenyAll")["PolicyDocument"]
    assert document == older


@pytest.mark.parametrize(
    ("policy", "document", "refused"),
    [
        ("FirebreakDenyAll", None, False),
        ("AWSRevokeOlderSessions", DENY, False),
        ("FirebreakRevokeSessions-i-0abc", DENY, False),
        ("FirebreakDenyAll", {"Statement": []}, True),
        ("FirebreakDenyAll", {"Statement": [{"Effect": "Deny"}, {"Effect": "Allow"}]}, True),
        ("FirebreakDenyAll", "not a document", True),
        ("AdministratorAccess", DENY, True),
    ],
)
def test_only_firebreak_names_and_deny_documents_pass(policy: str, document: Any, refused: bool) -> None:
    assert (not_firebreaks(policy, document) is not None) is refused
