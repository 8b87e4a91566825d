"""Containing an RDS database: a snapshot tagged with the incident, then the VPC's quarantine security group.

An Aurora database is contained as its cluster (its instances take the cluster's groups, and RDS refuses a group
change on one of them); any other DB instance as itself. The quarantine group is the one isolation keeps per VPC.
RDS applies a group change to the database's own interfaces, which Firebreak cannot reach, and not at a moment it
can wait for, so the allow-all step isolation takes first cannot be timed here: sessions already open are not cut,
and the notification says to end them and rotate the database user from inside the database.
The groups a database had are kept on its own tags as well as in the record, so a second run and the release know
them even after a run that failed half-way. The snapshot is evidence (a `record` action), never containment; the
quarantine waits for a person when the DB instance or its cluster is tagged firebreak:approval=required now.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from firebreak.containment.isolation import (
    ORIGINAL_GROUP_TAG_KEYS,
    ORIGINAL_GROUPS_TAG,
    QUARANTINE,
    Group,
    ensure_group,
    find_group,
    original_group_tags,
)
from firebreak.core.aws import describe_error, error_code, is_transient
from firebreak.core.errors import DatabaseNotFound, MemberRoleUnavailable, QuarantineGroupUnavailable
from firebreak.core.members import playbook_client
from firebreak.core.models import (
    APPROVAL_TAG,
    EXEMPT_TAG,
    Action,
    ActionType,
    Incident,
    Mode,
    Outcome,
    PlaybookRequest,
    action_of,
    asks_approval,
    says_exempt,
    step_output,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import TagTypeDef

INCIDENT_TAG = "firebreak:incident-id"
DATABASE_TAG = "firebreak:database"
_NOT_FOUND_CODES = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault"})
_SNAPSHOT_EXISTS_CODES = frozenset({"DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExistsFault"})
_SNAPSHOT_NOT_FOUND_CODES = frozenset(
    {"DBSnapshotNotFound", "DBSnapshotNotFoundFault", "DBClusterSnapshotNotFoundFault"}
)
_GONE_STATES = frozenset({"deleting", "deleted", "failed", "incompatible-restore"})
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9]+")


class DatabaseStatus(StrEnum):
    PRESERVED = "PRESERVED"
    ALREADY_PRESERVED = "ALREADY_PRESERVED"
    QUARANTINED = "QUARANTINED"
    ALREADY_QUARANTINED = "ALREADY_QUARANTINED"
    PLANNED = "PLANNED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"
    EXEMPT = "EXEMPT"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"


@dataclass(frozen=True)
class Database:
    """The database as RDS describes it now: the cluster for Aurora, else the DB instance."""

    identifier: str
    cluster: bool
    arn: str
    status: str
    vpc_id: str | None
    group_ids: tuple[str, ...]
    tags: tuple[tuple[str, str], ...] = ()
    # A read replica is a DB instance of its own with the same users: the quarantine of its source leaves it open.
    replicas: tuple[str, ...] = ()
    # Which of the DB instance and its cluster is tagged firebreak:approval=required now, named for a person.
    approval_wanted_by: str | None = None

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)

    @property
    def kind(self) -> str:
        return "cluster" if self.cluster else "DB instance"

    @property
    def exempt(self) -> bool:
        return says_exempt(self.tag(EXEMPT_TAG))

    @property
    def gone(self) -> bool:
        return self.status in _GONE_STATES

    @property
    def recorded_groups(self) -> tuple[str, ...]:
        """The groups Firebreak wrote on the database before it first changed them; empty when it never did."""
        return tuple(" ".join(self.tag(key) or "" for key in ORIGINAL_GROUP_TAG_KEYS).split())


@dataclass(frozen=True)
class Step:
    """What a step of the playbook did, and (for the first) the addresses the playbook should block."""

    status: DatabaseStatus
    actions: tuple[Action, ...]
    block_addresses: tuple[str, ...] = ()
    suppressed_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return step_output(self)


# --- reading the database ------------------------------------------------------------------------------------------


def target_of(incident: Incident) -> str | None:
    """What the playbook contains and reports: the Aurora cluster when the finding names one, else the DB instance."""
    return incident.db_cluster_id or incident.db_instance_id


def describe_database(rds: RDSClient, incident: Incident, with_vpc: bool = True) -> Database:
    """The database now (a cluster's VPC only when asked: its subnet group is read for it); DatabaseNotFound when RDS
    knows neither it nor its cluster."""
    instance = None if incident.db_instance_id is None else _describe_instance(rds, incident.db_instance_id)
    cluster_id = incident.db_cluster_id or (instance or {}).get("DBClusterIdentifier")
    if cluster_id:
        return _describe_cluster(rds, cluster_id, instance, with_vpc)
    if instance is None:
        raise DatabaseNotFound(f"DB instance {incident.db_instance_id} does not exist")
    return Database(
        identifier=instance["DBInstanceIdentifier"],
        cluster=False,
        arn=instance["DBInstanceArn"],
        status=instance.get("DBInstanceStatus", "unknown"),
        vpc_id=instance.get("DBSubnetGroup", {}).get("VpcId"),
        group_ids=tuple(group["VpcSecurityGroupId"] for group in instance.get("VpcSecurityGroups", [])),
        tags=_tag_pairs(instance.get("TagList", [])),
        replicas=tuple(instance.get("ReadReplicaDBInstanceIdentifiers", [])),
        approval_wanted_by=_asking(f"DB instance {instance['DBInstanceIdentifier']}", instance),
    )


def _describe_instance(rds: RDSClient, identifier: str) -> Mapping[str, Any] | None:
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as error:
        if error_code(error) in _NOT_FOUND_CODES:
            return None
        raise
    return found[0] if found else None


def _describe_cluster(rds: RDSClient, identifier: str, instance: Mapping[str, Any] | None, with_vpc: bool) -> Database:
    try:
        found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    except ClientError as error:
        if error_code(error) in _NOT_FOUND_CODES:
            raise DatabaseNotFound(f"cluster {identifier} does not exist ({error_code(error)})") from error
        raise
    if not found:
        raise DatabaseNotFound(f"cluster {identifier} does not exist")
    cluster = found[0]
    vpc_id = (instance or {}).get("DBSubnetGroup", {}).get("VpcId")
    if vpc_id is None and with_vpc and cluster.get("DBSubnetGroup"):
        groups = rds.describe_db_subnet_groups(DBSubnetGroupName=cluster["DBSubnetGroup"])["DBSubnetGroups"]
        vpc_id = groups[0].get("VpcId") if groups else None
    # Either one tagged exempt exempts the database: the instance is what GuardDuty named, the cluster what moves.
    instance_tags = dict(_tag_pairs((instance or {}).get("TagList", [])))
    tags = {**instance_tags, **dict(_tag_pairs(cluster.get("TagList", [])))}
    if says_exempt(instance_tags.get(EXEMPT_TAG)):
        tags[EXEMPT_TAG] = "true"
    return Database(
        identifier=cluster["DBClusterIdentifier"],
        cluster=True,
        arn=cluster["DBClusterArn"],
        status=cluster.get("Status", "unknown"),
        vpc_id=vpc_id,
        group_ids=tuple(group["VpcSecurityGroupId"] for group in cluster.get("VpcSecurityGroups", [])),
        tags=tuple(sorted(tags.items())),
        # GuardDuty's finding carries the instance's tags only: a cluster tagged since, or ever, is read here.
        approval_wanted_by=_asking(f"cluster {identifier}", cluster)
        or _asking(f"DB instance {(instance or {}).get('DBInstanceIdentifier')} of cluster {identifier}", instance),
    )


def _asking(name: str, described: Mapping[str, Any] | None) -> str | None:
    """`name` when the described instance or cluster is tagged firebreak:approval=required, else None."""
    tags = dict(_tag_pairs((described or {}).get("TagList", [])))
    return name if asks_approval(tags.get(APPROVAL_TAG)) else None


def database_groups(
    rds: RDSClient, identifier: str, cluster: bool
) -> tuple[str, tuple[str, ...] | None, dict[str, str]]:
    """The database's ARN, groups (None when it is gone) and tags, by the identifier and kind a record names."""
    try:
        if cluster:
            found: Sequence[Mapping[str, Any]] = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
        else:
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as error:
        if error_code(error) in _NOT_FOUND_CODES:
            return "", None, {}
        raise
    if not found:
        return "", None, {}
    data = found[0]
    arn = str(data.get("DBClusterArn") or data.get("DBInstanceArn") or "")
    groups = tuple(str(group["VpcSecurityGroupId"]) for group in data.get("VpcSecurityGroups", []))
    return arn, groups, dict(_tag_pairs(data.get("TagList", [])))


def _tag_pairs(tags: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(tag["Key"]), str(tag.get("Value", ""))) for tag in tags))


