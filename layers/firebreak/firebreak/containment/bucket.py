"""protect-bucket: Block Public Access back on, server access logging back on, and Firebreak's own bucket-policy
statements that deny the finding's principal and reads of a malicious object; never deletes, never locks admins out.

The bucket policy is shared with its owners: Firebreak reads it, changes only the statements whose Sid it owns, and
writes it back with every other statement as it was. A Deny names principals by ARN (an IAM user, or one role
session), never the account root, Firebreak's own roles or ProtectedPrincipals; the object-read Deny names everyone
but keeps the root user and the break-glass principals in, so the evidence can still be read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, partial
from typing import TYPE_CHECKING, Any, ParamSpec

from botocore.exceptions import ClientError

from firebreak.containment.credentials import RevocationSettings, protection_reason
from firebreak.core.aws import describe_error, error_code, is_transient
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.members import MEMBER_ROLES, partition_of, playbook_client
from firebreak.core.models import (
    APPROVAL_TAG,
    EXEMPT_TAG,
    MAX_BUCKETS_PER_INCIDENT,
    Action,
    ActionType,
    Bucket,
    Incident,
    Outcome,
    PlaybookRequest,
    action_of,
    asks_approval,
    says_exempt,
    step_output,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import PublicAccessBlockConfigurationTypeDef

P = ParamSpec("P")
# Firebreak's statement for some values (principal or object ARNs), and the values a policy's statement names.
Build = Callable[[Sequence[str]], dict[str, Any]]
Listed = Callable[[Mapping[str, Any] | None], list[str]]

# The Sids Firebreak owns in a bucket policy; release and every later run find its statements by them.
DENY_PRINCIPALS_SID = "FirebreakDenyIncidentPrincipals"
DENY_OBJECT_READS_SID = "FirebreakDenyMaliciousObjectReads"
FIREBREAK_SIDS = frozenset({DENY_PRINCIPALS_SID, DENY_OBJECT_READS_SID})
ALL_BLOCKED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
STACK_TAG = "aws:cloudformation:stack-name"
# S3 delivers access logs only to a bucket in the same account and Region; one per account and Region, which the
# deployer creates with the logging service's grant (docs/response.md), keeps every bucket's logs apart by prefix.
ACCESS_LOG_BUCKET = "firebreak-access-logs-{account}-{region}"
_LOGGING_DISABLED = ("Stealth:S3/ServerAccessLoggingDisabled", "Stealth:S3-ServerAccessLoggingDisabled")
_NO_BUCKET = frozenset({"NoSuchBucket"})
_NO_TAGS = frozenset({"NoSuchTagSet", "NoSuchTagSetError"})
_NO_BLOCK = frozenset({"NoSuchPublicAccessBlockConfiguration"})
_NO_POLICY = frozenset({"NoSuchBucketPolicy"})
_WRITE_ATTEMPTS = 3
# IAM policy variables for the characters a key may hold that a Resource would otherwise read as wildcards.
_LITERAL = {"$": "${$}", "*": "${*}", "?": "${?}"}


class ProtectionStatus(StrEnum):
    PROTECTED = "PROTECTED"
    ALREADY_PROTECTED = "ALREADY_PROTECTED"
    PLANNED = "PLANNED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"
    EXEMPT = "EXEMPT"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"


# Outcomes after which nothing of the incident may be touched: not the bucket, the credentials or the addresses.
STOPPED = frozenset({ProtectionStatus.EXEMPT, ProtectionStatus.APPROVAL_REQUIRED})
_REVOCABLE = frozenset({"IAMUser", "AssumedRole"})


@dataclass(frozen=True)
class Protection:
    """What Protect Bucket did, and what the playbook does next: revoke the principal, block the addresses."""

    status: ProtectionStatus
    actions: tuple[Action, ...]
    suppressed_reason: str | None = None
    revoke: bool = False
    block_addresses: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return step_output(self)


@dataclass(frozen=True)
class Denial:
    """The principal the Firebreak statement denies, or why none: by ARN, with what the finding called it."""

    arn: str | None
    reason: str = ""


# --- policy documents ----------------------------------------------------------------------------------------------


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def object_arn(partition: str, bucket: str, key: str) -> str:
    """The object's ARN as a policy Resource: *, ? and $ in the key stay literal, never wildcards."""
    return f"arn:{partition}:s3:::{bucket}/" + "".join(_LITERAL.get(ch, ch) for ch in key)


