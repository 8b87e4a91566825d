"""containment.credentials against moto IAM: what is revoked, what is refused, and that a second run changes nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.containment.credentials import (
    REVOKE_SESSIONS_POLICY,
    USER_DENY_POLICY,
    RevocationRequest,
    RevocationSettings,
    compromised_instance,
    covers,
    protection_reason,
    revoke,
    session_revocation_policy,
)
from firebreak.core.errors import IamUnavailable
from firebreak.core.models import Action, ActionType, Incident, IncidentStatus, Mode, Outcome, Playbook
from firebreak.core.settings import Settings
from firebreak.incident.notifications import summary, undo_hint
from firebreak.triage.decision import manual_steps, triage
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import final_status
from functions.revoke_credentials import app
from tests.support import load_event

WHEN = "2026-03-14T16:21:02.417Z"
SETTINGS = RevocationSettings(
    stack_name="firebreak", protected_principals=frozenset(), delete_login_profile=False, scope_to_instance=False
)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


def request_for(name: str, mode: str = "enforce", **incident: Any) -> RevocationRequest:
    """The Revoke Credentials input of a sample event, with incident fields changed."""
    data = copy.deepcopy(load_event(f"revoke_credentials/{name}")["input"])
    data["incident"].update(incident)
    data["mode"] = mode
    return RevocationRequest.from_event(data)


@pytest.fixture
def iam(aws: None) -> Any:
    return boto3.client("iam", region_name="us-east-1")


@pytest.fixture
def user_keys(iam: Any) -> tuple[str, str]:
    """ci-deployer with two active keys: the finding's (first) and another one."""
    iam.create_user(UserName="ci-deployer")
    first = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    second = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    return first, second


