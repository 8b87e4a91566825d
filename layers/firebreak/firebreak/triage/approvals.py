"""Approval: when a playbook waits for a person, what it will do, and the signed single-use token that answers it.

The Step Functions task token is a bearer credential, so it never leaves the stack: responders get an opaque approval
id with an expiry and an HMAC-SHA256 over both (the key is in Secrets Manager), and the approval table maps the id to
the task token until one answer deletes the entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from firebreak.core.aws import conditional
from firebreak.core.errors import ApprovalAnswerInvalid, ApprovalTokenExpired, ApprovalTokenInvalid
from firebreak.core.models import (
    APPROVAL_TAG,
    MAX_BUCKETS_PER_INCIDENT,
    Action,
    ActionType,
    Approval,
    Decision,
    Incident,
    Mode,
    Outcome,
    Playbook,
    Source,
    asks_approval,
)
from firebreak.core.settings import Settings

TOKEN_VERSION = "fb1"
# What the entry machine writes as decided_by when nobody answered; keep in step with "Wait For Approval".
TIMEOUT_POLICY = "timeout policy"
DIRECT_CALLER = "a direct lambda:InvokeFunction caller (CloudTrail names it)"
_MAX_TOKEN_LENGTH = 256
_WILL = {
    ActionType.BLOCK_IP: "add to the WAF block list (enrichment and the address guards may still skip it)",
    ActionType.ISOLATE_INSTANCE: "isolate behind the quarantine security group and snapshot its volumes",
    ActionType.REVOKE_CREDENTIALS: "revoke: deactivate the key or the sessions, and attach a deny-all policy",
    ActionType.PROTECT_BUCKET: (
        "protect: Block Public Access on, server access logging back on if it was turned off, and a Firebreak "
        "bucket-policy statement denying the caller (and reads of a malicious object); its credentials revoked"
    ),
    ActionType.CONTAIN_FUNCTION: "stop it (reserved concurrency 0), keep a version, revoke its role's sessions",
    ActionType.CONTAIN_DATABASE: (
        "keep a snapshot tagged with the incident as evidence, then move it into its VPC's quarantine security "
        "group: its application loses the database"
    ),
    ActionType.CONTAIN_TASK: "record the task, and isolate its network interface behind the quarantine security group",
}


class AnswerStatus(StrEnum):
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    BAD_REQUEST = "BAD_REQUEST"
    REFUSED = "REFUSED"
    EXPIRED = "EXPIRED"
    ALREADY_ANSWERED = "ALREADY_ANSWERED"
    NOT_WAITING = "NOT_WAITING"

    @property
    def http_status(self) -> int:
        return {"BAD_REQUEST": 400, "REFUSED": 403, "ALREADY_ANSWERED": 409, "EXPIRED": 410, "NOT_WAITING": 410}.get(
            self.value, 200
        )


def product_company(incident: Incident) -> str | None:
    """The <company> of a Security Hub product ARN (arn:aws:securityhub:region:account:product/<company>/<name>)."""
    _, _, product = (incident.product_arn or "").partition(":product/")
    return product.split("/", 1)[0] or None


def approval_reasons(incident: Incident, settings: Settings) -> list[str]:
    """Why a person must approve before Firebreak acts on this incident, whatever the configured mode."""
    reasons = []
    if asks_approval(incident.tag(APPROVAL_TAG)):
        reasons.append(f"resource tagged {APPROVAL_TAG}=required")
    if incident.source is Source.SECURITYHUB and product_company(incident) not in settings.trusted_product_companies:
        # Anyone with securityhub:BatchImportFindings can write a finding: untrusted products never act alone.
        reasons.append(f"finding from untrusted product {incident.product_arn or 'unknown'}: review it before acting")
    return reasons


def decide_mode(incident: Incident, playbook: Playbook, settings: Settings) -> tuple[Mode, Approval | None]:
    """Samples only plan; notify-only changes nothing, so it never waits; the rest wait whenever a reason says so."""
    configured = settings.mode_for(playbook)
    if incident.sample:
        return Mode.DRY_RUN, None
    if playbook is Playbook.NOTIFY_ONLY:
        return (Mode.ENFORCE if configured is Mode.APPROVAL else configured), None
    if configured is Mode.DRY_RUN:
        return Mode.DRY_RUN, None
    reasons = approval_reasons(incident, settings)
    if configured is Mode.APPROVAL:
        reasons.insert(0, f"{playbook.value} runs in approval mode")
    if not reasons:
        return Mode.ENFORCE, None
    return Mode.APPROVAL, Approval("; ".join(reasons), settings.approval_window_seconds, settings.approval_on_timeout)


def planned_actions(playbook: Playbook, incident: Incident, outcome: Outcome, why: str = "") -> tuple[Action, ...]:
    """What the playbook will do once approved, one action per target; why replaces the description when given."""
    targets: list[tuple[ActionType, str]] = []
    if playbook is Playbook.CONTAIN_INSTANCE:
        targets.append((ActionType.ISOLATE_INSTANCE, incident.instance_id or "the finding's instance"))
    elif playbook is Playbook.CONTAIN_TASK:
        targets.append((ActionType.CONTAIN_TASK, incident.task_arn or "the finding's task"))
    elif playbook is Playbook.REVOKE_CREDENTIALS:
        principal = incident.access_key_id or incident.principal_name or "the finding's principal"
        targets.append((ActionType.REVOKE_CREDENTIALS, principal))
    elif playbook is Playbook.PROTECT_BUCKET:
        buckets = incident.bucket_names or ("the finding's bucket",)
        targets += [(ActionType.PROTECT_BUCKET, bucket) for bucket in buckets[:MAX_BUCKETS_PER_INCIDENT]]
        if incident.principal_type in ("IAMUser", "AssumedRole"):
            principal = incident.access_key_id or incident.principal_name or "the finding's principal"
            targets.append((ActionType.REVOKE_CREDENTIALS, principal))
    elif playbook is Playbook.CONTAIN_FUNCTION:
        targets.append((ActionType.CONTAIN_FUNCTION, incident.function_name or "the finding's function"))
    elif playbook is Playbook.CONTAIN_DATABASE:
        database = incident.db_cluster_id or incident.db_instance_id or "the finding's database"
        targets.append((ActionType.CONTAIN_DATABASE, database))
    if playbook is not Playbook.NOTIFY_ONLY:
        targets += [(ActionType.BLOCK_IP, address) for address in incident.remote_ips]
    planned = [Action(kind, target, outcome, why or f"will {_WILL[kind]}") for kind, target in targets]
    if playbook is Playbook.PROTECT_BUCKET:
        # An approver must know which buckets stay as they are, whatever the answer.
        over = f"will not protect: one incident protects the first {MAX_BUCKETS_PER_INCIDENT} buckets the finding names"
        planned += [
            Action(ActionType.PROTECT_BUCKET, bucket, Outcome.SKIPPED, over)
            for bucket in incident.bucket_names[MAX_BUCKETS_PER_INCIDENT:]
        ]
    return tuple(planned)


def denial_reason(approval: Approval) -> str:
    if approval.decided_by == TIMEOUT_POLICY:
        return f"not done: no answer within {approval.window_seconds} s, and the timeout policy denies"
    return f"not done: approval denied by {approval.decided_by or 'a responder'}"


@dataclass(frozen=True)
class ApprovalRequest:
    """One request as responders see it: the opaque id, the signed token and when it expires (epoch seconds)."""

    approval_id: str
    token: str
    expires_at: int

    @property
    def expires(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        return {"approval_id": self.approval_id, "token": self.token, "expires_at": self.expires}


def new_request(key: bytes, task_token: str, window_seconds: int, now: float) -> ApprovalRequest:
    """The id is derived from the task token, so a retried Request Approval reuses its one pending entry."""
    approval_id = _b64(hmac.new(key, b"approval-id:" + task_token.encode(), hashlib.sha256).digest()[:18])
    expires_at = int(now) + window_seconds
    return ApprovalRequest(approval_id, sign(key, approval_id, expires_at), expires_at)


def sign(key: bytes, approval_id: str, expires_at: int) -> str:
    payload = f"{TOKEN_VERSION}.{approval_id}.{expires_at}"
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, now: float) -> str:
    """The approval id of a genuine, unexpired token; ApprovalTokenInvalid (or Expired) otherwise."""
    parts = token.split(".") if len(token) <= _MAX_TOKEN_LENGTH else []
    if len(parts) != 4 or parts[0] != TOKEN_VERSION or not parts[2].isdigit():
        raise ApprovalTokenInvalid("not a Firebreak approval token")
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(key, payload).encode(), parts[3].encode()):
        raise ApprovalTokenInvalid("the approval token's signature is not valid")
    if now >= int(parts[2]):
        raise ApprovalTokenExpired("the approval token has expired; the timeout policy decides")
    return parts[1]


def signing_key(secretsmanager: Any, secret_arn: str) -> bytes:
    return str(secretsmanager.get_secret_value(SecretId=secret_arn)["SecretString"]).encode()


def store_pending(dynamodb: Any, table: str, request: ApprovalRequest, pending: Mapping[str, str]) -> None:
    """The one entry an answer may consume: the task token and where it belongs; expires_at is the table's TTL."""
    item = {key: {"S": value} for key, value in pending.items()}
    item |= {"approval_id": {"S": request.approval_id}, "expires_at": {"N": str(request.expires_at)}}
    dynamodb.put_item(TableName=table, Item=item)