def principals_statement(partition: str, bucket: str, principals: Sequence[str]) -> dict[str, Any]:
    """Deny the named principals everything on the bucket and its objects, including changing its policy."""
    return {
        "Sid": DENY_PRINCIPALS_SID,
        "Effect": "Deny",
        "Principal": {"AWS": sorted(principals)},
        "Action": "s3:*",
        "Resource": [bucket_arn(partition, bucket), f"{bucket_arn(partition, bucket)}/*"],
    }


def break_glass_names() -> tuple[str, ...]:
    """ProtectedPrincipals as the deployer wrote them: RevocationSettings holds them casefolded, as IAM compares names,
    but an ARN pattern in a policy condition is matched case-sensitively."""
    return tuple(name.strip() for name in os.environ.get("PROTECTED_PRINCIPALS", "").split(",") if name.strip())


def admins(
    partition: str, account: str, settings: RevocationSettings, break_glass: Sequence[str] | None = None
) -> list[str]:
    """The principals the object-read Deny keeps in: the root user, the break-glass list, Firebreak's own roles."""
    iam = f"arn:{partition}:iam::{account}"
    arns = [f"{iam}:root", f"{iam}:role/firebreak-member-*"]
    if settings.stack_name:
        arns.append(f"{iam}:role/{settings.stack_name}-*")
    for name in sorted(break_glass_names() if break_glass is None else break_glass):
        arns += [f"{iam}:{kind}/{name}" for kind in ("user", "role")]
        arns += [f"{iam}:{kind}/*/{name}" for kind in ("user", "role")]
    return arns


def object_reads_statement(objects: Sequence[str], keep_in: Sequence[str]) -> dict[str, Any]:
    """Deny everyone but keep_in reads of the objects; an anonymous caller has no PrincipalArn, so it is denied."""
    return {
        "Sid": DENY_OBJECT_READS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject*",
        "Resource": sorted(objects),
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": list(keep_in)}},
    }


