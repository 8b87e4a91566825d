"""contain-function: a Lambda function stopped (reserved concurrency 0) and kept as evidence (a published version).

Reserved concurrency 0 throttles every new invocation, synchronous, asynchronous and from event source mappings,
and changes neither the code nor the configuration, so the version published next holds exactly what ran. Both steps
read before they write: a function already at 0 is `already_applied` (and release leaves it at 0), and a version
Lambda does not publish because nothing changed since the last one is that one, `already_applied`. The evidence
records the code's SHA-256 and location and the configuration, with the environment's variable names only: their
values may be secrets. The execution role's older sessions are denied by revoke-credentials' own step, which the
playbook calls with the role this module read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import ClientError

from firebreak.core.aws import describe_error, error_code, is_transient
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.members import playbook_client
from firebreak.core.models import (
    APPROVAL_TAG,
    EXEMPT_TAG,
    Action,
    ActionType,
    Mode,
    Outcome,
    PlaybookRequest,
    action_of,
    asks_approval,
    says_exempt,
    step_output,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# Written as a string, not imported: containment may not import triage's approvals.
# CloudFormation tags every function a stack creates; SAM names them <stack>-<LogicalId>-<suffix>.
STACK_NAME_TAG = "aws:cloudformation:stack-name"
EVIDENCE_DESCRIPTION = "Firebreak evidence for incident {incident_id}: the function as it ran when contained"
# The configuration kept on the record; Environment is reduced to its variable names.
_CONFIGURATION_KEYS = (
    "FunctionArn",
    "Runtime",
    "Handler",
    "Role",
    "PackageType",
    "CodeSize",
    "MemorySize",
    "Timeout",
    "Architectures",
    "LastModified",
    "RevisionId",
    "KMSKeyArn",
    "VpcConfig",
    "TracingConfig",
    "DeadLetterConfig",
    "EphemeralStorage",
    "ImageConfigResponse",
)
_NOT_FOUND = "ResourceNotFoundException"


class ContainmentStatus(StrEnum):
    CONTAINED = "CONTAINED"
    ALREADY_CONTAINED = "ALREADY_CONTAINED"
    PLANNED = "PLANNED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"
    EXEMPT = "EXEMPT"
    REFUSED = "REFUSED"


# Outcomes after which the playbook stops: the function is not to be touched, and neither are its role or addresses.
STOPPED = frozenset({ContainmentStatus.NOT_FOUND, ContainmentStatus.EXEMPT, ContainmentStatus.REFUSED})


@dataclass(frozen=True)
class LambdaFunction:
    """The function as Lambda describes it now ($LATEST), its tags and its reserved concurrency (None: none set)."""

    name: str
    configuration: Mapping[str, Any]
    code: Mapping[str, Any]
    tags: Mapping[str, str]
    reserved_concurrency: int | None

    @property
    def role_arn(self) -> str | None:
        role = self.configuration.get("Role")
        return str(role) if role else None

    @property
    def role_name(self) -> str | None:
        """The execution role's name: the ARN's last path element (a role's path is not part of its name)."""
        arn = self.role_arn
        return arn.rpartition("/")[2] or None if arn else None

    @property
    def code_sha256(self) -> str:
        return str(self.configuration.get("CodeSha256", ""))

    def tag(self, key: str) -> str | None:
        return self.tags.get(key)


@dataclass(frozen=True)
class FunctionContainment:
    """What Contain Function did, the role whose sessions to deny, and the addresses to block."""

    status: ContainmentStatus
    actions: tuple[Action, ...]
    role_name: str | None = None
    block_addresses: tuple[str, ...] = ()
    suppressed_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return step_output(self)


# --- reading the function -----------------------------------------------------------------------------------------


def describe_function(client: LambdaClient, name: str) -> LambdaFunction | None:
    """The function now; None when Lambda does not know it."""
    try:
        described = client.get_function(FunctionName=name)
        concurrency = client.get_function_concurrency(FunctionName=name)
    except ClientError as error:
        if error_code(error) == _NOT_FOUND:
            return None
        raise
    reserved = concurrency.get("ReservedConcurrentExecutions")
    return LambdaFunction(
        name=name,
        configuration=dict(described.get("Configuration", {})),
        code=dict(described.get("Code", {})),
        tags=dict(described.get("Tags", {})),
        reserved_concurrency=None if reserved is None else int(reserved),
    )


def reserved_concurrency(client: LambdaClient, name: str) -> int | None:
    """The function's reserved concurrency now; None when it has none (it shares the account's unreserved pool)."""
    reserved = client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    return None if reserved is None else int(reserved)


def evidence(function: LambdaFunction) -> dict[str, Any]:
    """What the record keeps of the function: code identity and location, configuration, environment names only."""
    configuration = {key: function.configuration[key] for key in _CONFIGURATION_KEYS if key in function.configuration}
    variables = (function.configuration.get("Environment") or {}).get("Variables") or {}
    return {
        "code_sha256": function.code_sha256,
        "code_location": _without_query(function.code.get("Location")),
        "image_uri": function.code.get("ResolvedImageUri") or function.code.get("ImageUri"),
        "configuration": configuration,
        "layers": [layer.get("Arn") for layer in function.configuration.get("Layers") or []],
        "environment_variable_names": sorted(variables),
    }


def _without_query(location: Any) -> str | None:
    # GetFunction's Location is a presigned URL: its query string is a credential that lets anyone download the code
    # for ten minutes, so only the object's address goes on the record; the version ARN fetches the code later.
    if not location:
        return None
    parts = urlsplit(str(location))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# --- the guards ---------------------------------------------------------------------------------------------------


def firebreak_own(function: LambdaFunction, stack_name: str) -> str | None:
    """Why the function is Firebreak's own (or might be), or None: Firebreak never stops itself."""
    if not stack_name:
        return f"STACK_NAME is not set, so function {function.name} might be Firebreak's own: not contained"
    if function.tag(STACK_NAME_TAG) == stack_name:
        return f"function {function.name} belongs to the Firebreak stack {stack_name} (its {STACK_NAME_TAG} tag)"
    if function.name.casefold().startswith(f"{stack_name}-".casefold()):
        return f"function {function.name} is named like the Firebreak stack {stack_name}'s functions: not contained"
    return None


def _refusal(
    request: PlaybookRequest, function: LambdaFunction, stack_name: str, approved: bool
) -> FunctionContainment | None:
    name = function.name
    if says_exempt(function.tag(EXEMPT_TAG)):
        reason = f"function {name} is tagged {EXEMPT_TAG}=true: Firebreak never touches it"
        skipped = _action(name, Outcome.SKIPPED, reason)
        suppressed = f"function tagged {EXEMPT_TAG}=true"
        return FunctionContainment(ContainmentStatus.EXEMPT, (skipped,), suppressed_reason=suppressed)
    own = firebreak_own(function, stack_name)
    if own is not None:
        return FunctionContainment(ContainmentStatus.REFUSED, (_action(name, Outcome.SKIPPED, f"{own}; act by hand"),))
    # The finding's tags decided the mode; a tag added since stops every enforce run a person did not approve.
    tagged_now = asks_approval(function.tag(APPROVAL_TAG))
    if tagged_now and request.mode is Mode.ENFORCE and not approved:
        reason = (
            f"function {name} is tagged {APPROVAL_TAG}=required now (not when the finding was made): not contained "
            "without a person's approval; contain it by hand or answer a new finding in approval mode"
        )
        waiting = _action(name, Outcome.SKIPPED, reason, left_open=True)
        return FunctionContainment(ContainmentStatus.REFUSED, (waiting,))
    return None


# --- the steps ----------------------------------------------------------------------------------------------------


def stop_invocations(client: LambdaClient, function: LambdaFunction, mode: Mode) -> Action:
    """Reserved concurrency 0, recording what it was (None: the function had none reserved)."""
    name, previous = function.name, function.reserved_concurrency
    before = {"function": name, "reserved_concurrency": previous}
    after = {"function": name, "reserved_concurrency": 0}
    if previous == 0:
        reason = f"function {name} already has reserved concurrency 0: nothing invokes it"
        return _action(name, Outcome.ALREADY_APPLIED, reason, before, after)
    if mode is Mode.DRY_RUN:
        call = f"would call lambda:PutFunctionConcurrency(FunctionName={name}, ReservedConcurrentExecutions=0)"
        return _action(name, Outcome.PLANNED, call, before, after)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    was = "none reserved" if previous is None else f"it was {previous}"
    reason = f"reserved concurrency of {name} set to 0 ({was}): every new invocation is throttled; running ones end"
    return _action(name, Outcome.APPLIED, reason, before, after)


def publish_evidence(client: LambdaClient, function: LambdaFunction, request: PlaybookRequest) -> Action:
    """A version of the function as it is now, with its code and configuration on the record."""
    name = function.name
    kept = evidence(function)
    before = {"function": name, "evidence_version": None}
    description = EVIDENCE_DESCRIPTION.format(incident_id=request.incident_id)
    if request.dry_run:
        call = (
            f"would call lambda:PublishVersion(FunctionName={name}, CodeSha256={function.code_sha256}, "
            f"RevisionId={function.configuration.get('RevisionId')}, Description={description})"
        )
        return _action(name, Outcome.PLANNED, call, before, {**before, "evidence_version": "(new)", **kept})
    existing = _published_versions(client, name)
    # CodeSha256 and RevisionId make Lambda refuse if the function changed since it was read: the record then
    # never describes code other than the version's.
    arguments: dict[str, Any] = {"FunctionName": name, "Description": description}
    if function.code_sha256:
        arguments["CodeSha256"] = function.code_sha256
    if function.configuration.get("RevisionId"):
        arguments["RevisionId"] = str(function.configuration["RevisionId"])
    published = client.publish_version(**arguments)
    version = str(published["Version"])
    after = {**before, "evidence_version": version, "version_arn": published.get("FunctionArn"), **kept}
    # A numbered version the finding saw run is immutable, so it is evidence as it stands; $LATEST is what this keeps.
    after["finding_version"] = request.incident.function_version
    if version in existing:
        reason = (
            f"Lambda published no new version of {name}: version {version} already holds the code and configuration "
            "that run now, and is the evidence"
        )
        return _action(name, Outcome.ALREADY_APPLIED, reason, before, after)
    reason = f"published version {version} of {name} as evidence (code {function.code_sha256}); release keeps it"
    return _action(name, Outcome.APPLIED, reason, before, after)


def _published_versions(client: LambdaClient, name: str) -> set[str]:
    versions: set[str] = set()
    for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=name):
        versions |= {str(item["Version"]) for item in page.get("Versions", []) if item.get("Version") != "$LATEST"}
    return versions


