"""Containing an RDS database on moto: the gate, the one snapshot per incident, the quarantine, the plan."""

from __future__ import annotations

import dataclasses
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.containment import database
from firebreak.containment.database import (
    Database,
    DatabaseStatus,
    describe_database,
    move_to_quarantine,
    original_groups,
    snapshot_name,
    take_snapshot,
)
from firebreak.containment.isolation import QUARANTINE, ensure_group
from firebreak.core.errors import DatabaseNotFound
from firebreak.core.models import ActionType, Incident, Mode, Outcome, PlaybookRequest
from firebreak.triage.findings import normalise
from firebreak_local.world import World
from tests.support import load_event

AURORA = "eventbridge/guardduty_rds_login_attempt"
MYSQL = "eventbridge/guardduty_rds_successful_brute_force"
INCIDENT = "fb-0123456789abcdef0123"


@pytest.fixture
def rds(aws: None) -> Any:
    return boto3.client("rds", region_name="us-east-1")


@pytest.fixture
def ec2(aws: None) -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def seeded(ec2: Any, name: str) -> Incident:
    """The event's database seeded as the world seeds it, and the event's incident."""
    event = load_event(name)
    World(ec2, boto3.client("iam", region_name="us-east-1")).seed(event)
    return normalise(event)


def request(incident: Incident, mode: Mode = Mode.ENFORCE) -> PlaybookRequest:
    return PlaybookRequest(INCIDENT, incident, mode)


def refusing(client: Any, operation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, operation)  # type: ignore[arg-type]

    monkeypatch.setattr(client, operation, refuse)


# --- reading ----------------------------------------------------------------------------------------------------


def test_aurora_instance_is_described_as_its_cluster_with_the_clusters_groups_and_vpc(rds: Any, ec2: Any) -> None:
    # GIVEN the Aurora login finding, whose instance orders-db is in cluster orders
    incident = seeded(ec2, AURORA)
    # WHEN the database is described
    found = describe_database(rds, incident)
    # THEN it is the cluster, with the cluster's group and the VPC of its subnet group
    assert (found.identifier, found.cluster, found.status) == ("orders", True, "available")
    [group] = found.group_ids
    assert found.vpc_id == ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["VpcId"]


def test_an_instance_named_without_its_cluster_is_still_contained_as_the_cluster(rds: Any, ec2: Any) -> None:
    # GIVEN a finding that names an Aurora instance but not its cluster
    incident = dataclasses.replace(seeded(ec2, AURORA), db_cluster_id=None)
    # WHEN the database is described
    # THEN RDS's own answer names the cluster, which is what holds the groups
    assert describe_database(rds, incident).identifier == "orders"


def test_a_database_rds_does_not_know_is_not_found(rds: Any, ec2: Any) -> None:
    incident = dataclasses.replace(seeded(ec2, MYSQL), db_instance_id="gone-db")
    with pytest.raises(DatabaseNotFound, match="gone-db"):
        describe_database(rds, incident)


def test_exempt_on_the_aurora_instance_exempts_the_cluster(rds: Any, ec2: Any) -> None:
    # GIVEN only the instance GuardDuty named is tagged exempt, not its cluster
    incident = seeded(ec2, AURORA)
    arn = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "firebreak:exempt", "Value": "True"}])
    # THEN the cluster is exempt too: a person marked the database
    assert describe_database(rds, incident).exempt is True


def test_approval_tag_on_the_aurora_instance_or_its_cluster_names_which_asks(rds: Any, ec2: Any) -> None:
    # GIVEN the Aurora login finding, and no approval tag yet
    incident = seeded(ec2, AURORA)
    assert describe_database(rds, incident).approval_wanted_by is None
    instance = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]["DBInstanceArn"]
    cluster = rds.describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]["DBClusterArn"]

    # WHEN the instance GuardDuty named is tagged firebreak:approval=required, and then the cluster too
    rds.add_tags_to_resource(ResourceName=instance, Tags=[{"Key": "firebreak:approval", "Value": "Required"}])
    by_instance = describe_database(rds, incident).approval_wanted_by
    rds.add_tags_to_resource(ResourceName=cluster, Tags=[{"Key": "firebreak:approval", "Value": "required"}])
    by_cluster = describe_database(rds, incident).approval_wanted_by

    # THEN either one asks for a person for the cluster that would move, and the one that asks is named
    assert by_instance == "DB instance orders-db of cluster orders"
    assert by_cluster == "cluster orders"


