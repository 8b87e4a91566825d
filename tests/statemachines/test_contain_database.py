"""The real contain-database playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from firebreak_local.engine import Engine, Execution
from tests.support import TEMPLATE, incident_record, load_event

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


def run(engine: Engine, event: dict[str, Any]) -> Execution:
    rule = engine.matching_rule(event)
    assert rule is not None, "the event should trigger a rule"
    return engine.start(rule, event)


def report(execution: Execution) -> dict[str, Any]:
    value = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    assert isinstance(value, dict)
    return value


def actions(execution: Execution, action_type: str = "contain_database") -> list[dict[str, Any]]:
    return [action for action in report(execution)["actions"] if action["type"] == action_type]


def cluster_groups(engine: Engine, cluster: str = CLUSTER) -> list[str]:
    found = engine.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    return sorted(group["VpcSecurityGroupId"] for group in found["VpcSecurityGroups"])


def group_names(engine: Engine, ids: list[str]) -> list[str]:
    groups = engine.client("ec2").describe_security_groups(GroupIds=ids)["SecurityGroups"]
    return sorted(group["GroupName"] for group in groups)


# --- the whole playbook -----------------------------------------------------------------------------------------


def test_happy_path_snapshots_the_cluster_quarantines_it_and_blocks_the_login_address(enforcing: Engine) -> None:
    # GIVEN a known malicious address logged in to an Aurora instance of cluster "orders"
    event = load_event(AURORA_LOGIN)
    enforcing.world.seed(event)
    [original] = cluster_groups(enforcing)

    # WHEN the finding runs through the stack
    execution = run(enforcing, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == CONTAIN_STATES
    outcome = report(execution)
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