# --- the playbook step --------------------------------------------------------------------------------------------


def contain_function(
    client: LambdaClient, request: PlaybookRequest, stack_name: str, approved: bool = False
) -> FunctionContainment:
    """Contain Function: the guards, then reserved concurrency 0, then the evidence version; `approved`: a person
    approved this run (the live approval tag then asks for nothing more)."""
    name = request.incident.function_name
    if name is None:
        skipped = _action("unknown", Outcome.SKIPPED, "the finding names no Lambda function")
        return FunctionContainment(ContainmentStatus.NOT_FOUND, (skipped,))
    function = describe_function(client, name)
    if function is None:
        skipped = _action(name, Outcome.SKIPPED, f"function {name} does not exist: nothing left to contain")
        return FunctionContainment(ContainmentStatus.NOT_FOUND, (skipped,))
    refusal = _refusal(request, function, stack_name, approved)
    if refusal is not None:
        return refusal
    steps: Sequence[tuple[str, Callable[[], Action]]] = (
        ("setting reserved concurrency 0", lambda: stop_invocations(client, function, request.mode)),
        ("publishing the evidence version", lambda: publish_evidence(client, function, request)),
    )
    actions = _in_order(name, steps)
    return FunctionContainment(
        _status(actions, request.dry_run),
        tuple(actions),
        role_name=function.role_name,
        block_addresses=request.incident.remote_ips,
    )