def statements(policy: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The policy's statements as a list (a policy may hold a single statement object)."""
    if not policy:
        return []
    found = policy.get("Statement") or []
    return [dict(found)] if isinstance(found, Mapping) else [dict(item) for item in found]


def firebreak_statement(policy: Mapping[str, Any] | None, sid: str) -> dict[str, Any] | None:
    return next((s for s in statements(policy) if s.get("Sid") == sid), None)


def denied_principals(policy: Mapping[str, Any] | None) -> list[str]:
    """The principal ARNs Firebreak's principal statement denies."""
    statement = firebreak_statement(policy, DENY_PRINCIPALS_SID)
    principal = (statement or {}).get("Principal") or {}
    listed = principal.get("AWS", []) if isinstance(principal, Mapping) else []
    return sorted([listed] if isinstance(listed, str) else listed)


def denied_objects(policy: Mapping[str, Any] | None) -> list[str]:
    """The object ARNs Firebreak's object-read statement denies."""
    listed = (firebreak_statement(policy, DENY_OBJECT_READS_SID) or {}).get("Resource", [])
    return sorted([listed] if isinstance(listed, str) else listed)


def with_statement(policy: Mapping[str, Any] | None, sid: str, statement: dict[str, Any] | None) -> dict[str, Any]:
    """The policy with Firebreak's statement `sid` replaced (or added, or removed when None); the rest untouched."""
    kept = [s for s in statements(policy) if s.get("Sid") != sid]
    current = firebreak_statement(policy, sid)
    merged = list(kept)
    if statement is not None:
        # In place when it was there, so a person diffing the policy sees only Firebreak's statement change.
        position = statements(policy).index(current) if current is not None else len(kept)
        merged.insert(min(position, len(merged)), statement)
    return {"Version": (policy or {}).get("Version", "2012-10-17"), **dict(policy or {}), "Statement": merged}


def without(policy: Mapping[str, Any] | None, sid: str, values: Sequence[str]) -> dict[str, Any]:
    """The policy with `values` taken out of Firebreak's statement `sid`, and the statement gone once it names none."""
    current = firebreak_statement(policy, sid)
    if current is None:
        return with_statement(policy, sid, None)
    if sid == DENY_PRINCIPALS_SID:
        left = [arn for arn in denied_principals(policy) if arn not in values]
        return with_statement(policy, sid, {**current, "Principal": {"AWS": left}} if left else None)
    left = [arn for arn in denied_objects(policy) if arn not in values]
    return with_statement(policy, sid, {**current, "Resource": left} if left else None)


def read_policy(s3: S3Client, bucket: str) -> dict[str, Any] | None:
    """The bucket's policy document, or None when it has none."""
    try:
        text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as error:
        if error_code(error) in _NO_POLICY:
            return None
        raise
    document: dict[str, Any] = json.loads(text)
    return document


def write_policy(s3: S3Client, bucket: str, policy: Mapping[str, Any]) -> None:
    """Put the policy, or delete it when Firebreak's statements were all it held."""
    if statements(policy):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy, separators=(",", ":")))
    else:
        s3.delete_bucket_policy(Bucket=bucket)


def read_public_access_block(s3: S3Client, bucket: str) -> dict[str, bool] | None:
    """The bucket's four Block Public Access settings, or None when it has no configuration of its own."""
    try:
        config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        if error_code(error) in _NO_BLOCK:
            return None
        raise
    return {key: bool(config.get(key, False)) for key in ALL_BLOCKED}


def read_logging(s3: S3Client, bucket: str) -> dict[str, str] | None:
    """Where the bucket's server access logs go ({TargetBucket, TargetPrefix}), or None when logging is off."""
    enabled = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
    if not enabled:
        return None
    return {"TargetBucket": enabled["TargetBucket"], "TargetPrefix": enabled.get("TargetPrefix", "")}


def put_logging(s3: S3Client, bucket: str, logging: Mapping[str, str] | None) -> None:
    status: Any = {} if logging is None else {"LoggingEnabled": dict(logging)}
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)


# --- who is denied -------------------------------------------------------------------------------------------------


def principal_denial(iam: IAMClient | None, incident: Incident, settings: RevocationSettings) -> Denial:
    """The finding's principal as an ARN a bucket policy may deny, or why Firebreak denies nobody."""
    kind, name = incident.principal_type, incident.principal_name or ""
    partition = partition_of(incident.region)
    if kind not in _REVOCABLE or not name:
        return Denial(None, f"the finding names no IAM user or role session to deny (principal type {kind})")
    refusal = protection_reason("user" if kind == "IAMUser" else "role", name, settings)
    if refusal:
        return Denial(None, refusal)
    if kind == "AssumedRole":
        _, _, session = (incident.principal_id or "").partition(":")
        if not session:
            reason = (
                f"the finding names role {name} but not its session: denying the whole role would lock every user of"
                " it out of the bucket; its older sessions are revoked instead"
            )
            return Denial(None, reason)
        return Denial(f"arn:{partition}:sts::{incident.account_id}:assumed-role/{name}/{session}")
    if iam is None:
        return Denial(None, "no IAM client to look the user's ARN up with")
    try:
        # The ARN holds the user's path, which the finding does not: S3 refuses a principal that does not exist.
        return Denial(iam.get_user(UserName=name)["User"]["Arn"])
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return Denial(None, f"user {name} no longer exists: nobody left to deny")
        raise


# --- the steps -----------------------------------------------------------------------------------------------------