def snapshot_name(incident_id: str) -> str:
    """The one snapshot identifier of an incident: RDS refuses a second with it, which makes the step idempotent."""
    return "firebreak-" + _NOT_IDENTIFIER.sub("-", incident_id).strip("-")


# --- the gate -------------------------------------------------------------------------------------------------------


def _gate(rds: RDSClient, incident: Incident, target: str, with_vpc: bool) -> Database | Step:
    """The database, or the step that ends the playbook: not found, being deleted, exempt."""
    try:
        database = describe_database(rds, incident, with_vpc)
    except DatabaseNotFound as error:
        return Step(DatabaseStatus.NOT_FOUND, (_action(target, Outcome.SKIPPED, f"{error}: not contained"),))
    if database.gone:
        reason = f"{database.kind} {database.identifier} is {database.status}: nothing left to contain"
        return Step(DatabaseStatus.NOT_FOUND, (_action(target, Outcome.SKIPPED, reason),))
    if database.exempt:
        reason = f"{database.kind} {database.identifier} is tagged {EXEMPT_TAG}=true: Firebreak never touches it"
        return Step(
            DatabaseStatus.EXEMPT, (_action(target, Outcome.SKIPPED, reason),), (), f"database tagged {EXEMPT_TAG}=true"
        )
    return database