def statuses(iam: Any, user: str = "ci-deployer") -> dict[str, str]:
    return {key["AccessKeyId"]: key["Status"] for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def user_policies(iam: Any, user: str = "ci-deployer") -> list[str]:
    return list(iam.list_user_policies(UserName=user)["PolicyNames"])


def role_policies(iam: Any, role: str = "web-server-role") -> list[str]:
    return list(iam.list_role_policies(RoleName=role)["PolicyNames"])


def outcomes(actions: list[Action]) -> list[str]:
    return [action.outcome.value for action in actions]


# --- IAM users ----------------------------------------------------------------------------------------------------


def test_user_finding_deactivates_only_its_key_and_denies_the_user_with_the_issue_time(
    iam: Any, user_keys: tuple[str, str]
) -> None:
    # GIVEN a user with two active keys and a finding naming the first
    finding_key, other_key = user_keys

    # WHEN the credentials are revoked
    actions = revoke(iam, request_for("iam_user_access_key", access_key_id=finding_key), SETTINGS)

    # THEN only the finding's key is inactive, and the deny-all policy also denies sessions issued before the request
    assert statuses(iam) == {finding_key: "Inactive", other_key: "Active"}
    assert outcomes(actions) == ["applied", "applied"]
    assert {action.target for action in actions} == {finding_key}
    assert all(action.type is ActionType.REVOKE_CREDENTIALS for action in actions)
    document = iam.get_user_policy(UserName="ci-deployer", PolicyName=USER_DENY_POLICY)["PolicyDocument"]
    deny_all, older_sessions = document["Statement"]
    assert (deny_all["Effect"], deny_all["Action"], deny_all["Resource"]) == ("Deny", "*", "*")
    assert older_sessions["Condition"] == {"DateLessThan": {"aws:TokenIssueTime": WHEN}}
    # AND the before-state for undo: the key was Active, no policy of that name existed
    key_step, policy_step = actions
    assert key_step.before == {"user": "ci-deployer", "access_key_id": finding_key, "status": "Active"}
    assert key_step.after["status"] == "Inactive"
    assert policy_step.before == {"user": "ci-deployer", "policy_name": USER_DENY_POLICY, "document": None}
    assert policy_step.after["document"] == document


def test_second_run_with_the_same_instant_is_already_applied_and_changes_nothing(
    iam: Any, user_keys: tuple[str, str]
) -> None:
    # GIVEN a revocation that already ran (a retried or redriven step)
    finding_key, _ = user_keys
    request = request_for("iam_user_access_key", access_key_id=finding_key)
    revoke(iam, request, SETTINGS)
    policy_before = iam.get_user_policy(UserName="ci-deployer", PolicyName=USER_DENY_POLICY)["PolicyDocument"]

    # WHEN it runs again
    actions = revoke(iam, request, SETTINGS)

    # THEN every step says already_applied and the policy is unchanged
    assert outcomes(actions) == ["already_applied", "already_applied"]
    assert iam.get_user_policy(UserName="ci-deployer", PolicyName=USER_DENY_POLICY)["PolicyDocument"] == policy_before


def test_later_incident_moves_the_issue_time_forward_and_records_the_previous_policy(
    iam: Any, user_keys: tuple[str, str]
) -> None:
    # GIVEN the user was revoked by an earlier incident
    finding_key, _ = user_keys
    revoke(iam, request_for("iam_user_access_key", access_key_id=finding_key), SETTINGS)
    later = copy.deepcopy(load_event("revoke_credentials/iam_user_access_key")["input"])
    later["incident"]["access_key_id"] = finding_key
    later["issued_before"] = "2026-03-15T09:00:00.000Z"

    # WHEN a later incident revokes it again
    _, policy_step = revoke(iam, RevocationRequest.from_event(later), SETTINGS)

    # THEN the policy now denies sessions issued before the later instant, and the earlier document is kept for undo
    assert policy_step.outcome is Outcome.APPLIED
    assert policy_step.before["document"]["Statement"][1]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == WHEN


def test_key_already_inactive_is_already_applied(iam: Any, user_keys: tuple[str, str]) -> None:
    # GIVEN the finding's key was deactivated by hand
    finding_key, _ = user_keys
    iam.update_access_key(UserName="ci-deployer", AccessKeyId=finding_key, Status="Inactive")

    # WHEN the credentials are revoked
    key_step, _ = revoke(iam, request_for("iam_user_access_key", access_key_id=finding_key), SETTINGS)

    # THEN the key step changes nothing and says so
    assert key_step.outcome is Outcome.ALREADY_APPLIED
    assert key_step.before["status"] == "Inactive"


def test_deleted_user_is_skipped_with_a_clear_reason(iam: Any) -> None:
    # GIVEN the finding's user no longer exists
    # WHEN the credentials are revoked
    actions = revoke(iam, request_for("iam_user_access_key"), SETTINGS)

    # THEN one skipped action says why, and nothing fails
    assert outcomes(actions) == ["skipped"]
    assert "no longer exists" in actions[0].reason


def test_deleted_key_is_skipped_but_the_user_is_still_denied(iam: Any, user_keys: tuple[str, str]) -> None:
    # GIVEN the finding names a key the user no longer has
    # WHEN the credentials are revoked
    actions = revoke(iam, request_for("iam_user_access_key", access_key_id="AKIAZ4FQH7XKN2LD3VB9"), SETTINGS)

    # THEN the key step is skipped, the deny policy still lands, and the user's keys are untouched
    assert outcomes(actions) == ["skipped", "applied"]
    assert "no longer exists" in actions[0].reason
    assert set(statuses(iam).values()) == {"Active"}
    assert user_policies(iam) == [USER_DENY_POLICY]


def test_temporary_key_of_a_user_is_not_deactivated_but_its_sessions_are_denied(
    iam: Any, user_keys: tuple[str, str]
) -> None:
    # GIVEN a finding on session credentials (ASIA…) of an IAM user
    # WHEN the credentials are revoked
    actions = revoke(iam, request_for("iam_user_access_key", access_key_id="ASIAZ4FQH7XKN2LD3VB8"), SETTINGS)

    # THEN there is no key to deactivate, and the deny policy ends the sessions
    assert outcomes(actions) == ["skipped", "applied"]
    assert "temporary" in actions[0].reason
    assert set(statuses(iam).values()) == {"Active"}


def test_dry_run_plans_the_exact_calls_and_changes_nothing(iam: Any, user_keys: tuple[str, str]) -> None:
    # GIVEN a dry-run request
    finding_key, _ = user_keys

    # WHEN the credentials are revoked
    actions = revoke(iam, request_for("iam_user_access_key", "dry-run", access_key_id=finding_key), SETTINGS)

    # THEN both steps are planned with the calls they would make, and nothing changed
    assert outcomes(actions) == ["planned", "planned"]
    assert f"iam:UpdateAccessKey(UserName=ci-deployer, AccessKeyId={finding_key}, Status=Inactive)" in actions[0].reason
    assert f"iam:PutUserPolicy(UserName=ci-deployer, PolicyName={USER_DENY_POLICY}" in actions[1].reason
    assert actions[1].after["document"]["Statement"][1]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == WHEN
    assert set(statuses(iam).values()) == {"Active"}
    assert user_policies(iam) == []


@pytest.mark.parametrize("has_password", [True, False])
def test_login_profile_option_deletes_the_console_password_and_records_whether_there_was_one(
    iam: Any, user_keys: tuple[str, str], has_password: bool
) -> None:
    # GIVEN the option is on, and the user has a console password or not
    finding_key, _ = user_keys
    if has_password:
        iam.create_login_profile(UserName="ci-deployer", Password="Correct-Horse-Battery-9")
    settings = RevocationSettings("firebreak", frozenset(), delete_login_profile=True, scope_to_instance=False)

    # WHEN the credentials are revoked
    *_, profile_step = revoke(iam, request_for("iam_user_access_key", access_key_id=finding_key), settings)

    # THEN the password is gone either way, and the record says whether there was one
    assert profile_step.outcome is (Outcome.APPLIED if has_password else Outcome.ALREADY_APPLIED)
    assert profile_step.before == {"user": "ci-deployer", "login_profile": has_password}
    with pytest.raises(ClientError):
        iam.get_login_profile(UserName="ci-deployer")


def test_access_denied_fails_that_step_alone_and_throttling_propagates(iam: Any, user_keys: tuple[str, str]) -> None:
    # GIVEN IAM refuses the policy write (a permanent error)
    finding_key, _ = user_keys

    class Refusing:
        def __init__(self, code: str) -> None:
            self.code = code

        def __getattr__(self, name: str) -> Any:
            return getattr(iam, name)

        def put_user_policy(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "PutUserPolicy")  # type: ignore[typeddict-item]

    request = request_for("iam_user_access_key", access_key_id=finding_key)

    # WHEN the credentials are revoked
    actions = revoke(Refusing("AccessDenied"), request, SETTINGS)

    # THEN the key step is applied and the policy step failed, naming the error
    assert outcomes(actions) == ["applied", "failed"]
    assert "AccessDenied" in actions[1].reason
    # AND throttling is raised as IamUnavailable, for the state machine's Retry
    with pytest.raises(IamUnavailable):
        revoke(Refusing("Throttling"), request, SETTINGS)


def test_throttling_after_the_key_was_deactivated_fails_that_step_instead_of_retrying(
    iam: Any, user_keys: tuple[str, str]
) -> None:
    # GIVEN IAM still throttles the policy write after the SDK's retries, and the key has not been touched yet
    finding_key, _ = user_keys

    class Throttling:
        def __getattr__(self, name: str) -> Any:
            return getattr(iam, name)

        def put_user_policy(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "PutUserPolicy")  # type: ignore[typeddict-item]

    # WHEN the credentials are revoked
    actions = revoke(Throttling(), request_for("iam_user_access_key", access_key_id=finding_key), SETTINGS)

    # THEN nothing is raised for a whole-step retry (which would record the key "already inactive", losing that
    # Firebreak deactivated it): the key step keeps its before-state and the policy step is failed, naming the error
    assert outcomes(actions) == ["applied", "failed"]
    assert actions[0].before["status"] == "Active"
    assert "Throttling" in actions[1].reason


# --- assumed roles ------------------------------------------------------------------------------------------------


def create_role(iam: Any, name: str = "web-server-role", path: str = "/") -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, Path=path)


