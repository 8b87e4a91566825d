"""Credential revocation: stop the access key or role sessions a finding names, and never a protected principal.

Every step reads before it writes, so a step that already took effect is `already_applied`, and records its
before-state for undo. An IAM error that retrying cannot fix fails that step alone; throttling propagates for the
ASL Retry, which is safe because every step is idempotent.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, ParamSpec

from botocore.exceptions import ClientError

from firebreak.core.errors import IamUnavailable, MemberRoleUnavailable
from firebreak.core.members import MEMBER_ROLES, workload_client
from firebreak.core.models import Action, ActionType, Incident, Mode, Outcome, action_of
from firebreak.triage.decision import manual_steps
from firebreak.triage.incidents import incident_id_for

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

P = ParamSpec("P")

# The inline policy the IAM console's "Revoke active sessions" attaches; people and tools look for this name.
REVOKE_SESSIONS_POLICY = "AWSRevokeOlderSessions"
# One policy per instance, so that revoking a second instance of the role does not lift the first one's denial.
INSTANCE_SESSIONS_POLICY_PREFIX = "FirebreakRevokeSessions-"
USER_DENY_POLICY = "FirebreakDenyAll"
SERVICE_LINKED_PATH = "/aws-service-role/"
IDENTITY_CENTER_PATH = "/aws-reserved/sso.amazonaws.com/"
EXFILTRATION_MARKER = "InstanceCredentialExfiltration"
_IAM_NAME = re.compile(r"[\w+=,.@-]{1,64}")
# EC2 names an instance role's session after the instance: the principal id is AROA…:i-0123456789abcdef0.
_INSTANCE_SESSION = re.compile(r":(i-[0-9a-f]{8,17})$")
_TRANSIENT_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceFailure"})


@dataclass(frozen=True)
class RevocationSettings:
    """The stack's revocation options, from the Globals environment every function shares."""

    stack_name: str
    protected_principals: frozenset[str]
    delete_login_profile: bool
    scope_to_instance: bool

    @classmethod
    def from_env(cls) -> RevocationSettings:
        env = os.environ
        names = env.get("PROTECTED_PRINCIPALS", "").split(",")
        return cls(
            stack_name=env.get("STACK_NAME", ""),
            protected_principals=frozenset(name.strip().casefold() for name in names if name.strip()),
            delete_login_profile=env.get("DELETE_LOGIN_PROFILE", "false").lower() == "true",
            scope_to_instance=env.get("REVOKE_INSTANCE_SESSIONS_ONLY", "false").lower() == "true",
        )


# Principal types Firebreak revokes itself; the others are escalated to a person.
_REVOCABLE = frozenset({"IAMUser", "AssumedRole"})


@dataclass(frozen=True)
class RevocationRequest:
    """What Revoke Credentials is asked: the incident, the mode, and the moment older sessions stop counting."""

    incident: Incident
    mode: Mode
    issued_before: datetime

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> RevocationRequest:
        issued_before = datetime.fromisoformat(str(data["issued_before"]))
        if issued_before.tzinfo is None:
            issued_before = issued_before.replace(tzinfo=UTC)
        return cls(Incident.from_dict(dict(data["incident"])), Mode(data["mode"]), issued_before)

    @property
    def token_issue_time(self) -> str:
        """ISO 8601 in UTC with milliseconds and a Z, as the IAM console writes aws:TokenIssueTime."""
        return self.issued_before.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PolicyChange:
    """One inline deny policy to put on a user or a role, and what it does, in words for the responders."""

    kind: Literal["user", "role"]
    name: str
    policy: str
    document: dict[str, Any]
    effect: str


def session_revocation_policy(token_issue_time: str, instance_arn: str | None = None) -> dict[str, Any]:
    """The console's AWSRevokeOlderSessions document; with instance_arn, narrowed to that instance's sessions."""
    condition: dict[str, Any] = {"DateLessThan": {"aws:TokenIssueTime": token_issue_time}}
    if instance_arn is not None:
        condition["StringEquals"] = {"ec2:SourceInstanceARN": instance_arn}
    return {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition},
    }