# --- the snapshot ---------------------------------------------------------------------------------------------------


def take_snapshot(rds: RDSClient, database: Database, incident_id: str, dry_run: bool) -> Action:
    """One snapshot of the database per incident, tagged with the incident and the database."""
    name = snapshot_name(incident_id)
    before = {"database": database.identifier, "cluster": database.cluster}
    after = {"database": database.identifier, "cluster": database.cluster, "db_snapshot": name}
    existing = _existing_snapshot(rds, database, name)
    if existing is not None:
        if existing != database.identifier:
            reason = f"snapshot {name} exists but is of {existing}, not {database.identifier}: no snapshot taken"
            return _evidence(database.identifier, Outcome.FAILED, reason, before)
        reason = f"snapshot {name} of {database.kind} {database.identifier} already taken for this incident"
        return _evidence(database.identifier, Outcome.ALREADY_APPLIED, reason, before, after)
    tags: list[TagTypeDef] = [
        {"Key": INCIDENT_TAG, "Value": incident_id},
        {"Key": DATABASE_TAG, "Value": database.identifier},
    ]
    call = "CreateDBClusterSnapshot" if database.cluster else "CreateDBSnapshot"
    if dry_run:
        keys = ", ".join(f"{tag['Key']}={tag['Value']}" for tag in tags)
        ids = (
            f"DBClusterIdentifier={database.identifier}, DBClusterSnapshotIdentifier={name}"
            if database.cluster
            else f"DBInstanceIdentifier={database.identifier}, DBSnapshotIdentifier={name}"
        )
        return _evidence(
            database.identifier, Outcome.PLANNED, f"would call {call}({ids}, Tags=[{keys}])", before, after
        )
    try:
        if database.cluster:
            rds.create_db_cluster_snapshot(
                DBClusterIdentifier=database.identifier, DBClusterSnapshotIdentifier=name, Tags=tags
            )
        else:
            rds.create_db_snapshot(DBInstanceIdentifier=database.identifier, DBSnapshotIdentifier=name, Tags=tags)
    except ClientError as error:
        if error_code(error) in _SNAPSHOT_EXISTS_CODES:
            # Another execution of this incident took it a moment ago.
            reason = f"snapshot {name} of {database.kind} {database.identifier} already taken for this incident"
            return _evidence(database.identifier, Outcome.ALREADY_APPLIED, reason, before, after)
        if is_transient(error):
            raise
        reason = f"no snapshot of {database.kind} {database.identifier}: {describe_error(error)}"
        return _evidence(database.identifier, Outcome.FAILED, reason, before)
    reason = f"snapshot {name} of {database.kind} {database.identifier} started ({call}), tagged with the incident"
    return _evidence(database.identifier, Outcome.APPLIED, reason, before, after)


def _existing_snapshot(rds: RDSClient, database: Database, name: str) -> str | None:
    """The database the incident's snapshot is of, or None when there is none yet."""
    try:
        if database.cluster:
            found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"]
            return str(found[0]["DBClusterIdentifier"]) if found else None
        snapshots = rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
        return str(snapshots[0]["DBInstanceIdentifier"]) if snapshots else None
    except ClientError as error:
        if error_code(error) in _SNAPSHOT_NOT_FOUND_CODES:
            return None
        raise