def test_role_finding_attaches_the_console_revoke_sessions_policy_and_names_the_blast_radius(iam: Any) -> None:
    # GIVEN the instance role named by an instance-credential exfiltration finding
    create_role(iam)

    # WHEN its credentials are revoked
    (action,) = revoke(iam, request_for("assumed_role_instance_credentials"), SETTINGS)

    # THEN the role has exactly the console's AWSRevokeOlderSessions document with the request's instant
    document = iam.get_role_policy(RoleName="web-server-role", PolicyName=REVOKE_SESSIONS_POLICY)["PolicyDocument"]
    assert document == {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": WHEN}},
        },
    }
    assert (action.target, action.outcome) == ("web-server-role", Outcome.APPLIED)
    assert "every EC2 instance using the role gets new credentials from IMDS" in action.reason
    assert action.before == {"role": "web-server-role", "policy_name": REVOKE_SESSIONS_POLICY, "document": None}


def test_instance_scope_option_denies_only_the_compromised_instances_older_sessions(iam: Any) -> None:
    # GIVEN the narrower option, and a finding whose session name is the instance id
    create_role(iam)
    settings = RevocationSettings("firebreak", frozenset(), delete_login_profile=False, scope_to_instance=True)

    # WHEN the role's credentials are revoked
    (action,) = revoke(iam, request_for("assumed_role_instance_credentials"), settings)

    # THEN a per-instance policy denies older sessions from that instance only; the console policy is not attached
    policy = "FirebreakRevokeSessions-i-0a1b2c3d4e5f60004"
    assert role_policies(iam) == [policy]
    condition = iam.get_role_policy(RoleName="web-server-role", PolicyName=policy)["PolicyDocument"]["Statement"][
        "Condition"
    ]
    assert condition == {
        "DateLessThan": {"aws:TokenIssueTime": WHEN},
        "StringEquals": {"ec2:SourceInstanceARN": "arn:aws:ec2:us-east-1:123456789012:instance/i-0a1b2c3d4e5f60004"},
    }
    assert action.outcome is Outcome.APPLIED