def _in_order(name: str, steps: Sequence[tuple[str, Callable[[], Action]]]) -> list[Action]:
    """Each step's action; a refusal fails that step alone. Throttling propagates for the ASL Retry only while this
    run has changed nothing: a retry after a change would find it done and record the changed state as before."""
    actions: list[Action] = []
    for doing, step in steps:
        try:
            actions.append(step())
        except ClientError as error:
            changed = any(action.outcome is Outcome.APPLIED for action in actions)
            if is_transient(error) and not changed:
                raise
            actions.append(_action(name, Outcome.FAILED, f"{doing} failed: {describe_error(error)}"[:500]))
    return actions


def _status(actions: Sequence[Action], dry_run: bool) -> ContainmentStatus:
    outcomes = {action.outcome for action in actions}
    if Outcome.FAILED in outcomes:
        return ContainmentStatus.FAILED
    if outcomes == {Outcome.ALREADY_APPLIED}:
        return ContainmentStatus.ALREADY_CONTAINED
    return ContainmentStatus.PLANNED if dry_run else ContainmentStatus.CONTAINED


def contain(request: PlaybookRequest, stack_name: str, approved: bool = False) -> FunctionContainment:
    """contain_function in the incident's account and Region, through the function's member role outside the stack's."""
    try:
        client = playbook_client("lambda", request, "contain_function")
    except MemberRoleUnavailable as error:
        # The shared block lists need no member role: the addresses are still blocked.
        target = request.incident.function_name or "unknown"
        failed = _action(target, Outcome.FAILED, f"not contained: {error}")
        # The finding's role: revoke-credentials acts through a member role of its own, which may still be there.
        role = (request.incident.function_role_arn or "").rpartition("/")[2] or None
        return FunctionContainment(ContainmentStatus.FAILED, (failed,), role, request.incident.remote_ips)
    return contain_function(client, request, stack_name, approved)


_action = partial(action_of, ActionType.CONTAIN_FUNCTION)