def test_snapshot_name_is_the_incidents_and_a_valid_rds_identifier() -> None:
    assert snapshot_name("fb-0123456789abcdef0123") == "firebreak-fb-0123456789abcdef0123"
    assert snapshot_name("fb--x_y.") == "firebreak-fb-x-y"


# --- the snapshot -----------------------------------------------------------------------------------------------


def test_one_snapshot_per_incident_the_second_is_already_applied(rds: Any, ec2: Any) -> None:
    # GIVEN a standalone instance
    found = describe_database(rds, seeded(ec2, MYSQL))
    # WHEN the snapshot is taken twice for one incident
    first = take_snapshot(rds, found, INCIDENT, dry_run=False)
    second = take_snapshot(rds, found, INCIDENT, dry_run=False)
    # THEN the first took it, tagged with the incident and the database, and the second found it
    assert (first.outcome, second.outcome) == (Outcome.APPLIED, Outcome.ALREADY_APPLIED)
    # AND it is evidence on the record (type record), not a containment: a snapshot alone contains nothing
    assert first.type is ActionType.RECORD
    assert first.after == {"database": "billing-db", "cluster": False, "db_snapshot": snapshot_name(INCIDENT)}
    [taken] = rds.describe_db_snapshots(DBInstanceIdentifier="billing-db", SnapshotType="manual")["DBSnapshots"]
    assert {"Key": "firebreak:incident-id", "Value": INCIDENT} in taken["TagList"]
    assert {"Key": "firebreak:database", "Value": "billing-db"} in taken["TagList"]


def test_a_snapshot_of_the_incidents_name_but_another_database_is_a_failure(rds: Any, ec2: Any) -> None:
    # GIVEN someone took a snapshot with the incident's name of another instance
    found = describe_database(rds, seeded(ec2, MYSQL))
    other = dataclasses.replace(found, identifier="other-db")
    rds.create_db_instance(
        DBInstanceIdentifier="other-db", DBInstanceClass="db.t3.micro", Engine="mysql", AllocatedStorage=20
    )
    take_snapshot(rds, other, INCIDENT, dry_run=False)
    # WHEN the incident's database is snapshotted
    action = take_snapshot(rds, found, INCIDENT, dry_run=False)
    # THEN it is not taken and says why: the record must never claim another database's snapshot
    assert action.outcome is Outcome.FAILED
    assert "is of other-db, not billing-db" in action.reason