def block_public_access(s3: S3Client, bucket: str, dry_run: bool) -> Action:
    """All four Block Public Access settings on, the earlier ones on the record."""
    current = read_public_access_block(s3, bucket)
    before = {"bucket": bucket, "public_access_block": current}
    after = {"bucket": bucket, "public_access_block": dict(ALL_BLOCKED)}
    if current == ALL_BLOCKED:
        return _action(bucket, Outcome.ALREADY_APPLIED, "Block Public Access is already on", before, after)
    if dry_run:
        call = f"would call s3:PutPublicAccessBlock(Bucket={bucket}, PublicAccessBlockConfiguration=<all four true>)"
        return _action(bucket, Outcome.PLANNED, call, before, after)
    settings: PublicAccessBlockConfigurationTypeDef = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings)
    was = "none of its own" if current is None else ", ".join(k for k, v in current.items() if not v) + " off"
    return _action(bucket, Outcome.APPLIED, f"Block Public Access turned on (it had {was})", before, after)


def restore_logging(s3: S3Client, incident: Incident, bucket: str, dry_run: bool) -> Action:
    """Server access logging back on, into the account and Region's Firebreak log bucket under the bucket's name."""
    current = read_logging(s3, bucket)
    target = ACCESS_LOG_BUCKET.format(account=incident.account_id, region=incident.region)
    wanted = {"TargetBucket": target, "TargetPrefix": f"{bucket}/"}
    before = {"bucket": bucket, "logging": current}
    after = {"bucket": bucket, "logging": wanted}
    if current is not None:
        reason = f"server access logging is on again already (into {current['TargetBucket']})"
        return _action(bucket, Outcome.ALREADY_APPLIED, reason, before, {"bucket": bucket, "logging": current})
    if bucket == target:
        return _action(bucket, Outcome.SKIPPED, "a log bucket does not log into itself")
    try:
        s3.head_bucket(Bucket=target)
    except ClientError as error:
        if is_transient(error):
            raise
        reason = (
            f"server access logging left off: log bucket {target} is not there ({error_code(error)}); create it in "
            "this account and Region with the S3 logging service's write grant, then run again or turn logging on"
        )
        return _action(bucket, Outcome.SKIPPED, reason, before)
    if dry_run:
        call = f"would call s3:PutBucketLogging(Bucket={bucket}, TargetBucket={target}, TargetPrefix={bucket}/)"
        return _action(bucket, Outcome.PLANNED, call, before, after)
    put_logging(s3, bucket, wanted)
    return _action(bucket, Outcome.APPLIED, f"server access logging on again, into {target}/{bucket}/", before, after)


def deny_in_policy(
    s3: S3Client, bucket: str, sid: str, adding: Sequence[str], build: Build, listed: Listed, dry_run: bool
) -> Action:
    """Add `adding` to Firebreak's statement `sid` (built by build(values), read by listed(policy)), merging into
    the bucket's policy; a concurrent writer's change is re-read and merged again rather than overwritten."""
    kind = "principals" if sid == DENY_PRINCIPALS_SID else "objects"
    for _ in range(_WRITE_ATTEMPTS):
        policy = read_policy(s3, bucket)
        present = listed(policy)
        merged = sorted({*present, *adding})
        before = {"bucket": bucket, "policy_statement": sid, kind: present}
        # `denies`: what this incident asked for, which a release of another incident denying the same leaves.
        after = {"bucket": bucket, "policy_statement": sid, kind: merged, "denies": sorted(adding)}
        if merged == present:
            return _action(bucket, Outcome.ALREADY_APPLIED, f"statement {sid} already denies them", before, after)
        document = with_statement(policy, sid, build(merged))
        if dry_run:
            call = f"would call s3:PutBucketPolicy(Bucket={bucket}, Policy=<its policy with statement {sid}>)"
            return _action(bucket, Outcome.PLANNED, f"{call} denying {', '.join(adding)}", before, after)
        write_policy(s3, bucket, document)
        if set(adding) <= set(listed(read_policy(s3, bucket))):
            what = "reads of " if kind == "objects" else ""
            reason = f"statement {sid} in the bucket policy denies {what}{', '.join(adding)}; its other statements kept"
            return _action(bucket, Outcome.APPLIED, reason, before, after)
    return _action(bucket, Outcome.FAILED, f"the bucket policy kept changing while Firebreak wrote {sid}")