def take_pending(dynamodb: Any, table: str, approval_id: str) -> dict[str, str] | None:
    """Delete-and-return in one conditional call: of two answers with one token, exactly one gets the entry."""
    taken = conditional(
        dynamodb.delete_item,
        TableName=table,
        Key={"approval_id": {"S": approval_id}},
        ConditionExpression="attribute_exists(approval_id)",
        ReturnValues="ALL_OLD",
    )
    if taken is None:
        return None
    return {key: str(next(iter(value.values()))) for key, value in taken["Attributes"].items()}


@dataclass(frozen=True)
class Answer:
    """A responder's answer: the token from the notification, approve or deny, and who answered."""

    token: str
    decision: Decision
    answered_by: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Answer:
        """A Function URL request (the caller's SigV4 identity is AWS's to verify) or a direct invocation payload."""
        context = event.get("requestContext")
        if not isinstance(context, Mapping):
            return cls._from_body(event, DIRECT_CALLER)
        caller = ((context.get("authorizer") or {}).get("iam") or {}).get("userArn")
        body = event.get("body") or ""
        try:
            text = base64.b64decode(body).decode() if event.get("isBase64Encoded") else str(body)
            data = json.loads(text)
        except (ValueError, binascii.Error) as error:
            raise ApprovalAnswerInvalid("the body is not a JSON object") from error
        return cls._from_body(data, str(caller or "an unidentified Function URL caller"))

    @classmethod
    def _from_body(cls, data: Any, answered_by: str) -> Answer:
        if not isinstance(data, Mapping) or not isinstance(data.get("token"), str):
            raise ApprovalAnswerInvalid('expected {"token": "<from the notification>", "decision": "approve|deny"}')
        decision = {"approve": Decision.APPROVED, "deny": Decision.DENIED}.get(str(data.get("decision")).lower())
        if decision is None:
            raise ApprovalAnswerInvalid('decision must be "approve" or "deny"')
        return cls(data["token"], decision, answered_by)


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, b"token:" + payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