def test_snapshot_refused_is_a_failed_action_not_an_exception(
    rds: Any, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = describe_database(rds, seeded(ec2, AURORA))
    refusing(rds, "create_db_cluster_snapshot", monkeypatch)
    action = take_snapshot(rds, found, INCIDENT, dry_run=False)
    assert (action.outcome, action.reason) == (Outcome.FAILED, "no snapshot of cluster orders: AccessDenied: no")


def test_snapshot_step_names_the_login_address_to_block_and_stops_for_exempt(rds: Any, ec2: Any) -> None:
    # GIVEN a seeded instance, first as it is and then tagged exempt
    incident = seeded(ec2, MYSQL)
    step = database.snapshot(request(incident))
    assert (step.status, step.block_addresses) == (DatabaseStatus.PRESERVED, ("45.141.84.120",))
    arn = rds.describe_db_instances(DBInstanceIdentifier="billing-db")["DBInstances"][0]["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "firebreak:exempt", "Value": "true"}])
    # WHEN the step runs on the exempt instance
    exempt = database.snapshot(request(incident))
    # THEN it stops, blocks nothing and says why
    assert (exempt.status, exempt.block_addresses) == (DatabaseStatus.EXEMPT, ())
    assert exempt.suppressed_reason == "database tagged firebreak:exempt=true"


def test_a_finding_without_a_database_is_not_found() -> None:
    incident = dataclasses.replace(normalise(load_event(MYSQL)), db_instance_id=None)
    step = database.snapshot(request(incident))
    assert step.status is DatabaseStatus.NOT_FOUND
    assert step.actions[0].reason == "the finding names no DB instance or cluster"


# --- the quarantine ---------------------------------------------------------------------------------------------


def test_quarantine_keeps_the_groups_on_the_tags_and_then_moves_the_instance(rds: Any, ec2: Any) -> None:
    # GIVEN a standalone instance with its own group
    incident = seeded(ec2, MYSQL)
    found = describe_database(rds, incident)
    # WHEN it is quarantined
    created, moved = move_to_quarantine(rds, ec2, found, dry_run=False)
    # THEN the VPC's quarantine group was created, the instance holds only it, and its own group is on its tags
    quarantine = created.after["security_group"]
    assert moved.outcome is Outcome.APPLIED
    assert moved.before["db_security_groups"] == list(found.group_ids)
    assert moved.after["db_security_groups"] == [quarantine]
    now = describe_database(rds, incident)
    assert now.group_ids == (quarantine,)
    assert now.recorded_groups == found.group_ids
    # AND a second run says already applied, with the groups from the tags as its before-state
    [again] = move_to_quarantine(rds, ec2, now, dry_run=False)
    assert again.outcome is Outcome.ALREADY_APPLIED
    assert again.before["db_security_groups"] == list(found.group_ids)


def test_original_groups_come_from_the_tags_only_while_the_database_holds_only_the_quarantine() -> None:
    recorded = (("firebreak:original-groups", "sg-1 sg-2"),)
    held = Database("db", False, "arn", "available", "vpc-1", ("sg-q",), recorded)
    changed = dataclasses.replace(held, group_ids=("sg-3",))
    assert original_groups(held, "sg-q") == ("sg-1", "sg-2")
    assert original_groups(changed, "sg-q") == ("sg-3",)


def test_quarantine_refused_leaves_the_groups_and_is_failed(
    rds: Any, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = seeded(ec2, AURORA)
    found = describe_database(rds, incident)
    refusing(rds, "modify_db_cluster", monkeypatch)
    *_, failed = move_to_quarantine(rds, ec2, found, dry_run=False)
    assert (failed.outcome, failed.reason) == (Outcome.FAILED, "cluster orders unchanged: AccessDenied: no")
    assert describe_database(rds, incident).group_ids == found.group_ids


def test_a_database_in_no_vpc_cannot_be_quarantined(rds: Any, ec2: Any) -> None:
    found = dataclasses.replace(describe_database(rds, seeded(ec2, MYSQL)), vpc_id=None)
    [failed] = move_to_quarantine(rds, ec2, found, dry_run=False)
    assert failed.outcome is Outcome.FAILED
    assert "is in no VPC" in failed.reason


def test_dry_run_names_every_call_and_creates_nothing(rds: Any, ec2: Any) -> None:
    found = describe_database(rds, seeded(ec2, MYSQL))
    [planned] = move_to_quarantine(rds, ec2, found, dry_run=True)
    assert planned.outcome is Outcome.PLANNED
    assert "CreateSecurityGroup(GroupName=firebreak-quarantine-vpc-" in planned.reason
    assert "ModifyDBInstance(DBInstanceIdentifier=billing-db, VpcSecurityGroupIds=[firebreak-quarantine-" in (
        planned.reason
    )
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].startswith("firebreak-")]


def test_dry_run_with_the_group_in_place_plans_only_the_database_calls(rds: Any, ec2: Any) -> None:
    found = describe_database(rds, seeded(ec2, MYSQL))
    group = ensure_group(ec2, QUARANTINE, found.vpc_id or "")
    [planned] = move_to_quarantine(rds, ec2, found, dry_run=True)
    assert "CreateSecurityGroup" not in planned.reason
    assert f"VpcSecurityGroupIds=[{group.group_id}]" in planned.reason


def test_quarantine_step_reports_its_status(rds: Any, ec2: Any) -> None:
    incident = seeded(ec2, AURORA)
    assert database.quarantine(request(incident)).status is DatabaseStatus.QUARANTINED
    assert database.quarantine(request(incident)).status is DatabaseStatus.ALREADY_QUARANTINED


def test_the_quarantine_says_which_read_replicas_it_leaves_open(rds: Any, ec2: Any) -> None:
    # GIVEN a standalone instance with a read replica, which holds the same users
    incident = seeded(ec2, MYSQL)
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="billing-db-replica", SourceDBInstanceIdentifier="billing-db"
    )
    # WHEN the instance is quarantined
    *_, moved = move_to_quarantine(rds, ec2, describe_database(rds, incident), dry_run=False)
    # THEN the action says the replica keeps its groups, so a person decides about it
    assert moved.outcome is Outcome.APPLIED
    assert moved.reason.endswith("its read replicas billing-db-replica keep their groups and the same users")
