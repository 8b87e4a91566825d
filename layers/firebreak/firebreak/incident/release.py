"""Release: undo what a playbook changed, read from the incident record, with one small undo function per action type.

The contract between the playbooks and release
-----------------------------------------------
A playbook records every change it makes to the account as an Action (firebreak.core.models), one per step, with outcome
`applied` (for block_ip also `already_applied`: the incident relies on a block that was there) and two maps:
`before`, the step's state before Firebreak touched it, and `after`, the state Firebreak left it in. A step found
already in place (`already_applied`: a key already inactive, protection already on) is not Firebreak's change and is
never undone: release never re-enables what was disabled before. An action with an empty `after` is not undone.
Snapshots (evidence) and Firebreak's per-VPC groups (shared by every incident in the VPC) are kept, and said so.
For every other step that no earlier release has released, release calls the undo function its shape selects
(`firebreak.incident.undo`), which:

1. reads the step's current state, in the shape of `after`;
2. compares it with `after`. If they differ, someone changed it since: release refuses, writes nothing, and
   reports the action `skipped` with a reason starting "conflict:" (a later release tries it again);
3. otherwise restores `before` and reports the action `released`.

An instance goes back on its network first; it goes back into service (its Auto Scaling group, its target groups)
only once every interface of it that this release undid is back in its own groups.

Release appends its results to the record's `release_actions` (the response's own `actions` stay as they were: the
record is evidence). The incident becomes RELEASED only when nothing was refused, skipped or failed; when some
actions were released and others not, it is PARTIALLY_CONTAINED; when none was, it keeps its status.

Shapes, per step (ids as the account knows them; other keys are kept in the record and ignored by release):

block_ip: target is the CIDR (`203.0.113.7/32`, `2001:db8::1/128`)
    before {"ipset": <IPSet ARN>, "ipsets": [<IPSet ARN>, ...], "present": false}  (already_applied: "present": true)
    after  {"ipset": <IPSet ARN>, "ipsets": [<IPSet ARN>, ...], "present": true, "expires_at": <epoch s> | null}
    ("ipsets": the REGIONAL set and, with CloudFront scope on, the CLOUDFRONT one; "ipset" is the first of them.)
    Undo: delete the CIDR's item from the blocklist table (the sweep would put it back otherwise) and remove it from
    every IPSet, unless another incident still holds it (the CIDR is in that incident's `blocked_addresses`), or no
    Firebreak incident ever added it (it was a person's entry before any block). Already lifted on expiry: released.
block_ip in a network ACL: target is "<CIDR> in network ACL of <subnet id>"
    before {}    after {"network_acl": <ACL id>, "rule": <rule number>}
    Undo: once the CIDR has left the blocklist table, the ACL's reserved range is brought to the table (its deny
    entries go); while the CIDR is still blocked for another incident, they stay.

isolate_instance (contain-instance), target the instance id:
    interface     before {"network_interface": <eni>, "security_groups": [<its groups>]}
                  after  {"network_interface": <eni>, "security_groups": [<quarantine group>]}
                  Undo: the groups back, and the firebreak:original-groups tags isolation kept on the interface removed.
    protection    before {"disable_api_termination": false}   after {"disable_api_termination": true}
    shutdown      before {"shutdown_behavior": "terminate"}   after {"shutdown_behavior": "stop"}
    Auto Scaling  before {"auto_scaling_group": <name>, "lifecycle_state", "desired_capacity"}
                  after  {"auto_scaling_group": null, "desired_capacity"}
                  Undo: AttachInstances, which raises the desired capacity by one: the replacement stays.
    target group  before {"target_group": <ARN>, "targets": [{"Id", "Port", ...}]}   after {..., "targets": []}
    tags          before {"tags": {<key>: <value> | null}}   after {"tags": {<key>: <value Firebreak set>}}
    snapshot      before {"volume"}, after {"volume", "snapshot"}: kept
    group         after {"security_group", "vpc"}: kept

contain_database (contain-database), target the DB instance, or the cluster for Aurora:
    quarantine    before {"database": <id>, "cluster": <bool>, "db_security_groups": [<its groups>]}
                  after  {"database": <id>, "cluster": <bool>, "db_security_groups": [<quarantine group>]}
                  Undo: ModifyDBInstance / ModifyDBCluster back to its groups, and the firebreak:original-groups
                  tags removed.
    snapshot      (type record) before {"database", "cluster"}, after {"database", "cluster", "db_snapshot":
                  <identifier>}: evidence, kept.
contain_task (contain-task), target the task ARN:
    interface     as isolate_instance's; Undo: the same, unless the interface is gone with a stopped task (skipped:
                  a stopped task cannot be restarted).
    stop          before {"desired_status": "RUNNING", "last_status"}   after {"desired_status": "STOPPED"}
                  Cannot be undone: skipped, with what a person does instead (its service starts a new task).
    record        (type record) before {"task", "task_definition"}, after {}: evidence, kept.
    group         after {"security_group", "vpc"}: kept

revoke_credentials (revoke-credentials; contain-instance for its role's sessions):
    access key    target the key id; before {"user", "access_key_id", "status": "Active"}, after {..., "Inactive"}
                  Undo: the key active again (only a key that was active before).
    inline policy before {"user" | "role": <name>, "policy_name", "document": <policy> | null}
                  after  {"user" | "role": <name>, "policy_name", "document": <Firebreak's deny policy>}
                  Undo: deleted, or the earlier document put back. Deleting a TokenIssueTime deny lets sessions
                  issued before the revocation work again until they expire.
    login profile before {"user", "login_profile": true}, after {"user", "login_profile": false}
                  A deleted password cannot be restored: skipped with what a person must do.

contain_function (contain-function), target the function name (its role's sessions: revoke_credentials above):
    concurrency   before {"function": <name>, "reserved_concurrency": <n> | null}   (null: none was reserved)
                  after  {"function": <name>, "reserved_concurrency": 0}
                  Undo: put <n> back, or delete the reserved concurrency when there was none.
    evidence      before {"function", "evidence_version": null}, after {"function", "evidence_version", ...}: kept
protect_bucket (protect-bucket), target the bucket name:
    public access before {"bucket", "public_access_block": {<the four settings>} | null}, after {..., all four true}
                  Undo: the earlier settings put back, or (null) the bucket's own configuration deleted.
    logging       before {"bucket", "logging": null | {"TargetBucket", "TargetPrefix"}}, after {..., "logging": {...}}
                  Undo: logging as it was (off, most often).
    statement     before {"bucket", "policy_statement": <Sid>, "principals" | "objects": [<ARNs>]}
                  after  {..., "principals" | "objects": [<ARNs after>], "denies": [<what this incident asked to deny>]}
                  Undo: `denies` taken out of Firebreak's statement (the statement goes when empty, the policy when
                  nothing else is left), except what another incident not released still relies on. Like a block,
                  a statement found already denying them (`already_applied`) is shared: its release undoes it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from firebreak.blocking.blocklist import Blocklist
from firebreak.core.aws import ClientFactory
from firebreak.core.errors import FirebreakError
from firebreak.core.members import workload_client
from firebreak.core.models import Action, ActionType, IncidentStatus, Outcome, utc_now
from firebreak.core.settings import Settings
from firebreak.incident.notifications import release_message, release_subject
from firebreak.incident.records import IncidentRecord, block_holders, bucket_denial_holders, read_record
from firebreak.incident.undo import ReleaseContext, step_ids, step_key, step_kind, undo
from firebreak.incident.undo import kept as kept_reason
from firebreak.triage.incidents import CONTAINMENT_ACTIONS

_HELD = frozenset({Outcome.APPLIED, Outcome.ALREADY_APPLIED})
_NOT_DONE = frozenset({Outcome.SKIPPED, Outcome.FAILED})
# Network first, then the instance's own attributes, then back into service.
_ORDER = {"interface": 0, "termination_protection": 1, "shutdown_behavior": 1, "tags": 2}
_SERVICE = frozenset({"auto_scaling", "target_group"})


@dataclass(frozen=True)
class ReleasePlan:
    """What a release of one incident has to undo; `actions` is None when the record holds none to read."""

    incident_id: str
    status: str
    actions: tuple[Action, ...] | None
    releases: tuple[Action, ...] = ()

    @classmethod
    def from_record(cls, record: IncidentRecord) -> ReleasePlan:
        return cls(record.incident_id, record.status, record.actions, record.releases)

    @property
    def pending(self) -> tuple[Action, ...]:
        """Containment steps that changed the account, recorded their state, are not kept and not released yet.

        Only block_ip counts what was already in place: an address an incident relies on is shared with others, so
        the last holder removes it. An instance found already isolated, or a key found already inactive, is left.
        """
        released = {(a.type, a.target, step_key(a)) for a in self.releases if a.outcome is Outcome.RELEASED}
        steps = [
            action
            for action in self.actions or ()
            if action.type in CONTAINMENT_ACTIONS
            and (
                action.outcome is Outcome.APPLIED
                or (action.type is ActionType.BLOCK_IP and action.outcome in _HELD)
                or _shared_denial(action)
            )
            and action.after
            and kept_reason(action) is None
            and (action.type, action.target, step_key(action)) not in released
        ]
        return tuple(sorted(steps, key=lambda action: _ORDER.get(step_kind(action), 3)))

    @property
    def kept(self) -> tuple[str, ...]:
        """What the response made that release leaves on purpose: evidence, and groups other incidents share."""
        return tuple(
            reason
            for action in self.actions or ()
            if action.outcome is Outcome.APPLIED and (reason := kept_reason(action)) is not None
        )


@dataclass(frozen=True)
class ReleaseResult:
    incident_id: str
    previous_status: str
    status: str
    entries: tuple[Action, ...]
    blocked_addresses: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.status != self.previous_status

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "previous_status": self.previous_status,
            "status": self.status,
            "actions": [entry.to_dict() for entry in self.entries],
            "blocked_addresses": list(self.blocked_addresses),
        }


def release(plan: ReleasePlan, context: ReleaseContext, blocked: Sequence[str] = ()) -> ReleaseResult:
    """Undo every pending action of the plan; `blocked` is what the incident holds in the block lists before."""
    if plan.actions is None:
        reason = "the record holds no actions (the response did not finish): nothing is undone; check by hand"
        refused = Action(ActionType.RELEASE, plan.incident_id, Outcome.SKIPPED, reason)
        return ReleaseResult(plan.incident_id, plan.status, plan.status, (refused,), tuple(blocked))
    entries: list[Action] = []
    for action in plan.pending:
        entries.append(_not_in_service(action, entries) or _undo(action, context))
    released = [e for e in entries if e.outcome is Outcome.RELEASED]
    earlier = any(a.type in CONTAINMENT_ACTIONS and a.outcome is Outcome.RELEASED for a in plan.releases)
    status = release_status(plan.status, entries, released_before=earlier)
    still_blocked = tuple(
        cidr for cidr in blocked if not any(e.type is ActionType.BLOCK_IP and e.target == cidr for e in released)
    )
    summary = Action(
        ActionType.RELEASE,
        plan.incident_id,
        Outcome.RELEASED if status == IncidentStatus.RELEASED else Outcome.SKIPPED,
        _summary(entries, plan.kept),
    )
    return ReleaseResult(plan.incident_id, plan.status, status, (*entries, summary), still_blocked)


def release_incident(client: ClientFactory, settings: Settings, incident_id: str, execution_arn: str) -> dict[str, Any]:
    """Release Actions: read the record, undo what is pending, and say what the record and the responders get."""
    dynamodb = client("dynamodb")
    record = read_record(dynamodb, settings.incident_table, incident_id)
    plan = ReleasePlan.from_record(record)
    cidrs = [action.target for action in plan.pending if action.type is ActionType.BLOCK_IP]
    held, added = block_holders(dynamodb, settings.incident_table, record.incident_id, cidrs)
    account = record.incident.account_id if record.incident else ""
    region = record.incident.region if record.incident else None
    blocklist = Blocklist(client("dynamodb"), settings.blocklist_table) if settings.blocklist_table else None
    # protect-bucket: principals and objects another incident's bucket-policy statement still relies on stay denied.
    buckets = sorted({str(a.after["bucket"]) for a in plan.pending if "policy_statement" in a.after})
    denied_elsewhere = bucket_denial_holders(dynamodb, settings.incident_table, record.incident_id, buckets)
    undo_context = ReleaseContext(
        record.incident_id,
        # The workload's account and Region, through the release function's member role outside the stack's own.
        lambda service: workload_client(service, account, region, "release_incident", record.incident_id),
        held,
        added,
        blocklist=blocklist,
        network_acl_rules=settings.nacl_rules,
        denied_elsewhere=denied_elsewhere,
    )
    result = release(plan, undo_context, record.blocked_addresses)
    return release_output(record, result, execution_arn, settings.chat_format)


def release_output(
    record: IncidentRecord, result: ReleaseResult, execution_arn: str, chat_format: str
) -> dict[str, Any]:
    """The result with what the state machine writes to the record (history, released_at) and publishes."""
    now, triage = utc_now(), record.triage()
    return {
        **result.to_dict(),
        "history": [{"status": result.status, "at": now}] if result.changed else [],
        "released_at": now if result.status == IncidentStatus.RELEASED else record.released_at or "",
        "playbook": record.playbook,
        "mode": record.mode,
        "notification": {
            "subject": release_subject(result.status, result.previous_status, triage, record.incident_id),
            "message": release_message(
                result.status,
                result.previous_status,
                triage,
                record.incident_id,
                result.entries,
                execution_arn,
                chat_format,
            ),
        },
    }


def release_status(previous: str, entries: Sequence[Action], released_before: bool = False) -> str:
    """RELEASED when nothing was refused or failed; otherwise what of Firebreak's containment is still in place."""
    if not any(entry.outcome in _NOT_DONE for entry in entries):
        return IncidentStatus.RELEASED.value
    if released_before or any(entry.outcome is Outcome.RELEASED for entry in entries):
        return IncidentStatus.PARTIALLY_CONTAINED.value
    return previous


