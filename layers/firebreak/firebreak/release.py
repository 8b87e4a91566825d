"""Release: undo what a playbook changed, read from the incident record, with one small undo function per action type.

The contract between the playbooks and release
-----------------------------------------------
A playbook records every change it makes to the account as an Action (firebreak.models) with outcome `applied` (for
block_ip also `already_applied`: the incident relies on a block that was there) and two maps: `before`, the target's
state before Firebreak touched it, and `after`, the state Firebreak left it in. An action with an empty `after` is
not undone. For every other containment action that no earlier release has released, release calls the undo
function its `type` selects (`firebreak.undo.UNDO`), which:

1. reads the target's current state, in the shape of `after`;
2. compares it with `after`. If they differ, someone changed the target since: release refuses, writes nothing, and
   reports the action `skipped` with a reason starting "conflict:" (a later release tries it again);
3. otherwise restores `before` and reports the action `released`.

Release appends its results to the record's `release_actions` (the response's own `actions` stay as they were: the
record is evidence). The incident becomes RELEASED only when nothing was refused and nothing failed; when some actions
were released and others not, it is PARTIALLY_CONTAINED; when none was, it keeps its status.

Shapes (ids as the account knows them; keys not listed here are kept in the record and ignored by release):

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

isolate_instance: target is the instance id
    before {"interfaces": {<eni id>: [<group id>, ...]}, "termination_protection": bool,
            "shutdown_behavior": "stop" | "terminate", "auto_scaling_group": <group name> | null,
            "target_groups": [{"arn": <target group ARN>, "port": int | null}]}
    after  {"interfaces": {<eni id>: [<quarantine group id>]}, "termination_protection": true,
            "shutdown_behavior": "stop", "auto_scaling_group": null, "target_groups": []}
    Undo: every interface back to its groups, termination protection and shutdown behaviour back, re-attached to its
    Auto Scaling group (AttachInstances raises the group's desired capacity by one: the replacement stays) and
    re-registered with its target groups. Snapshots and tags are evidence and stay.

revoke_credentials: target is the access key id (IAMUser) or the role name (AssumedRole)
    IAMUser      before {"principal_type": "IAMUser", "user_name": str, "access_key_id": str, "key_status": "Active",
                         "policy_names": [<inline policy name>, ...]}
                 after  {"principal_type": "IAMUser", "user_name": str, "access_key_id": str,
                         "key_status": "Inactive", "deny_policy": <inline policy Firebreak attached>}
    AssumedRole  before {"principal_type": "AssumedRole", "role_name": str, "policy_names": [...]}
                 after  {"principal_type": "AssumedRole", "role_name": str, "deny_policy": "AWSRevokeOlderSessions"}
    Undo: the key back to its status, and the deny policy deleted unless it existed before the incident. Deleting
    AWSRevokeOlderSessions lets sessions issued before the revocation work again until they expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from firebreak.errors import FirebreakError
from firebreak.incidents import CONTAINMENT_ACTIONS
from firebreak.models import Action, ActionType, IncidentStatus, Outcome, utc_now
from firebreak.records import IncidentRecord
from firebreak.undo import UNDO, ReleaseContext

_HELD = frozenset({Outcome.APPLIED, Outcome.ALREADY_APPLIED})
_NOT_DONE = frozenset({Outcome.SKIPPED, Outcome.FAILED})


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
        """Containment actions that changed the account, recorded their state, and are not released yet.

        Only block_ip counts what was already in place: an address an incident relies on is shared with others, so
        the last holder removes it. An instance found already isolated, or a key found already inactive, is left.
        """
        released = {(a.type, a.target) for a in self.releases if a.outcome is Outcome.RELEASED}
        return tuple(
            action
            for action in self.actions or ()
            if action.type in CONTAINMENT_ACTIONS
            and (action.outcome is Outcome.APPLIED or (action.type is ActionType.BLOCK_IP and action.outcome in _HELD))
            and action.after
            and (action.type, action.target) not in released
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
    entries = [_undo(action, context) for action in plan.pending]
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
        _summary(entries),
    )
    return ReleaseResult(plan.incident_id, plan.status, status, (*entries, summary), still_blocked)


def release_status(previous: str, entries: Sequence[Action], released_before: bool = False) -> str:
    """RELEASED when nothing was refused or failed; otherwise what of Firebreak's containment is still in place."""
    if not any(entry.outcome in _NOT_DONE for entry in entries):
        return IncidentStatus.RELEASED.value
    if released_before or any(entry.outcome is Outcome.RELEASED for entry in entries):
        return IncidentStatus.PARTIALLY_CONTAINED.value
    return previous


def _undo(action: Action, context: ReleaseContext) -> Action:
    try:
        return UNDO[action.type](action, context)
    except (ClientError, FirebreakError) as error:
        # Throttling was already retried by the client; retrying the whole release would re-read what this one
        # changed as someone else's change. The failure is reported and a later release tries again.
        return Action(action.type, action.target, Outcome.FAILED, f"release failed: {_describe(error)}", at=utc_now())


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'ClientError')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)


def _summary(entries: Sequence[Action]) -> str:
    if not entries:
        return "nothing left to undo"
    counts = {outcome: sum(1 for e in entries if e.outcome is outcome) for outcome in Outcome}
    parts = [f"{counts[Outcome.RELEASED]} of {len(entries)} released"]
    conflicts = sum(1 for e in entries if e.outcome is Outcome.SKIPPED)
    if conflicts:
        parts.append(f"{conflicts} refused (changed since)")
    if counts[Outcome.FAILED]:
        parts.append(f"{counts[Outcome.FAILED]} failed")
    return ", ".join(parts)