def user_deny_policy(token_issue_time: str) -> dict[str, Any]:
    """Deny-all for the user, plus the older-sessions deny that still holds if the deny-all is lifted first."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"},
            {
                "Sid": "DenySessionsIssuedBeforeRevocation",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": token_issue_time}},
            },
        ],
    }


def covers(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """True when current denies at least what wanted does: the same document, with issue times no earlier."""
    if current is None or _without_times(current) != _without_times(wanted):
        return False
    try:
        pairs = zip(_times(current), _times(wanted), strict=True)
        return all(_instant(have) >= _instant(want) for have, want in pairs)
    except ValueError:
        return False


def protection_reason(kind: Literal["user", "role"], name: str, settings: RevocationSettings) -> str | None:
    """Why Firebreak must not touch this principal, or None. Names compare case-insensitively, as IAM does."""
    if name.casefold() in settings.protected_principals:
        return f"{kind} {name} is on the break-glass list (ProtectedPrincipals): never touched; act by hand if needed"
    if kind != "role":
        return None
    # The member roles member.yaml deploys in every member account are Firebreak's hands there.
    if name.casefold() in {role.casefold() for role in MEMBER_ROLES.values()}:
        return f"role {name} is Firebreak's member role: never touched"
    # CloudFormation names the stack's roles <stack>-<LogicalId>-<suffix>, which the template's Deny matches too.
    if name.casefold().startswith(f"{settings.stack_name}-".casefold()):
        return f"role {name} belongs to the Firebreak stack {settings.stack_name}: never touched"
    # Without the stack name Firebreak cannot tell its own roles apart, so it touches none.
    if not settings.stack_name:
        return f"STACK_NAME is not set, so role {name} might be Firebreak's own: not touched"
    return None


def compromised_instance(incident: Incident) -> str | None:
    """The instance whose role credentials the finding saw used, when it names one."""
    match = _INSTANCE_SESSION.search(incident.principal_id or "")
    return match.group(1) if match else incident.instance_id


def revoke_where_held(request: RevocationRequest, settings: RevocationSettings) -> list[Action]:
    """Revoke Credentials in the account and Region of the incident, through its member role outside the stack's."""
    incident = request.incident
    if incident.principal_type not in _REVOCABLE:
        return _not_revocable(incident)
    try:
        iam = workload_client(
            "iam", incident.account_id, incident.region, "revoke_credentials", incident_id_for(incident)
        )
    except MemberRoleUnavailable as error:
        target = incident.access_key_id or incident.principal_name or "credentials"
        return [_action(target, Outcome.FAILED, f"not revoked: {error}")]
    return revoke(iam, request, settings)


def revoke(iam: IAMClient, request: RevocationRequest, settings: RevocationSettings) -> list[Action]:
    """Revoke what the finding's principal holds; principals Firebreak cannot revoke are skipped with the reason."""
    incident = request.incident
    if incident.principal_type == "IAMUser":
        return revoke_user(iam, request, settings)
    if incident.principal_type == "AssumedRole":
        return revoke_role(iam, request, settings)
    return _not_revocable(incident)


def _not_revocable(incident: Incident) -> list[Action]:
    target = incident.access_key_id or incident.principal_name or "credentials"
    reason = manual_steps(incident) or f"principal type {incident.principal_type} is not revoked automatically"
    return [_action(target, Outcome.SKIPPED, reason)]


