"""Payloads passed between states: frozen dataclasses with explicit from_dict/to_dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    GUARDDUTY = "guardduty"
    SECURITYHUB = "securityhub"


class Playbook(StrEnum):
    CONTAIN_INSTANCE = "contain-instance"
    REVOKE_CREDENTIALS = "revoke-credentials"
    BLOCK_IP = "block-ip"
    NOTIFY_ONLY = "notify-only"
    PROTECT_BUCKET = "protect-bucket"
    CONTAIN_FUNCTION = "contain-function"
    CONTAIN_DATABASE = "contain-database"
    CONTAIN_TASK = "contain-task"


class Mode(StrEnum):
    ENFORCE = "enforce"
    APPROVAL = "approval"
    DRY_RUN = "dry-run"


class TimeoutAction(StrEnum):
    """What an unanswered approval request becomes when its window closes."""

    APPROVE = "approve"
    DENY = "deny"


class Decision(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"


class IncidentStatus(StrEnum):
    OPEN = "OPEN"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"
    SUPPRESSED = "SUPPRESSED"
    DRY_RUN = "DRY_RUN"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    CONTAINED = "CONTAINED"
    PARTIALLY_CONTAINED = "PARTIALLY_CONTAINED"
    NOTIFIED = "NOTIFIED"
    FAILED = "FAILED"
    RELEASED = "RELEASED"


class ActionType(StrEnum):
    ENRICH_IP = "enrich_ip"
    ISOLATE_INSTANCE = "isolate_instance"
    REVOKE_CREDENTIALS = "revoke_credentials"
    BLOCK_IP = "block_ip"
    NOTIFY = "notify"
    RECORD = "record"
    RELEASE = "release"
    PROTECT_BUCKET = "protect_bucket"
    CONTAIN_FUNCTION = "contain_function"
    CONTAIN_DATABASE = "contain_database"
    CONTAIN_TASK = "contain_task"


class Outcome(StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    PLANNED = "planned"
    SKIPPED = "skipped"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"
    RELEASED = "released"


# One character per outcome, for the action lines of notifications and of `firebreak run`.
OUTCOME_MARKS = {
    Outcome.APPLIED: "+",
    Outcome.ALREADY_APPLIED: "=",
    Outcome.PLANNED: "~",
    Outcome.SKIPPED: "-",
    Outcome.FAILED: "!",
    Outcome.AWAITING_APPROVAL: "?",
    Outcome.RELEASED: "<",
}


# A resource tagged with it =true is never touched: triage only notifies, and containment skips the instance.
EXEMPT_TAG = "firebreak:exempt"
# A resource tagged with it =required is never changed without a person's approval: triage asks when the finding
# carries it, and each playbook's destructive step reads it again, as it may have been added since.
APPROVAL_TAG = "firebreak:approval"


def says_exempt(value: str | None) -> bool:
    """Whether a firebreak:exempt tag's value exempts its resource: true, in any case or spacing."""
    return (value or "").strip().lower() == "true"


def asks_approval(value: str | None) -> bool:
    """Whether a firebreak:approval tag's value asks for a person: required, in any case or spacing."""
    return (value or "").strip().lower() == "required"


@dataclass(frozen=True)
class NetworkInterface:
    """One ENI of the affected instance, as the finding names it."""

    interface_id: str
    subnet_id: str | None = None
    vpc_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    private_ip: str | None = None
    public_ip: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkInterface:
        return cls(
            interface_id=data["interface_id"],
            subnet_id=data.get("subnet_id"),
            vpc_id=data.get("vpc_id"),
            security_group_ids=tuple(data.get("security_group_ids", ())),
            private_ip=data.get("private_ip"),
            public_ip=data.get("public_ip"),
        )


# protect-bucket: GuardDuty lists every bucket the caller's API calls touched. Protect Bucket acts on the first
# MAX_BUCKETS_PER_INCIDENT (about eight S3 calls each within its 60-second timeout, each one a release must undo)
# and reports the rest skipped; the first MAX_BUCKETS_NAMED are kept, by name and tags, so a crafted finding's
# thousands of buckets cannot fill the 256 KiB state payload the incident shares with its actions.
MAX_BUCKETS_PER_INCIDENT = 10
MAX_BUCKETS_NAMED = 100


@dataclass(frozen=True)
class Bucket:
    """protect-bucket: one S3 bucket the finding names, its tags as the finding gave them, and the object scanned."""

    name: str
    tags: tuple[tuple[str, str], ...] = ()
    object_key: str | None = None

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tags": dict(self.tags), "object_key": self.object_key}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bucket:
        tags = tuple(sorted(dict(data.get("tags") or {}).items()))
        return cls(name=data["name"], tags=tags, object_key=data.get("object_key"))