# --- the playbook step ---------------------------------------------------------------------------------------------


def protect(request: PlaybookRequest, settings: RevocationSettings, approved: bool = False) -> Protection:
    """Protect Bucket for every bucket the finding names, up to MAX_BUCKETS_PER_INCIDENT, in the incident's account
    and Region: per bucket the guards, then each step; a refused step fails alone, a guarded bucket is skipped alone.
    `approved`: a person approved this run, which a bucket tagged firebreak:approval=required needs."""
    incident = request.incident
    revoke = incident.principal_type in _REVOCABLE
    addresses = incident.remote_ips
    buckets = incident.buckets or tuple(Bucket(name, (), incident.object_key) for name in incident.bucket_names)
    if not buckets:
        skipped = _action("unknown", Outcome.SKIPPED, "the finding names no bucket")
        return Protection(ProtectionStatus.NOT_FOUND, (skipped,), revoke=revoke, block_addresses=addresses)
    acting = buckets[:MAX_BUCKETS_PER_INCIDENT]
    over = (
        f"not protected: the finding names more than {MAX_BUCKETS_PER_INCIDENT} buckets and one incident protects "
        f"the first {MAX_BUCKETS_PER_INCIDENT}; a person must protect this one"
    )
    capped = tuple(_action(b.name, Outcome.SKIPPED, over, left_open=True) for b in buckets[MAX_BUCKETS_PER_INCIDENT:])
    try:
        s3 = playbook_client("s3", request, "protect_bucket")
        iam = playbook_client("iam", request, "protect_bucket") if incident.principal_type == "IAMUser" else None
    except MemberRoleUnavailable as error:
        failed = tuple(_action(b.name, Outcome.FAILED, f"bucket not protected: {error}") for b in acting)
        return Protection(ProtectionStatus.FAILED, failed + capped, revoke=revoke, block_addresses=addresses)
    # One look-up of the caller's ARN for every bucket; a failed one is not kept, so the next bucket tries again.
    denial = cache(partial(principal_denial, iam, incident, settings))
    results: list[Protection] = []
    for bucket in acting:
        changed = any(a.outcome is Outcome.APPLIED for result in results for a in result.actions)
        results.append(_protect_one(s3, request, bucket, settings, approved, denial, changed))
    return _combined(results, capped, revoke, addresses, request.dry_run)


def _protect_one(
    s3: S3Client,
    request: PlaybookRequest,
    bucket: Bucket,
    settings: RevocationSettings,
    approved: bool,
    denial: Callable[[], Denial],
    changed: bool,
) -> Protection:
    """One bucket: its guards by its tags now, then its steps. `changed`: an earlier bucket of this run was changed,
    after which S3 still throttling is a failed action rather than a retry of the whole run."""
    incident, name, dry_run = request.incident, bucket.name, request.dry_run
    try:
        gate = _gate(s3, incident, name, settings, approved)
    except ClientError as error:
        if is_transient(error) and not changed:
            raise
        reason = f"bucket not protected: reading its tags failed: {describe_error(error)}"[:500]
        return Protection(ProtectionStatus.FAILED, (_action(name, Outcome.FAILED, reason),))
    if gate is not None:
        return gate
    steps: list[Callable[[], Action]] = [
        partial(_step, name, "turning Block Public Access on", block_public_access, s3, name, dry_run)
    ]
    if any(kind in incident.finding_type for kind in _LOGGING_DISABLED):
        steps.append(partial(_step, name, "turning logging on", restore_logging, s3, incident, name, dry_run))
    steps += _policy_steps(s3, incident, bucket, settings, denial, dry_run)
    actions = _in_order(name, steps, changed)
    return Protection(_status(actions, dry_run), tuple(actions))