def revoke_user(iam: IAMClient, request: RevocationRequest, settings: RevocationSettings) -> list[Action]:
    """Deactivate the finding's access key (never another), deny the user, and optionally drop its console password."""
    incident = request.incident
    user = incident.principal_name or ""
    target = incident.access_key_id or user or "credentials"
    refusal = _name_refusal("user", user) or protection_reason("user", user, settings)
    if refusal:
        return [_action(target, Outcome.SKIPPED, refusal)]
    try:
        keys = {key["AccessKeyId"]: key["Status"] for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
    except ClientError as error:
        if _code(error) == "NoSuchEntity":
            return [_action(target, Outcome.SKIPPED, f"user {user} no longer exists: nothing left to revoke")]
        return [_failure(target, f"reading the access keys of user {user}", error)]
    when = request.token_issue_time
    deny = PolicyChange(
        "user",
        user,
        USER_DENY_POLICY,
        user_deny_policy(when),
        f"{USER_DENY_POLICY} on user {user} denies it everything, and every session issued before {when}",
    )
    key_id = incident.access_key_id
    steps = [
        partial(_step, target, "deactivating the access key", _deactivate_key, iam, user, key_id, keys, request.mode),
        partial(_step, target, f"attaching {USER_DENY_POLICY}", _put_policy, iam, deny, request.mode, target),
    ]
    if settings.delete_login_profile:
        deleting = "deleting the console password"
        steps.append(partial(_step, target, deleting, _delete_login_profile, iam, user, target, request.mode))
    return _in_order(target, steps)


def _in_order(target: str, steps: Sequence[Callable[[], Action]]) -> list[Action]:
    """Each step's action. IAM still throttling propagates for the ASL Retry only while this run has changed nothing:
    a retry after a change finds it done and records it already_applied with the changed state as its before-state,
    so the record would lose what Firebreak did (and the release could not undo it). After a change it is a failed
    action, and the incident is truthfully partially contained."""
    actions: list[Action] = []
    for step in steps:
        try:
            actions.append(step())
        except IamUnavailable as error:
            if all(action.outcome is not Outcome.APPLIED for action in actions):
                raise
            reason = f"{error}: still throttled after retries; not retried, so the change before it stays recorded"
            actions.append(_action(target, Outcome.FAILED, reason))
    return actions


def revoke_role(iam: IAMClient, request: RevocationRequest, settings: RevocationSettings) -> list[Action]:
    """Deny the role's sessions issued before the request, all of them or (option) the compromised instance's."""
    incident = request.incident
    role = incident.principal_name or ""
    target = role or "credentials"
    refusal = _name_refusal("role", role) or protection_reason("role", role, settings)
    if refusal:
        return [_action(target, Outcome.SKIPPED, refusal)]
    try:
        details = iam.get_role(RoleName=role)["Role"]
    except ClientError as error:
        if _code(error) == "NoSuchEntity":
            return [_action(target, Outcome.SKIPPED, f"role {role} no longer exists: nothing left to revoke")]
        return [_failure(target, f"reading role {role}", error)]
    path = details.get("Path", "/")
    if path.startswith(SERVICE_LINKED_PATH):
        reason = f"role {role} is service-linked: AWS does not allow revoking its sessions; review what the service did"
        return [_action(target, Outcome.SKIPPED, reason)]
    if path.startswith(IDENTITY_CENTER_PATH):
        reason = f"role {role} belongs to an IAM Identity Center permission set: revoke its sessions in Identity Center"
        return [_action(target, Outcome.SKIPPED, reason)]
    instance = compromised_instance(incident) if settings.scope_to_instance else None
    when = request.token_issue_time
    if instance is None:
        effect = (
            f"{REVOKE_SESSIONS_POLICY} on role {role} denies every session issued before {when}; blast radius: every "
            "older session of the role (other instances, users and services) must get new credentials"
        )
        if EXFILTRATION_MARKER in incident.finding_type:
            effect += "; every EC2 instance using the role gets new credentials from IMDS and keeps working"
        if settings.scope_to_instance:
            effect += "; the finding names no instance, so the narrower per-instance deny was not possible"
        change = PolicyChange("role", role, REVOKE_SESSIONS_POLICY, session_revocation_policy(when), effect)
    else:
        partition = details["Arn"].split(":")[1]
        instance_arn = f"arn:{partition}:ec2:{incident.region}:{incident.account_id}:instance/{instance}"
        policy = INSTANCE_SESSIONS_POLICY_PREFIX + instance
        effect = (
            f"{policy} on role {role} denies the sessions issued before {when} to instance {instance} only; "
            "the instance gets new credentials from IMDS, other users of the role keep their sessions"
        )
        change = PolicyChange("role", role, policy, session_revocation_policy(when, instance_arn), effect)
    return [_step(target, f"attaching {change.policy}", _put_policy, iam, change, request.mode, target)]


# --- steps: each reads the current state, then plans or writes, and records before and after -----------------------


def _deactivate_key(iam: IAMClient, user: str, key_id: str | None, keys: Mapping[str, str], mode: Mode) -> Action:
    if not key_id:
        return _action(user, Outcome.SKIPPED, "the finding names no access key to deactivate")
    if key_id.startswith("ASIA"):
        reason = f"{key_id} is a temporary session key, which cannot be deactivated; the deny policy ends its sessions"
        return _action(key_id, Outcome.SKIPPED, reason)
    status = keys.get(key_id)
    if status is None:
        return _action(key_id, Outcome.SKIPPED, f"access key no longer exists for user {user}")
    before = {"user": user, "access_key_id": key_id, "status": status}
    after = {**before, "status": "Inactive"}
    if status == "Inactive":
        return _action(key_id, Outcome.ALREADY_APPLIED, f"access key of user {user} is already inactive", before)
    if mode is Mode.DRY_RUN:
        call = f"would call iam:UpdateAccessKey(UserName={user}, AccessKeyId={key_id}, Status=Inactive)"
        return _action(key_id, Outcome.PLANNED, call, before, after)
    iam.update_access_key(UserName=user, AccessKeyId=key_id, Status="Inactive")
    reason = f"deactivated the access key of user {user}; not deleted, so the investigation can trace it"
    return _action(key_id, Outcome.APPLIED, reason, before, after)


def _put_policy(iam: IAMClient, change: PolicyChange, mode: Mode, target: str) -> Action:
    kind, name, policy = change.kind, change.name, change.policy
    current = inline_policy(iam, kind, name, policy)
    before = {kind: name, "policy_name": policy, "document": current}
    after = {kind: name, "policy_name": policy, "document": change.document}
    if covers(current, change.document):
        reason = f"{policy} on {kind} {name} already denies at least as much"
        return _action(target, Outcome.ALREADY_APPLIED, reason, before, after)
    if mode is Mode.DRY_RUN:
        api = "PutUserPolicy" if kind == "user" else "PutRolePolicy"
        call = f"iam:{api}({kind.capitalize()}Name={name}, PolicyName={policy}, PolicyDocument=<after.document>)"
        return _action(target, Outcome.PLANNED, f"would call {call}: {change.effect}", before, after)
    text = json.dumps(change.document, separators=(",", ":"))
    if kind == "user":
        iam.put_user_policy(UserName=name, PolicyName=policy, PolicyDocument=text)
    else:
        iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=text)
    return _action(target, Outcome.APPLIED, f"attached: {change.effect}", before, after)