@dataclass(frozen=True)
class RemoteIpDetails:
    """What the finding itself says about one remote address (GuardDuty's own enrichment)."""

    address: str
    organization: str | None = None
    asn: str | None = None
    isp: str | None = None
    country: str | None = None
    city: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemoteIpDetails:
        return cls(
            **{key: data.get(key) for key in ("organization", "asn", "isp", "country", "city")}, address=data["address"]
        )


@dataclass(frozen=True)
class Incident:
    """One normalised finding, whichever source and casing it came in."""

    source: Source
    finding_id: str
    account_id: str
    region: str
    finding_type: str
    severity: float
    severity_label: str
    title: str = ""
    product_name: str = ""
    product_arn: str | None = None
    resource_type: str = "Unknown"
    resource_role: str | None = None
    instance_id: str | None = None
    vpc_id: str | None = None
    network_interfaces: tuple[NetworkInterface, ...] = ()
    resource_tags: tuple[tuple[str, str], ...] = ()
    access_key_id: str | None = None
    principal_type: str | None = None
    principal_name: str | None = None
    # The caller's unique id; for an assumed role AROA…:<session name>, which EC2 sets to the instance id.
    principal_id: str | None = None
    action_type: str | None = None
    direction: str | None = None
    remote_ips: tuple[str, ...] = ()
    remote_ip_details: tuple[RemoteIpDetails, ...] = ()
    invalid_remote_ips: tuple[str, ...] = ()
    threat_lists: tuple[str, ...] = ()
    sample: bool = False
    count: int = 1
    updated_at: str | None = None
    first_seen_at: str | None = None
    finding_arn: str | None = None
    # protect-bucket: the S3 bucket the finding names and, for Malware Protection for S3, the object it scanned.
    bucket_name: str | None = None
    object_key: str | None = None
    # Every bucket the finding names, the one above first; a record written before there was this field has none.
    buckets: tuple[Bucket, ...] = ()
    # contain-function: the Lambda function a Lambda Protection finding names, and its execution role's ARN.
    function_name: str | None = None
    function_arn: str | None = None
    function_role_arn: str | None = None
    function_version: str | None = None
    # contain-database: the RDS DB instance and, for Aurora, its cluster (the unit contained), the engine, and the
    # database user and database the login used (Firebreak cannot rotate a user from outside the database).
    db_instance_id: str | None = None
    db_cluster_id: str | None = None
    db_engine: str | None = None
    db_user: str | None = None
    db_name: str | None = None
    # contain-task: the ECS task of a Runtime Monitoring finding, and the EKS workload of a Kubernetes or runtime one.
    cluster_name: str | None = None
    cluster_arn: str | None = None
    task_arn: str | None = None
    task_definition_arn: str | None = None
    launch_type: str | None = None
    kubernetes_namespace: str | None = None
    kubernetes_workload: str | None = None
    kubernetes_workload_type: str | None = None
    kubernetes_user: str | None = None

    def tag(self, key: str) -> str | None:
        return dict(self.resource_tags).get(key)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resource_tags"] = dict(self.resource_tags)
        data["buckets"] = [bucket.to_dict() for bucket in self.buckets]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(
            **{
                **data,
                "source": Source(data["source"]),
                "severity": float(data["severity"]),
                "network_interfaces": tuple(NetworkInterface.from_dict(n) for n in data.get("network_interfaces", ())),
                "resource_tags": tuple(sorted(dict(data.get("resource_tags") or {}).items())),
                "remote_ips": tuple(data.get("remote_ips", ())),
                "remote_ip_details": tuple(RemoteIpDetails.from_dict(d) for d in data.get("remote_ip_details", ())),
                "invalid_remote_ips": tuple(data.get("invalid_remote_ips", ())),
                "threat_lists": tuple(data.get("threat_lists", ())),
                "buckets": tuple(Bucket.from_dict(b) for b in data.get("buckets") or ()),
            }
        )

    @property
    def bucket_names(self) -> tuple[str, ...]:
        """The buckets protect-bucket answers, in the finding's order (only bucket_name on an older record)."""
        if self.buckets:
            return tuple(bucket.name for bucket in self.buckets)
        return (self.bucket_name,) if self.bucket_name else ()


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds and a Z, the form Step Functions and GuardDuty use for timestamps."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Action:
    """One thing a playbook did, planned, skipped or failed to do: the unit of the report and the record.

    `before` and `after` are the target's state around the change (the release contract in incident.release says
    what each action type records); `at` is when the outcome was reached, stamped where the action is created.
    `left_open`: a skipped target the playbook was there to contain and a person now must (one over a cap, one
    tagged for approval since the finding); while one stands the incident is not CONTAINED. An exempt or vanished
    target is skipped without it: there is nothing left to contain.
    """

    type: ActionType
    target: str
    outcome: Outcome
    reason: str = ""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=utc_now)
    left_open: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "type": self.type.value, "outcome": self.outcome.value}
        if not self.left_open:
            del data["left_open"]  # said only where it is true, so records and reports carry it only there
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        return cls(
            type=ActionType(data["type"]),
            target=data["target"],
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason", ""),
            before=dict(data.get("before") or {}),
            after=dict(data.get("after") or {}),
            at=data.get("at") or utc_now(),
            left_open=bool(data.get("left_open", False)),
        )