def _combined(
    results: Sequence[Protection],
    capped: tuple[Action, ...],
    revoke: bool,
    addresses: tuple[str, ...],
    dry_run: bool,
) -> Protection:
    """The buckets' results as one step's answer. Only when no bucket may be changed (each exempt, waiting for a
    person or gone, none left over the cap) is nothing of the incident touched, its credentials and addresses too."""
    statuses = {result.status for result in results}
    actions = tuple(a for result in results for a in result.actions) + capped
    if not capped and statuses & STOPPED and statuses <= STOPPED | {ProtectionStatus.NOT_FOUND}:
        waiting = ProtectionStatus.APPROVAL_REQUIRED in statuses
        reasons = [result.suppressed_reason for result in results]
        suppressed = None if waiting or None in reasons else "; ".join(dict.fromkeys(r for r in reasons if r))
        status = ProtectionStatus.APPROVAL_REQUIRED if waiting else ProtectionStatus.EXEMPT
        return Protection(status, actions, suppressed)
    if ProtectionStatus.FAILED in statuses:
        status = ProtectionStatus.FAILED
    elif statuses == {ProtectionStatus.NOT_FOUND} and not capped:
        status = ProtectionStatus.NOT_FOUND
    else:
        status = _status(actions, dry_run)
    return Protection(status, actions, None, revoke, addresses)


def _in_order(bucket: str, steps: Sequence[Callable[[], Action]], changed: bool = False) -> list[Action]:
    """Each step's action. S3 still throttling propagates for the ASL Retry only while this run has changed nothing:
    a retry after a change finds it done and records the changed state as its before-state, so the release could not
    put the bucket back. After a change it is a failed action, and the incident is truthfully partially contained."""
    actions: list[Action] = []
    for step in steps:
        try:
            actions.append(step())
        except ClientError as error:
            if not changed and all(action.outcome is not Outcome.APPLIED for action in actions):
                raise
            reason = f"{describe_error(error)}: still failing after retries; not retried, so the change before it stays"
            actions.append(_action(bucket, Outcome.FAILED, reason))
    return actions