def test_instance_scope_option_without_an_instance_falls_back_to_the_whole_role_and_says_so(iam: Any) -> None:
    # GIVEN the narrower option, and a finding whose session is not an instance's
    create_role(iam)
    settings = RevocationSettings("firebreak", frozenset(), delete_login_profile=False, scope_to_instance=True)
    request = request_for("assumed_role_instance_credentials", principal_id="AROAZ4FQH7XKN2LD3VB5X:alice")

    # WHEN the role's credentials are revoked
    (action,) = revoke(iam, request, settings)

    # THEN every older session is denied, and the reason says why the narrower deny was not used
    assert role_policies(iam) == [REVOKE_SESSIONS_POLICY]
    assert "names no instance" in action.reason


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/aws-service-role/elasticloadbalancing.amazonaws.com/", "service-linked"),
        ("/aws-reserved/sso.amazonaws.com/", "Identity Center"),
    ],
)
def test_roles_that_cannot_be_revoked_are_skipped_not_failed(iam: Any, path: str, expected: str) -> None:
    # GIVEN a service-linked role, or one made by IAM Identity Center
    create_role(iam, path=path)

    # WHEN its credentials are revoked
    (action,) = revoke(iam, request_for("assumed_role_instance_credentials"), SETTINGS)

    # THEN it is skipped with the reason, and the role is unchanged
    assert action.outcome is Outcome.SKIPPED
    assert expected in action.reason
    assert role_policies(iam) == []


def test_deleted_role_is_skipped_with_a_clear_reason(iam: Any) -> None:
    # GIVEN the finding's role no longer exists
    # WHEN its credentials are revoked
    (action,) = revoke(iam, request_for("assumed_role_instance_credentials"), SETTINGS)

    # THEN
    assert action.outcome is Outcome.SKIPPED
    assert "no longer exists" in action.reason


def test_role_already_revoked_at_a_later_instant_is_already_applied(iam: Any) -> None:
    # GIVEN someone already revoked the role's sessions, later than this request's instant
    create_role(iam)
    later = session_revocation_policy("2026-03-14T17:00:00Z")
    iam.put_role_policy(RoleName="web-server-role", PolicyName=REVOKE_SESSIONS_POLICY, PolicyDocument=json.dumps(later))

    # WHEN the request revokes it
    (action,) = revoke(iam, request_for("assumed_role_instance_credentials"), SETTINGS)

    # THEN the stronger policy stays as it was
    assert action.outcome is Outcome.ALREADY_APPLIED
    stored = iam.get_role_policy(RoleName="web-server-role", PolicyName=REVOKE_SESSIONS_POLICY)["PolicyDocument"]
    assert stored == later