def action_of(
    type_: ActionType,
    target: str,
    outcome: Outcome,
    reason: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    left_open: bool = False,
) -> Action:
    """An action whose before- and after-state a step may leave out; each step module binds its own type with
    functools.partial."""
    return Action(type_, target, outcome, reason, before or {}, after or {}, left_open=left_open)


@dataclass(frozen=True)
class Approval:
    """Why an incident waits for a person, how long, what silence means, and the answer once there is one."""

    reason: str
    window_seconds: int
    on_timeout: TimeoutAction = TimeoutAction.DENY
    decision: Decision | None = None
    decided_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "on_timeout": self.on_timeout.value,
            "decision": None if self.decision is None else self.decision.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Approval:
        return cls(
            reason=data["reason"],
            window_seconds=int(data["window_seconds"]),
            on_timeout=TimeoutAction(data.get("on_timeout") or TimeoutAction.DENY),
            decision=Decision(data["decision"]) if data.get("decision") else None,
            decided_by=data.get("decided_by"),
        )


@dataclass(frozen=True)
class Triage:
    """What Parse Finding decides: the incident, its id, its playbook and the mode to run it in."""

    incident_id: str
    incident: Incident
    playbook: Playbook
    mode: Mode
    suppressed_reason: str | None = None
    escalation: str | None = None
    approval: Approval | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "incident": self.incident.to_dict(),
            "playbook": self.playbook.value,
            "mode": self.mode.value,
            "suppressed_reason": self.suppressed_reason,
            "escalation": self.escalation,
            "approval": None if self.approval is None else self.approval.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Triage:
        return cls(
            incident_id=data["incident_id"],
            incident=Incident.from_dict(data["incident"]),
            playbook=Playbook(data["playbook"]),
            mode=Mode(data["mode"]),
            suppressed_reason=data.get("suppressed_reason"),
            escalation=data.get("escalation"),
            approval=Approval.from_dict(data["approval"]) if data.get("approval") else None,
        )


@dataclass(frozen=True)
class Verdict:
    """Enrichment's judgement of one remote address, with the evidence behind it."""

    address: str
    verdict: str
    score: int
    evidence: tuple[str, ...] = ()

    @property
    def blocks(self) -> bool:
        return self.verdict != "benign"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "verdict": self.verdict, "score": self.score, "evidence": list(self.evidence)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(data["address"], data["verdict"], int(data["score"]), tuple(data.get("evidence", ())))


def actions_from(items: Any) -> tuple[Action, ...]:
    """Actions as a state passes them on: a list, or nothing at all when a step had none."""
    return tuple(Action.from_dict(item) for item in items or ())


@dataclass(frozen=True)
class PlaybookRequest:
    """What the entry machine starts a playbook machine with, and what its steps receive as `input`."""

    incident_id: str
    incident: Incident
    mode: Mode

    @property
    def dry_run(self) -> bool:
        return self.mode is Mode.DRY_RUN

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlaybookRequest:
        return cls(
            incident_id=data["incident_id"], incident=Incident.from_dict(data["incident"]), mode=Mode(data["mode"])
        )


def step_output(result: Any) -> dict[str, Any]:
    """A playbook step's answer (a frozen dataclass of a status, its actions and what the playbook does next) as the
    state machine reads it: enums by value, tuples as lists, actions as their dicts."""

    def plain(value: Any) -> Any:
        if isinstance(value, StrEnum):
            return value.value
        if isinstance(value, Action):
            return value.to_dict()
        if isinstance(value, tuple):
            return [plain(item) for item in value]
        return value

    return {item.name: plain(getattr(result, item.name)) for item in fields(result)}