def snapshot(request: PlaybookRequest) -> Step:
    """Snapshot Database: the gate, the incident's snapshot, and the addresses the playbook blocks."""
    incident = request.incident
    target = target_of(incident)
    if target is None:
        skipped = _action("unknown", Outcome.SKIPPED, "the finding names no DB instance or cluster")
        return Step(DatabaseStatus.NOT_FOUND, (skipped,))
    # Every address in an RDS login finding is the one that logged in or tried to: the attacker, never a destination.
    addresses = incident.remote_ips
    try:
        rds = playbook_client("rds", request, "snapshot_database")
    except MemberRoleUnavailable as error:
        # The shared block lists need no member role: the addresses are still blocked.
        failed = _evidence(target, Outcome.FAILED, f"no snapshot taken: {error}")
        return Step(DatabaseStatus.FAILED, (failed,), addresses)
    gated = _gate(rds, incident, target, with_vpc=False)
    if isinstance(gated, Step):
        return gated
    action = take_snapshot(rds, gated, request.incident_id, request.dry_run)
    status = {
        Outcome.APPLIED: DatabaseStatus.PRESERVED,
        Outcome.ALREADY_APPLIED: DatabaseStatus.ALREADY_PRESERVED,
        Outcome.PLANNED: DatabaseStatus.PLANNED,
    }.get(action.outcome, DatabaseStatus.FAILED)
    return Step(status, (action,), addresses)


# --- the quarantine -------------------------------------------------------------------------------------------------


def original_groups(database: Database, quarantine_id: str) -> tuple[str, ...]:
    """The database's own groups: what it holds now, unless that is only the quarantine group from an earlier run."""
    if database.recorded_groups and set(database.group_ids) <= {quarantine_id}:
        return database.recorded_groups
    return database.group_ids


def move_to_quarantine(rds: RDSClient, ec2: EC2Client, database: Database, dry_run: bool) -> list[Action]:
    """The database's groups replaced by its VPC's quarantine group, the groups it had kept on its tags first."""
    target = database.identifier
    if not database.vpc_id:
        return [_action(target, Outcome.FAILED, f"{database.kind} {target} is in no VPC: no quarantine group for it")]
    if dry_run:
        return [_plan_quarantine(ec2, database)]
    try:
        quarantine = ensure_group(ec2, QUARANTINE, database.vpc_id)
    except ClientError as error:
        if is_transient(error):
            raise
        return [_action(target, Outcome.FAILED, f"no quarantine group in {database.vpc_id}: {describe_error(error)}")]
    except QuarantineGroupUnavailable as error:
        return [_action(target, Outcome.FAILED, str(error))]
    actions = [action for action in (_group_action(target, database.vpc_id, quarantine),) if action]
    originals = original_groups(database, quarantine.group_id)
    before = {"database": target, "cluster": database.cluster, "db_security_groups": list(originals)}
    after = {"database": target, "cluster": database.cluster, "db_security_groups": [quarantine.group_id]}
    if database.group_ids == (quarantine.group_id,):
        reason = f"{database.kind} {target} already holds only quarantine group {quarantine.group_id}"
        return [*actions, _action(target, Outcome.ALREADY_APPLIED, reason, before, after)]
    try:
        if database.recorded_groups != originals:
            tags = [tag for tag in original_group_tags(originals) if tag.get("Value")]
            rds.add_tags_to_resource(ResourceName=database.arn, Tags=tags)
        if database.cluster:
            rds.modify_db_cluster(
                DBClusterIdentifier=target, VpcSecurityGroupIds=[quarantine.group_id], ApplyImmediately=True
            )
        else:
            rds.modify_db_instance(
                DBInstanceIdentifier=target, VpcSecurityGroupIds=[quarantine.group_id], ApplyImmediately=True
            )
    except ClientError as error:
        if is_transient(error):
            raise
        reason = f"{database.kind} {target} unchanged: {describe_error(error)}"
        return [*actions, _action(target, Outcome.FAILED, reason, before)]
    reason = (
        f"{database.kind} {target} moved from {', '.join(originals) or 'no group'} to quarantine group "
        f"{quarantine.group_id}; sessions already open stay open until ended inside the database"
    )
    if database.replicas:
        reason += f"; its read replicas {', '.join(database.replicas)} keep their groups and the same users"
    return [*actions, _action(target, Outcome.APPLIED, reason, before, after)]