def _shared_denial(action: Action) -> bool:
    """protect-bucket: a principal or object found already denied in Firebreak's bucket-policy statement is shared
    with the incident that added it, as a block is: the last incident relying on it takes it out."""
    return (
        action.type is ActionType.PROTECT_BUCKET
        and action.outcome is Outcome.ALREADY_APPLIED
        and bool(action.after.get("denies"))
    )


def _not_in_service(action: Action, entries: Sequence[Action]) -> Action | None:
    """A refusal to put an instance back into service while an interface of it is still isolated or unknown."""
    if step_kind(action) not in _SERVICE:
        return None
    stuck = [
        e
        for e in entries
        if e.target == action.target and step_kind(e) == "interface" and e.outcome is not Outcome.RELEASED
    ]
    if not stuck:
        return None
    reason = "not put back into service: its interfaces are not back in their own groups (see above)"
    ids = step_ids(action)
    return Action(action.type, action.target, Outcome.SKIPPED, reason, ids, ids, utc_now())


def _undo(action: Action, context: ReleaseContext) -> Action:
    try:
        return undo(action, context)
    except (ClientError, FirebreakError) as error:
        # Throttling was already retried by the client; retrying the whole release would re-read what this one
        # changed as someone else's change. The failure is reported and a later release tries again.
        reason, ids = f"release failed: {_describe(error)}", step_ids(action)
        return Action(action.type, action.target, Outcome.FAILED, reason, ids, ids, utc_now())


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'ClientError')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)


def _summary(entries: Sequence[Action], kept: Sequence[str] = ()) -> str:
    left = f"; kept: {', '.join(kept)}" if kept else ""
    if not entries:
        return "nothing left to undo" + left
    counts = {outcome: sum(1 for e in entries if e.outcome is outcome) for outcome in Outcome}
    parts = [f"{counts[Outcome.RELEASED]} of {len(entries)} released"]
    conflicts = sum(1 for e in entries if e.outcome is Outcome.SKIPPED and e.reason.startswith("conflict:"))
    if conflicts:
        parts.append(f"{conflicts} refused (changed since)")
    if counts[Outcome.SKIPPED] > conflicts:
        parts.append(f"{counts[Outcome.SKIPPED] - conflicts} not undone")
    if counts[Outcome.FAILED]:
        parts.append(f"{counts[Outcome.FAILED]} failed")
    return ", ".join(parts) + left