def _delete_login_profile(iam: IAMClient, user: str, target: str, mode: Mode) -> Action:
    gone = {"user": user, "login_profile": False}
    try:
        iam.get_login_profile(UserName=user)
    except ClientError as error:
        if _code(error) != "NoSuchEntity":
            raise
        return _action(target, Outcome.ALREADY_APPLIED, f"user {user} has no console password", gone, gone)
    before = {"user": user, "login_profile": True}
    if mode is Mode.DRY_RUN:
        return _action(target, Outcome.PLANNED, f"would call iam:DeleteLoginProfile(UserName={user})", before, gone)
    try:
        iam.delete_login_profile(UserName=user)
    except ClientError as error:
        if _code(error) != "NoSuchEntity":
            raise
    reason = f"deleted the console password of user {user}; undo means setting a new one"
    return _action(target, Outcome.APPLIED, reason, before, gone)


# --- helpers ------------------------------------------------------------------------------------------------------


def inline_policy(iam: IAMClient, kind: Literal["user", "role"], name: str, policy: str) -> dict[str, Any] | None:
    """The inline policy's document, or None when the user or role has no policy of that name."""
    try:
        if kind == "user":
            document: Any = iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
        else:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    except ClientError as error:
        if _code(error) != "NoSuchEntity":
            raise
        return None
    # boto3 decodes the URL-encoded document into a dict; a string is what other clients may hand back.
    return json.loads(document) if isinstance(document, str) else dict(document)


def _step(target: str, doing: str, run: Callable[P, Action], *args: P.args, **kwargs: P.kwargs) -> Action:
    """run's action, or a failed one naming the IAM error; throttling propagates for the state machine's Retry."""
    try:
        return run(*args, **kwargs)
    except ClientError as error:
        return _failure(target, doing, error)


def _failure(target: str, doing: str, error: ClientError) -> Action:
    code = _code(error)
    if code in _TRANSIENT_CODES:
        raise IamUnavailable(f"{doing}: {code}") from error
    message = error.response.get("Error", {}).get("Message", "")
    return _action(target, Outcome.FAILED, f"{doing} failed: {code}: {message}"[:500])


def _name_refusal(kind: str, name: str) -> str | None:
    if _IAM_NAME.fullmatch(name):
        return None
    return f"the finding names no valid IAM {kind} ({name!r})" if name else f"the finding names no IAM {kind}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


_action = partial(action_of, ActionType.REVOKE_CREDENTIALS)


def _without_times(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: "" if key == "aws:TokenIssueTime" else _without_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


def _times(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        found: list[str] = []
        for key, item in value.items():
            found += [str(item)] if key == "aws:TokenIssueTime" else _times(item)
        return found
    if isinstance(value, list):
        return [time for item in value for time in _times(item)]
    return []


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