# --- protected principals and principals nobody can revoke here ---------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "name", "listed", "expected"),
    [
        ("iam_user_access_key", "ci-deployer", "admin, CI-Deployer", "break-glass"),
        ("assumed_role_instance_credentials", "web-server-role", "web-server-role", "break-glass"),
        ("assumed_role_instance_credentials", "firebreak-RevokeCredentialsFunctionRole-1A2B3C", "", "Firebreak stack"),
    ],
)
def test_protected_principals_are_never_touched(
    iam: Any, sample: str, name: str, listed: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a principal on the break-glass list (any case), or one of the stack's own roles
    iam.create_user(UserName="ci-deployer")
    key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    create_role(iam, name if sample.startswith("assumed") else "web-server-role")
    monkeypatch.setenv("STACK_NAME", "firebreak")
    monkeypatch.setenv("PROTECTED_PRINCIPALS", listed)
    fields = {"principal_name": name, "access_key_id": key} if sample.startswith("iam") else {"principal_name": name}

    # WHEN its credentials are revoked with the settings the stack gives
    (action,) = revoke(iam, request_for(sample, **fields), RevocationSettings.from_env())

    # THEN it is refused with the reason, and nothing changed
    assert action.outcome is Outcome.SKIPPED
    assert expected in action.reason
    assert statuses(iam) == {key: "Active"}
    assert user_policies(iam) == []
    role = name if sample.startswith("assumed") else "web-server-role"
    assert role_policies(iam, role) == []


@pytest.mark.parametrize(
    ("stack", "role", "protected"),
    [
        ("firebreak", "firebreak-NotifyRespondersFunctionRole-9Z8Y7X", True),
        ("firebreak", "FIREBREAK-BlockIpStateMachineRole-1A2B3C", True),
        ("firebreak", "firebreaker-app", False),
        ("firebreak", "web-server-role", False),
        ("", "web-server-role", True),
    ],
)
def test_stack_roles_are_recognised_by_the_stack_name_prefix(stack: str, role: str, protected: bool) -> None:
    # GIVEN a stack name (or none configured) and a role name
    settings = RevocationSettings(stack, frozenset(), delete_login_profile=False, scope_to_instance=False)
    # WHEN the role's protection is decided
    # THEN only the stack's own roles are protected, and every role is when the stack name is unknown
    assert (protection_reason("role", role, settings) is not None) is protected


@pytest.mark.parametrize(
    ("principal", "expected"), [("Root", "root"), ("AWSService", "service"), ("Federated", "federated")]
)
def test_principals_no_policy_can_stop_are_skipped_with_what_a_person_must_do(
    iam: Any, principal: str, expected: str
) -> None:
    # GIVEN a finding whose principal is root, an AWS service or a federated user
    request = request_for("root_principal", principal_type=principal)

    # WHEN revocation is asked for anyway (a routing table changed by hand)
    (action,) = revoke(iam, request, SETTINGS)

    # THEN nothing is attempted and the reason is the instruction for a person
    assert action.outcome is Outcome.SKIPPED
    assert expected in action.reason.lower()
    assert action.reason == manual_steps(request.incident)


def test_root_notification_tells_the_reader_what_to_do_by_hand() -> None:
    # GIVEN the root finding, triaged as the stack does it
    decided = triage(normalise(load_event("eventbridge/guardduty_root_credential_usage")), Settings.from_env())

    # WHEN the responders' message is written
    text = summary(IncidentStatus.NOTIFIED, decided, (), "arn:aws:states:us-east-1:123456789012:execution:x:y")

    # THEN it names the principal and says what a person must do
    assert decided.playbook is Playbook.NOTIFY_ONLY
    assert "Principal: Root Root" in text
    assert "Escalated: Root principal: root credentials cannot be restricted" in text


def test_compromised_instance_is_read_from_the_session_name_in_either_finding_format() -> None:
    # GIVEN the instance-credential finding from GuardDuty, and its Security Hub copy
    guardduty = normalise(load_event("eventbridge/guardduty_access_key_malicious_ip"))
    asff = load_event("eventbridge/securityhub_inspector_high")
    asff["detail"]["findings"][0]["Resources"] = [
        {
            "Type": "AwsIamAccessKey",
            "Id": "AWS::IAM::AccessKey:ASIAZ4FQH7XKN2LD3VB5",
            "Details": {
                "AwsIamAccessKey": {
                    "PrincipalName": "web-server-role",
                    "PrincipalType": "AssumedRole",
                    "PrincipalId": "AROAZ4FQH7XKN2LD3VB5X:i-0a1b2c3d4e5f60004",
                }
            },
        }
    ]

    # WHEN the compromised instance is looked for
    # THEN both name the instance whose role session it was, and a user's principal id names none
    assert compromised_instance(guardduty) == "i-0a1b2c3d4e5f60004"
    assert compromised_instance(normalise(asff)) == "i-0a1b2c3d4e5f60004"
    assert compromised_instance(normalise(load_event("eventbridge/guardduty_iam_user_key_compromised"))) is None


def test_no_manual_steps_for_principals_firebreak_revokes() -> None:
    # GIVEN an IAM user incident
    incident: Incident = request_for("iam_user_access_key").incident
    # THEN
    assert manual_steps(incident) is None


# --- pure pieces --------------------------------------------------------------------------------------------------


def test_issue_time_is_utc_with_milliseconds_and_z_whatever_the_input_offset() -> None:
    data = copy.deepcopy(load_event("revoke_credentials/iam_user_access_key")["input"])
    for given in ("2026-03-14T17:21:02.417+01:00", "2026-03-14T16:21:02.417", "2026-03-14T16:21:02.417Z"):
        data["issued_before"] = given
        assert RevocationRequest.from_event(data).token_issue_time == WHEN
    assert RevocationRequest.from_event(data).issued_before == datetime(2026, 3, 14, 16, 21, 2, 417000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, False),
        (session_revocation_policy(WHEN), True),
        (session_revocation_policy("2026-03-14T16:21:03Z"), True),
        (session_revocation_policy("2026-03-14T16:21:02Z"), False),
        (session_revocation_policy(WHEN, "arn:aws:ec2:us-east-1:123456789012:instance/i-0a1b2c3d"), False),
        (session_revocation_policy("not a time"), False),
    ],
)
def test_covers_only_the_same_document_with_an_issue_time_no_earlier(current: Any, expected: bool) -> None:
    assert covers(current, session_revocation_policy(WHEN)) is expected


