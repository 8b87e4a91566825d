"""The real contain-database playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak_local.engine import Approvals, Engine, Execution
from tests.support import TEMPLATE, incident_record, load_event, out_of_memory, report_of, start

BRUTE_FORCED = "eventbridge/guardduty_rds_successful_brute_force"
FAILED_LOGIN = "eventbridge/guardduty_rds_malicious_ip_failed_login"
INSTANCE = "billing-db"
MEMBER, MEMBER_REGION = "111122223333", "eu-west-1"
SNAPSHOT_FUNCTION = "firebreak-SnapshotDatabaseFunction"
MUTATING = ("Create", "Modify", "Authorize", "Revoke", "Add", "Remove", "Put", "Delete")

AURORA_LOGIN = "eventbridge/guardduty_rds_login_attempt"
CLUSTER = "orders"
ENFORCE = {"ContainDatabaseMode": "enforce"}
CONTAIN_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    "Run Contain Database Playbook",
    "Snapshot Database",
    "Is Database Containable?",
    "Quarantine Database",
    "Any Addresses To Block?",
    "Enrich Addresses",
    "Block Addresses",
    "Containment Complete",
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
    "Response Complete",
]


@pytest.fixture
def enforcing() -> Iterator[Engine]:
    """The stack with contain-database in enforce mode: no person approves in these tests unless they say so."""
    with Engine(TEMPLATE, ENFORCE) as engine:
        yield engine


def actions(execution: Execution, action_type: str = "contain_database") -> list[dict[str, Any]]:
    return [action for action in report_of(execution)["actions"] if action["type"] == action_type]


def snapshots(execution: Execution) -> list[dict[str, Any]]:
    """The snapshot's actions: evidence (type record) about the database, not the entry machine's own records."""
    return [action for action in actions(execution, "record") if action["target"] in (CLUSTER, INSTANCE)]


def cluster_groups(engine: Engine, cluster: str = CLUSTER) -> list[str]:
    found = engine.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    return sorted(group["VpcSecurityGroupId"] for group in found["VpcSecurityGroups"])


def instance_groups(engine: Engine, instance: str = INSTANCE) -> list[str]:
    found = engine.client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    return sorted(group["VpcSecurityGroupId"] for group in found["VpcSecurityGroups"])


def group_names(engine: Engine, ids: list[str]) -> list[str]:
    groups = engine.client("ec2").describe_security_groups(GroupIds=ids)["SecurityGroups"]
    return sorted(group["GroupName"] for group in groups)


def rds_calls(execution: Execution) -> list[str]:
    """The calls that would change a database, its snapshots or its groups."""
    return [
        call
        for call in execution.api_calls
        if call.startswith(("rds.", "ec2.")) and call.split(".")[-1].startswith(MUTATING)
    ]


def refuse(operation: str) -> Any:
    def refused(**kwargs: Any) -> Any:
        error = {"Error": {"Code": "AccessDenied", "Message": f"not authorized to perform: rds:{operation}"}}
        raise ClientError(error, operation)  # type: ignore[arg-type]

    return refused


# --- the whole playbook -----------------------------------------------------------------------------------------


def test_happy_path_snapshots_the_cluster_quarantines_it_and_blocks_the_login_address(enforcing: Engine) -> None:
    # GIVEN a known malicious address logged in to an Aurora instance of cluster "orders"
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    [original] = cluster_groups(enforcing)

    # WHEN the finding runs through the stack
    execution = start(enforcing, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == CONTAIN_STATES
    outcome = report_of(execution)
    assert outcome["playbook"] == "contain-database"
    assert outcome["status"] == "CONTAINED"

    # AND the cluster holds only its VPC's quarantine group, and one snapshot tagged with the incident
    groups = cluster_groups(enforcing)
    assert len(groups) == 1
    assert group_names(enforcing, groups)[0].startswith("firebreak-quarantine-vpc-")
    rds = enforcing.client("rds")
    [snapshot] = rds.describe_db_cluster_snapshots(DBClusterIdentifier=CLUSTER, SnapshotType="manual")[
        "DBClusterSnapshots"
    ]
    assert {"Key": "firebreak:incident-id", "Value": outcome["incident_id"]} in snapshot["TagList"]
    world = enforcing.world.report()["databases"][CLUSTER]
    assert world["quarantined"] is True
    assert world["snapshots"] == 1

    # AND the record keeps the cluster's own group for the release, and the login address is blocked
    stored = incident_record(enforcing, outcome["incident_id"])
    [move] = [a for a in stored["actions"] if "db_security_groups" in a.get("before", {})]
    assert move["before"]["db_security_groups"] == [original]
    assert move["outcome"] == "applied"
    assert "185.196.8.150/32" in enforcing.blocked_ips()


def test_standalone_instance_brute_forced_until_a_login_succeeded_is_quarantined_as_itself(enforcing: Engine) -> None:
    # GIVEN a brute force that ended in a successful login to an RDS for MySQL instance (no cluster)
    event = load_event(BRUTE_FORCED)
    enforcing.world.seed(event)
    [original] = instance_groups(enforcing)

    # WHEN the finding runs
    execution = start(enforcing, event)

    # THEN the instance itself is snapshotted and quarantined, and the notification names the user to rotate
    assert report_of(execution)["status"] == "CONTAINED"
    [quarantine] = instance_groups(enforcing)
    assert quarantine != original
    assert group_names(enforcing, [quarantine])[0].startswith("firebreak-quarantine-")
    rds = enforcing.client("rds")
    [snapshot] = rds.describe_db_snapshots(DBInstanceIdentifier=INSTANCE, SnapshotType="manual")["DBSnapshots"]
    assert snapshot["DBSnapshotIdentifier"] == "firebreak-" + report_of(execution)["incident_id"]
    assert enforcing.world.report()["databases"][INSTANCE]["snapshots"] == 1
    finding = json.loads(enforcing.notifications()[-1]["message"])["finding"]
    assert (finding["db_instance_id"], finding["db_user"], finding["db_name"]) == (INSTANCE, "admin", "billing")


def test_second_finding_on_a_quarantined_database_changes_nothing_and_says_already_applied(enforcing: Engine) -> None:
    # GIVEN the cluster already contained for one finding
    first = load_event(AURORA_LOGIN)
    start(enforcing, first)
    before = cluster_groups(enforcing)

    # WHEN a second finding of the same incident's database arrives (a redelivery would be a duplicate: a new finding)
    second = load_event(AURORA_LOGIN)
    second["detail"]["id"] = "0e4a6c8d2f5b7e9a1c3d4f6b8e0a2c99"
    second["detail"]["type"] = "CredentialAccess:RDS/TorIPCaller.SuccessfulLogin"
    execution = start(enforcing, second)

    # THEN the quarantine says already applied, its snapshot is its own, and no group or tag changed
    moves = [a for a in actions(execution) if "db_security_groups" in a["before"]]
    assert [a["outcome"] for a in moves] == ["already_applied"]
    assert moves[0]["before"]["db_security_groups"] != before
    assert report_of(execution)["status"] == "CONTAINED"
    assert cluster_groups(enforcing) == before
    changes = [c for c in rds_calls(execution) if not c.endswith("CreateDBClusterSnapshot")]
    assert changes == []


def test_rerun_of_one_incident_takes_no_second_snapshot(enforcing: Engine) -> None:
    # GIVEN an incident whose snapshot was taken
    event = load_event(AURORA_LOGIN)
    first = start(enforcing, event)
    incident_id = report_of(first)["incident_id"]
    request = {"incident_id": incident_id, "incident": json.loads(incident_record(enforcing, incident_id)["incident"])}

    # WHEN its playbook runs again for the same incident (a retried execution)
    again = enforcing.invoke("SnapshotDatabaseFunction", {"input": {**request, "mode": "enforce"}})

    # THEN the snapshot step finds the incident's snapshot and takes none
    assert again["status"] == "ALREADY_PRESERVED"
    assert [a["outcome"] for a in again["actions"]] == ["already_applied"]
    assert enforcing.world.report()["databases"][CLUSTER]["snapshots"] == 1


def test_a_refused_snapshot_still_quarantines_and_is_partially_contained(
    enforcing: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN RDS refuses the snapshot (forced: the role lacks the permission)
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    monkeypatch.setattr(
        aws.client("rds", region="us-east-1"), "create_db_cluster_snapshot", refuse("CreateDBClusterSnapshot")
    )

    # WHEN the finding runs
    execution = start(enforcing, event)

    # THEN the snapshot is a failed evidence record, the quarantine and the block still happened, and the status says
    # so: evidence that is missing is never hidden behind a quarantine that worked
    failed = [a for a in report_of(execution)["actions"] if a["outcome"] == "failed"]
    assert [(a["type"], a["reason"].split(": ", 1)[1]) for a in failed] == [
        ("record", "AccessDenied: not authorized to perform: rds:CreateDBClusterSnapshot")
    ]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert enforcing.world.report()["databases"][CLUSTER]["quarantined"] is True
    assert "185.196.8.150/32" in enforcing.blocked_ips()


def test_a_refused_quarantine_leaves_the_groups_and_is_partially_contained(
    enforcing: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN RDS refuses to change the cluster's groups
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    before = cluster_groups(enforcing)
    monkeypatch.setattr(aws.client("rds", region="us-east-1"), "modify_db_cluster", refuse("ModifyDBCluster"))

    # WHEN the finding runs
    execution = start(enforcing, event)

    # THEN the quarantine is failed with RDS's reason, the cluster keeps its groups, and it is never CONTAINED
    [failed] = [a for a in actions(execution) if a["outcome"] == "failed"]
    assert (
        failed["reason"] == f"cluster {CLUSTER} unchanged: AccessDenied: not authorized to perform: rds:ModifyDBCluster"
    )
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert cluster_groups(enforcing) == before
    assert enforcing.world.report()["databases"][CLUSTER]["snapshots"] == 1


def test_snapshot_step_crashing_is_failed_and_the_quarantine_still_runs(enforcing: Engine) -> None:
    # GIVEN the snapshot function crashes (forced: a rare runtime error)
    enforcing.dispatcher.override(SNAPSHOT_FUNCTION, out_of_memory)

    # WHEN the finding runs
    execution = start(enforcing, load_event(AURORA_LOGIN))

    # THEN the snapshot is reported failed by step, the cluster is quarantined, the address blocked, never CONTAINED
    [snapshot] = snapshots(execution)
    assert (snapshot["target"], snapshot["outcome"]) == (CLUSTER, "failed")
    assert snapshot["reason"].startswith("step Snapshot Database failed: ")
    assert [a["outcome"] for a in actions(execution) if "db_security_groups" in a["before"]] == ["applied"]
    assert "Enrich Addresses" in execution.states
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_dry_run_plans_every_call_and_changes_nothing() -> None:
    # GIVEN contain-database in dry-run mode
    with Engine(TEMPLATE, {"ContainDatabaseMode": "dry-run"}) as engine:
        event = load_event(AURORA_LOGIN)
        engine.world.seed(event)
        before = cluster_groups(engine)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN the snapshot and the quarantine are planned with their exact calls, and nothing changed
        assert report_of(execution)["status"] == "DRY_RUN"
        planned = [*snapshots(execution), *actions(execution)]
        assert [a["type"] for a in planned] == ["record", "contain_database"]
        assert {a["outcome"] for a in planned} == {"planned"}
        reasons = " ".join(a["reason"] for a in planned)
        for call in ("CreateDBClusterSnapshot(DBClusterIdentifier=orders", "CreateSecurityGroup", "AddTagsToResource"):
            assert call in reasons
        assert f"ModifyDBCluster(DBClusterIdentifier={CLUSTER}, VpcSecurityGroupIds=[firebreak-quarantine-" in reasons
        assert rds_calls(execution) == []
        assert cluster_groups(engine) == before
        assert engine.world.report()["databases"][CLUSTER]["snapshots"] == 0


def test_dry_run_stack_with_the_default_modes_plans_and_asks_nobody() -> None:
    # GIVEN a stack trialled in dry-run, ContainDatabaseMode left at its default (approval)
    with Engine(TEMPLATE, {"ResponseMode": "dry-run"}) as engine:
        event = load_event(AURORA_LOGIN)
        engine.world.seed(event)
        before = cluster_groups(engine)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN no person is asked: the playbook only plans, and nothing changed anywhere
        assert execution.status == "SUCCEEDED"
        assert "Wait For Approval" not in execution.states
        assert (report_of(execution)["status"], report_of(execution)["mode"]) == ("DRY_RUN", "dry-run")
        assert {a["outcome"] for a in [*snapshots(execution), *actions(execution)]} == {"planned"}
        assert not [n for n in engine.notifications() if "AWAITING_APPROVAL" in n["subject"]]
        assert rds_calls(execution) == []
        assert cluster_groups(engine) == before
        assert engine.world.report()["databases"][CLUSTER]["snapshots"] == 0
        assert engine.blocked_ips() == []


def test_by_default_the_playbook_waits_for_approval_and_changes_nothing(engine: Engine) -> None:
    # GIVEN the stack's default modes (contain-database: approval)
    event = load_event(AURORA_LOGIN)
    engine.world.seed(event)
    before = cluster_groups(engine)

    # WHEN the finding runs and nobody answers yet
    waiting = start(engine, event)

    # THEN it waits, says what it will do, and the database still serves its application
    assert waiting.status == "RUNNING"
    outcome = waiting.output
    assert isinstance(outcome, dict)
    assert (outcome["status"], outcome["playbook"], outcome["mode"]) == (
        "AWAITING_APPROVAL",
        "contain-database",
        "approval",
    )
    [planned] = [a for a in outcome["actions"] if a["type"] == "contain_database"]
    assert planned["target"] == CLUSTER
    assert "application loses the database" in planned["reason"]
    assert cluster_groups(engine) == before
    assert engine.world.report()["databases"][CLUSTER]["snapshots"] == 0


def test_approved_it_quarantines_the_database(engine: Engine) -> None:
    # GIVEN the default approval mode, and a responder who approves
    event = load_event(AURORA_LOGIN)

    # WHEN the finding runs and the request is approved
    execution = start(engine, event, Approvals.APPROVE)

    # THEN the playbook ran after the approval and the cluster is in quarantine
    assert "Wait For Approval" in execution.states
    assert "Quarantine Database" in execution.states
    assert report_of(execution)["status"] == "CONTAINED"
    assert engine.world.report()["databases"][CLUSTER]["quarantined"] is True


def test_database_tagged_exempt_now_is_suppressed_and_not_touched(enforcing: Engine) -> None:
    # GIVEN the cluster was tagged firebreak:exempt=true after GuardDuty described it
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    rds = enforcing.client("rds")
    arn = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["DBClusterArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "firebreak:exempt", "Value": "true"}])
    before = cluster_groups(enforcing)

    # WHEN the finding runs
    execution = start(enforcing, event)

    # THEN nothing is touched, not even its addresses, and the incident is SUPPRESSED with the live tag as reason
    assert execution.states[4:7] == ["Snapshot Database", "Is Database Containable?", "Containment Skipped"]
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped"
    assert "firebreak:exempt=true" in skipped["reason"]
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert cluster_groups(enforcing) == before
    assert rds_calls(execution) == []
    assert enforcing.blocked_ips() == []


def tag(engine: Engine, arn: str, key: str = "firebreak:approval", value: str = "required") -> None:
    engine.client("rds").add_tags_to_resource(ResourceName=arn, Tags=[{"Key": key, "Value": value}])


def instance_arn(engine: Engine, instance: str = INSTANCE) -> str:
    return str(
        engine.client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["DBInstanceArn"]
    )


def cluster_arn(engine: Engine, cluster: str = CLUSTER) -> str:
    return str(engine.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterArn"])


def test_instance_tagged_for_approval_after_the_finding_is_not_quarantined_without_a_person(enforcing: Engine) -> None:
    # GIVEN the DB instance was tagged firebreak:approval=required after GuardDuty described it (its finding says not)
    event = load_event(BRUTE_FORCED)
    enforcing.world.seed(event)
    tag(enforcing, instance_arn(enforcing))
    before = instance_groups(enforcing)

    # WHEN the finding runs in enforce mode, nobody having approved it
    execution = start(enforcing, event)

    # THEN the snapshot is kept and the address blocked, but the quarantine is skipped naming the tag and what to do
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped"
    assert f"DB instance {INSTANCE} is tagged firebreak:approval=required now" in skipped["reason"]
    assert "quarantine security group by hand" in skipped["reason"]
    assert [a["outcome"] for a in snapshots(execution)] == ["applied"]
    assert "45.141.84.120/32" in enforcing.blocked_ips()
    # AND the database keeps its groups in RDS, and the status says it is not contained
    assert instance_groups(enforcing) == before
    assert enforcing.world.report()["databases"][INSTANCE]["quarantined"] is False
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_aurora_cluster_tagged_for_approval_stops_the_quarantine_the_findings_instance_tags_miss(
    enforcing: Engine,
) -> None:
    # GIVEN only the cluster "orders" is tagged firebreak:approval=required (the finding carries the instance's tags)
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    tag(enforcing, cluster_arn(enforcing))
    before = cluster_groups(enforcing)

    # WHEN the finding runs in enforce mode
    execution = start(enforcing, event)

    # THEN the cluster is not moved, the reason names the cluster's tag, and the incident is PARTIALLY_CONTAINED
    [skipped] = actions(execution)
    assert (skipped["target"], skipped["outcome"]) == (CLUSTER, "skipped")
    assert f"cluster {CLUSTER} is tagged firebreak:approval=required now" in skipped["reason"]
    assert cluster_groups(enforcing) == before
    assert enforcing.world.report()["databases"][CLUSTER]["snapshots"] == 1
    assert "185.196.8.150/32" in enforcing.blocked_ips()
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    # AND the responders are told the same
    assert "firebreak:approval=required" in enforcing.notifications()[-1]["message"]


def test_approval_tag_with_no_address_to_block_leaves_the_incident_notified(enforcing: Engine) -> None:
    # GIVEN a cluster tagged for approval since the finding, and a finding whose only address is not global
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    tag(enforcing, cluster_arn(enforcing))
    text = json.dumps(event).replace("185.196.8.150", "10.0.9.9")

    # WHEN the finding runs in enforce mode
    execution = start(enforcing, json.loads(text))

    # THEN only evidence was kept, which contains nothing: NOTIFIED, the truth, not CONTAINED
    assert [a["outcome"] for a in actions(execution)] == ["skipped"]
    assert [a["outcome"] for a in snapshots(execution)] == ["applied"]
    assert enforcing.blocked_ips() == []
    assert report_of(execution)["status"] == "NOTIFIED"


def test_approved_incident_quarantines_a_database_tagged_for_approval(engine: Engine) -> None:
    # GIVEN the default approval mode, a cluster tagged firebreak:approval=required, and a responder who approves
    event = load_event(AURORA_LOGIN)
    engine.world.seed(event)
    tag(engine, cluster_arn(engine))

    # WHEN the finding runs and the request is approved
    execution = start(engine, event, Approvals.APPROVE)

    # THEN the person's approval is the one the tag asks for: the cluster is quarantined
    assert "Wait For Approval" in execution.states
    assert report_of(execution)["status"] == "CONTAINED"
    assert engine.world.report()["databases"][CLUSTER]["quarantined"] is True


def test_dry_run_with_the_approval_tag_plans_the_quarantine_and_says_a_person_is_needed() -> None:
    # GIVEN contain-database in dry-run mode and the cluster tagged for approval
    with Engine(TEMPLATE, {"ContainDatabaseMode": "dry-run"}) as engine:
        event = load_event(AURORA_LOGIN)
        engine.world.seed(event)
        tag(engine, cluster_arn(engine))
        before = cluster_groups(engine)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN the quarantine is planned, not skipped, and the plan says an enforce run would wait for a person
        [planned] = actions(execution)
        assert planned["outcome"] == "planned"
        assert "ModifyDBCluster(" in planned["reason"]
        assert planned["reason"].endswith("an enforce run skips it unless a person approved")
        assert report_of(execution)["status"] == "DRY_RUN"
        assert cluster_groups(engine) == before


def test_deleted_database_is_skipped_and_only_notified(enforcing: Engine) -> None:
    # GIVEN the instance was deleted before the finding was handled
    event = load_event(BRUTE_FORCED)
    enforcing.world.seed(event)
    enforcing.client("rds").delete_db_instance(DBInstanceIdentifier=INSTANCE, SkipFinalSnapshot=True)

    # WHEN the finding runs
    execution = start(enforcing, event)

    # THEN the playbook stops at the gate, says why, and the incident is NOTIFIED
    assert execution.states[4:7] == ["Snapshot Database", "Is Database Containable?", "Containment Skipped"]
    [skipped] = actions(execution)
    assert "does not exist" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"


def test_failed_logins_only_block_the_address_and_leave_the_database_serving() -> None:
    # GIVEN failed logins from a malicious address (Medium), in a stack that answers Medium findings
    with Engine(TEMPLATE, {**ENFORCE, "SeverityThreshold": "4"}) as engine:
        event = load_event(FAILED_LOGIN)
        engine.world.seed(event)
        before = instance_groups(engine)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN block-ip blocks the address and the database keeps its groups and has no snapshot
        outcome = report_of(execution)
        assert outcome["playbook"] == "block-ip"
        assert "45.141.84.120/32" in engine.blocked_ips()
        assert instance_groups(engine) == before
        assert engine.world.report()["databases"][INSTANCE]["snapshots"] == 0


# --- release ----------------------------------------------------------------------------------------------------


def test_release_puts_the_database_back_in_its_groups_and_keeps_the_snapshot(enforcing: Engine) -> None:
    # GIVEN a contained cluster
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    original = cluster_groups(enforcing)
    contained = report_of(start(enforcing, event))

    # WHEN the incident is released
    released = report_of(enforcing.release(contained["incident_id"]))

    # THEN the cluster holds its own group again, Firebreak's tag is gone, the snapshot is kept as evidence
    assert released["status"] == "RELEASED"
    assert cluster_groups(enforcing) == original
    rds = enforcing.client("rds")
    tags = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0].get("TagList", [])
    assert not [t for t in tags if t["Key"].startswith("firebreak:original-groups")]
    world = enforcing.world.report()["databases"][CLUSTER]
    assert (world["quarantined"], world["snapshots"]) == (False, 1)
    assert "185.196.8.150/32" not in enforcing.blocked_ips()


def test_release_after_a_person_changed_the_groups_overwrites_nothing(enforcing: Engine) -> None:
    # GIVEN a contained instance whose groups a person changed since
    event = load_event(BRUTE_FORCED)
    enforcing.world.seed(event)
    contained = report_of(start(enforcing, event))
    ec2 = enforcing.client("ec2")
    vpc = ec2.describe_security_groups(GroupIds=instance_groups(enforcing))["SecurityGroups"][0]["VpcId"]
    chosen = ec2.create_security_group(GroupName="forensics", Description="chosen by a person", VpcId=vpc)["GroupId"]
    enforcing.client("rds").modify_db_instance(DBInstanceIdentifier=INSTANCE, VpcSecurityGroupIds=[chosen])

    # WHEN the incident is released
    released = report_of(enforcing.release(contained["incident_id"]))

    # THEN the database step is skipped as a conflict and the person's group stays
    [entry] = [a for a in released["actions"] if a["type"] == "contain_database"]
    assert entry["outcome"] == "skipped"
    assert entry["reason"].startswith("conflict:")
    assert instance_groups(enforcing) == [chosen]
    assert released["status"] != "RELEASED"


# --- organization -----------------------------------------------------------------------------------------------


def test_a_member_accounts_database_is_contained_there_and_released(enforcing: Engine) -> None:
    # GIVEN the successful brute force about an instance of a member account in another Region
    text = json.dumps(load_event(BRUTE_FORCED)).replace("123456789012", MEMBER).replace("us-east-1", MEMBER_REGION)
    event = json.loads(text)

    # WHEN it runs
    execution = start(enforcing, event)

    # THEN the member's instance is quarantined there, through the function's member role, and released there
    assert report_of(execution)["status"] == "CONTAINED"
    world = enforcing.world.report()["databases"][INSTANCE]
    assert (world["account"], world["region"], world["quarantined"], world["snapshots"]) == (
        MEMBER,
        MEMBER_REGION,
        True,
        1,
    )
    assert report_of(enforcing.release(report_of(execution)["incident_id"]))["status"] == "RELEASED"
    assert enforcing.world.report()["databases"][INSTANCE]["quarantined"] is False
