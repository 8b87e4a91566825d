"""The Preserve Evidence handler with the sample event for `sam local invoke`, on moto."""

from __future__ import annotations

import json

import boto3
import pytest

from firebreak_local.runtime import LambdaContext
from firebreak_local.world import World
from functions.preserve_evidence import app
from tests.support import load_event


@pytest.fixture
def world(aws: None) -> World:
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


@pytest.fixture
def instance_id(world: World) -> str:
    delivered = world.seed(load_event("eventbridge/guardduty_crypto_mining"))
    found: str = delivered["detail"]["resource"]["instanceDetails"]["instanceId"]
    return found


def test_sample_event_keeps_the_instance_as_evidence(
    world: World, instance_id: str, lambda_context: LambdaContext
) -> None:
    # GIVEN the sample event for crypto mining, naming a seeded instance
    event = load_event("contain_instance/crypto_mining")
    event["input"]["incident"]["instance_id"] = instance_id

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN every step is reported, and the instance is protected, snapshotted and tagged with the incident
    reasons = [action["reason"] for action in result["actions"]]
    assert reasons[0] == "termination protection on"
    assert {action["type"] for action in result["actions"]} == {"isolate_instance"}
    report = world.report()["instances"]["i-0a1b2c3d4e5f60002"]
    assert report["termination_protection"] is True
    assert report["snapshots"] == 1
    assert report["tags"]["firebreak:incident-id"] == event["input"]["incident_id"]


def test_stack_setting_revokes_the_instance_role_sessions(
    world: World, instance_id: str, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that revokes role sessions, and an instance whose profile holds a role
    monkeypatch.setenv("REVOKE_INSTANCE_ROLE_SESSIONS", "true")
    iam = boto3.client("iam", region_name="us-east-1")
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    iam.create_role(RoleName="batch-worker", AssumeRolePolicyDocument=json.dumps(trust))
    profile = iam.create_instance_profile(InstanceProfileName="batch-worker")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="batch-worker", RoleName="batch-worker")
    boto3.client("ec2", region_name="us-east-1").associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile}, InstanceId=instance_id
    )
    event = load_event("contain_instance/crypto_mining")
    event["input"]["incident"]["instance_id"] = instance_id

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN the role's older sessions are revoked, reported as a credentials action on the role
    [revoked] = [action for action in result["actions"] if action["type"] == "revoke_credentials"]
    assert (revoked["target"], revoked["outcome"]) == ("batch-worker", "applied")
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName="batch-worker")["PolicyNames"]


def test_without_the_stack_setting_no_role_is_touched(instance_id: str, lambda_context: LambdaContext) -> None:
    # GIVEN the default stack (REVOKE_INSTANCE_ROLE_SESSIONS unset)
    event = load_event("contain_instance/crypto_mining")
    event["input"]["incident"]["instance_id"] = instance_id

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN no credentials action is taken
    assert [a for a in result["actions"] if a["type"] == "revoke_credentials"] == []