def _plan_quarantine(ec2: EC2Client, database: Database) -> Action:
    vpc_id = database.vpc_id or ""
    found = find_group(ec2, QUARANTINE, vpc_id)
    quarantine = found or QUARANTINE.name(vpc_id)
    originals = original_groups(database, quarantine)
    before = {"database": database.identifier, "cluster": database.cluster, "db_security_groups": list(originals)}
    after = {"database": database.identifier, "cluster": database.cluster, "db_security_groups": [quarantine]}
    if database.group_ids == (quarantine,):
        reason = f"{database.kind} {database.identifier} already holds only quarantine group {quarantine}"
        return _action(database.identifier, Outcome.ALREADY_APPLIED, reason, before, after)
    calls = [] if found else [f"CreateSecurityGroup(GroupName={quarantine}, VpcId={vpc_id})"]
    calls.append(f"AddTagsToResource(ResourceName={database.arn}, Tags=[{ORIGINAL_GROUPS_TAG}={' '.join(originals)}])")
    if database.cluster:
        calls.append(f"ModifyDBCluster(DBClusterIdentifier={database.identifier}, VpcSecurityGroupIds=[{quarantine}])")
    else:
        calls.append(
            f"ModifyDBInstance(DBInstanceIdentifier={database.identifier}, VpcSecurityGroupIds=[{quarantine}])"
        )
    return _action(database.identifier, Outcome.PLANNED, "would call " + ", then ".join(calls), before, after)


def _group_action(target: str, vpc_id: str, group: Group) -> Action | None:
    if group.created:
        reason = f"created quarantine group {group.group_id} ({group.name}) in {vpc_id}"
        return _action(target, Outcome.APPLIED, reason, {}, {"security_group": group.group_id, "vpc": vpc_id})
    if group.rules_changed:
        reason = f"reset {group.rules_changed} rule(s) someone changed on quarantine group {group.group_id}"
        return _action(target, Outcome.APPLIED, reason, {}, {"security_group": group.group_id})
    return None


def quarantine(request: PlaybookRequest, approved: bool = False) -> Step:
    """Quarantine Database: the gate again (the tags may have changed since the snapshot), a person's approval when
    the database asks for one now, then the move. `approved`: a person approved this incident."""
    incident = request.incident
    target = target_of(incident)
    if target is None:
        skipped = _action("unknown", Outcome.SKIPPED, "the finding names no DB instance or cluster")
        return Step(DatabaseStatus.NOT_FOUND, (skipped,))
    try:
        rds = playbook_client("rds", request, "quarantine_database")
        ec2 = playbook_client("ec2", request, "quarantine_database")
    except MemberRoleUnavailable as error:
        return Step(DatabaseStatus.FAILED, (_action(target, Outcome.FAILED, f"not quarantined: {error}"),))
    gated = _gate(rds, incident, target, with_vpc=True)
    if isinstance(gated, Step):
        return gated
    wanting = None if approved else gated.approval_wanted_by
    if wanting and request.mode is Mode.ENFORCE:
        waiting = _action(target, Outcome.SKIPPED, _approval_reason(wanting), left_open=True)
        return Step(DatabaseStatus.APPROVAL_REQUIRED, (waiting,))
    actions = tuple(move_to_quarantine(rds, ec2, gated, request.dry_run))
    if wanting:
        # A plan must say what the live run would do: stop for a person, not move the database.
        actions = tuple(_noting_approval(action, wanting) for action in actions)
    outcomes = {action.outcome for action in actions}
    if Outcome.FAILED in outcomes:
        return Step(DatabaseStatus.FAILED, actions)
    if outcomes == {Outcome.ALREADY_APPLIED}:
        return Step(DatabaseStatus.ALREADY_QUARANTINED, actions)
    return Step(DatabaseStatus.PLANNED if request.dry_run else DatabaseStatus.QUARANTINED, actions)


def _approval_reason(wanting: str) -> str:
    return (
        f"{wanting} is tagged {APPROVAL_TAG}=required now, and nobody approved this incident (GuardDuty's copy of "
        "the tags did not ask): not quarantined, its application still reaches it; the snapshot and the address "
        "blocks stand. A responder who decides to cut it off moves it into its VPC's quarantine security group by "
        "hand (ModifyDBCluster or ModifyDBInstance with VpcSecurityGroupIds)"
    )


def _noting_approval(action: Action, wanting: str) -> Action:
    if action.outcome is not Outcome.PLANNED:
        return action
    note = f"; {wanting} is tagged {APPROVAL_TAG}=required now: an enforce run skips it unless a person approved"
    return dataclasses.replace(action, reason=action.reason + note)


_action = partial(action_of, ActionType.CONTAIN_DATABASE)


# The snapshot's action: evidence kept (type record, as contain-task's task record), not a containment. It contains
# nothing, so a snapshot taken next to a quarantine that did not happen never makes the incident CONTAINED;
# triage.incidents counts a failed one as a failed step.
_evidence = partial(action_of, ActionType.RECORD)