def test_undo_hint_gives_the_commands_that_reverse_each_applied_step(iam: Any, user_keys: tuple[str, str]) -> None:
    # GIVEN a user revocation that was applied
    finding_key, _ = user_keys
    actions = revoke(iam, request_for("iam_user_access_key", access_key_id=finding_key), SETTINGS)

    # WHEN the responders' undo hint is written
    hint = undo_hint(actions) or ""

    # THEN it reactivates the key and deletes the policy
    assert f"aws iam update-access-key --user-name ci-deployer --access-key-id {finding_key} --status Active" in hint
    assert f"aws iam delete-user-policy --user-name ci-deployer --policy-name {USER_DENY_POLICY}" in hint


@pytest.mark.parametrize(
    ("revocation", "expected"),
    [
        (Outcome.APPLIED, IncidentStatus.CONTAINED),
        (Outcome.ALREADY_APPLIED, IncidentStatus.CONTAINED),
        (Outcome.SKIPPED, IncidentStatus.PARTIALLY_CONTAINED),
        (Outcome.FAILED, IncidentStatus.PARTIALLY_CONTAINED),
    ],
)
def test_revoke_playbook_is_contained_only_when_the_credentials_were_revoked(
    revocation: Outcome, expected: IncidentStatus
) -> None:
    # GIVEN the finding's address was blocked and the revocation ended as given
    actions = [
        Action(ActionType.REVOKE_CREDENTIALS, "web-server-role", revocation),
        Action(ActionType.BLOCK_IP, "103.151.103.15/32", Outcome.APPLIED),
    ]
    # WHEN the final status is decided
    status = final_status(Playbook.REVOKE_CREDENTIALS, Mode.ENFORCE, actions, suppressed=False)
    # THEN a refused or failed revocation is never called contained
    assert status is expected


# --- the handler and its sample events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("iam_user_access_key", ["skipped", "applied"]),
        ("iam_user_access_key_dry_run", ["skipped", "planned"]),
        ("assumed_role_instance_credentials", ["applied"]),
        ("root_principal", ["skipped"]),
    ],
)
def test_handler_runs_every_sample_event(
    iam: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, sample: str, expected: list[str]
) -> None:
    # GIVEN the account holds the samples' user and role (moto cannot give the user the sample's key id)
    iam.create_user(UserName="ci-deployer")
    create_role(iam)
    monkeypatch.setenv("STACK_NAME", "firebreak")

    # WHEN the handler gets the sample event
    result = app.lambda_handler(load_event(f"revoke_credentials/{sample}"), lambda_context)

    # THEN it answers revoke_credentials actions with the expected outcomes
    assert [action["outcome"] for action in result["actions"]] == expected
    assert {action["type"] for action in result["actions"]} == {"revoke_credentials"}