def _gate(
    s3: S3Client, incident: Incident, bucket: str, settings: RevocationSettings, approved: bool
) -> Protection | None:
    """Gone, exempt, waiting for approval or Firebreak's own, by the bucket's tags now; None when it may be changed."""
    try:
        tags = {tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except ClientError as error:
        if error_code(error) in _NO_BUCKET:
            skipped = _action(bucket, Outcome.SKIPPED, f"bucket {bucket} does not exist: nothing to protect")
            return Protection(ProtectionStatus.NOT_FOUND, (skipped,))
        if error_code(error) not in _NO_TAGS:
            raise
        tags = {}
    if says_exempt(tags.get(EXEMPT_TAG)):
        reason = f"bucket {bucket} is tagged {EXEMPT_TAG}=true: Firebreak never touches it"
        suppressed = f"bucket tagged {EXEMPT_TAG}=true"
        return Protection(ProtectionStatus.EXEMPT, (_action(bucket, Outcome.SKIPPED, reason),), suppressed)
    # Triage waited for a person when the finding carried the tag; one added since has had no answer yet.
    if asks_approval(tags.get(APPROVAL_TAG)) and not approved:
        reason = (
            f"bucket {bucket} is tagged {APPROVAL_TAG}=required since GuardDuty described it: nothing changed without "
            "a person's approval; run the finding again with ProtectBucketMode approval"
        )
        waiting = _action(bucket, Outcome.SKIPPED, reason, left_open=True)
        return Protection(ProtectionStatus.APPROVAL_REQUIRED, (waiting,))
    if settings.stack_name and tags.get(STACK_TAG) == settings.stack_name:
        reason = f"bucket {bucket} belongs to the Firebreak stack {settings.stack_name}: never touched"
        return Protection(ProtectionStatus.EXEMPT, (_action(bucket, Outcome.SKIPPED, reason),))
    # A release putting Block Public Access or logging back as they were raises the same finding, by Firebreak's
    # own role: protecting the bucket again would undo the release a person asked for.
    if incident.principal_type == "AssumedRole" and _firebreaks_role(incident.principal_name or "", settings):
        reason = (
            f"the finding reports a change by Firebreak's own role {incident.principal_name} (a release puts the "
            "bucket back as it was): not protected again"
        )
        suppressed = "change made by Firebreak's own role"
        return Protection(ProtectionStatus.EXEMPT, (_action(bucket, Outcome.SKIPPED, reason),), suppressed)
    return None


def _firebreaks_role(role: str, settings: RevocationSettings) -> bool:
    """A member role or a role of the stack (CloudFormation names them <stack>-<LogicalId>-<suffix>)."""
    name = role.casefold()
    stack = settings.stack_name.casefold()
    return name in {member.casefold() for member in MEMBER_ROLES.values()} or bool(
        stack and name.startswith(f"{stack}-")
    )


def _policy_steps(
    s3: S3Client,
    incident: Incident,
    bucket: Bucket,
    settings: RevocationSettings,
    denial: Callable[[], Denial],
    dry_run: bool,
) -> list[Callable[[], Action]]:
    """The bucket-policy steps: deny the caller when the finding names one, deny reads of the bucket's malicious
    object."""
    partition = partition_of(incident.region)
    steps: list[Callable[[], Action]] = []
    if incident.principal_type is not None:
        steps.append(partial(_deny_caller, s3, partition, bucket.name, denial, dry_run))
    if bucket.object_key:
        keep_in = admins(partition, incident.account_id, settings)
        steps.append(
            partial(
                _step,
                bucket.name,
                f"writing statement {DENY_OBJECT_READS_SID}",
                deny_in_policy,
                s3,
                bucket.name,
                DENY_OBJECT_READS_SID,
                [object_arn(partition, bucket.name, bucket.object_key)],
                lambda values: object_reads_statement(values, keep_in),
                denied_objects,
                dry_run,
            )
        )
    return steps


def _deny_caller(s3: S3Client, partition: str, bucket: str, denial: Callable[[], Denial], dry_run: bool) -> Action:
    try:
        caller = denial()
    except ClientError as error:
        if is_transient(error):
            raise
        return _action(bucket, Outcome.FAILED, f"caller not denied: looking its ARN up failed: {describe_error(error)}")
    if caller.arn is None:
        return _action(bucket, Outcome.SKIPPED, f"caller not denied on the bucket: {caller.reason}")
    return _step(
        bucket,
        f"writing statement {DENY_PRINCIPALS_SID}",
        deny_in_policy,
        s3,
        bucket,
        DENY_PRINCIPALS_SID,
        [caller.arn],
        lambda values: principals_statement(partition, bucket, values),
        denied_principals,
        dry_run,
    )


def _step(bucket: str, doing: str, run: Callable[P, Action], *args: P.args, **kwargs: P.kwargs) -> Action:
    """run's action, or a failed one naming S3's refusal; throttling and 5xx propagate for the ASL Retry."""
    try:
        return run(*args, **kwargs)
    except ClientError as error:
        if is_transient(error):
            raise
        return _action(bucket, Outcome.FAILED, f"{doing} failed: {describe_error(error)}"[:500])


def _status(actions: Sequence[Action], dry_run: bool) -> ProtectionStatus:
    outcomes = {action.outcome for action in actions}
    if Outcome.FAILED in outcomes:
        return ProtectionStatus.FAILED
    if outcomes <= {Outcome.ALREADY_APPLIED, Outcome.SKIPPED}:
        return ProtectionStatus.ALREADY_PROTECTED
    return ProtectionStatus.PLANNED if dry_run else ProtectionStatus.PROTECTED


_action = partial(action_of, ActionType.PROTECT_BUCKET)
