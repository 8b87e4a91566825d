"""The Isolate Instance handler with the sample events for `sam local invoke`, on moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from firebreak_local.runtime import LambdaContext
from firebreak_local.world import World
from functions.isolate_instance import app
from tests.support import load_event


@pytest.fixture
def world(aws: None) -> World:
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


def with_seeded_instance(world: World, event: dict[str, Any], finding: str) -> dict[str, Any]:
    """The handler event with the instance of events/eventbridge/<finding> seeded and named by its emulator id."""
    delivered = world.seed(load_event(f"eventbridge/{finding}"))
    event["input"]["incident"]["instance_id"] = delivered["detail"]["resource"]["instanceDetails"]["instanceId"]
    return event


def test_sample_event_isolates_the_instance_and_blocks_nothing_for_crypto_mining(
    world: World, lambda_context: LambdaContext
) -> None:
    # GIVEN the sample event for crypto mining (a DNS finding, no remote address) and its instance
    event = with_seeded_instance(world, load_event("contain_instance/crypto_mining"), "guardduty_crypto_mining")

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN the instance is isolated, the result carries the status the Choice reads, and no address is to block
    assert result["status"] == "ISOLATED"
    assert result["block_addresses"] == []
    assert result["suppressed_reason"] is None
    assert {action["outcome"] for action in result["actions"]} == {"applied"}
    assert world.report()["instances"]["i-0a1b2c3d4e5f60002"]["quarantined"] is True


def test_dry_run_sample_plans_and_names_the_command_and_control_server_to_block(
    world: World, lambda_context: LambdaContext
) -> None:
    # GIVEN the dry-run sample event for a C&C finding and its instance
    event = with_seeded_instance(world, load_event("contain_instance/c2_outbound_dry_run"), "guardduty_c2_outbound")

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN isolation is only planned, and the server's address goes on to the block step
    assert result["status"] == "PLANNED"
    assert {action["outcome"] for action in result["actions"]} == {"planned"}
    assert result["block_addresses"] == ["193.233.20.15"]
    assert world.report()["instances"]["i-0a1b2c3d4e5f60003"]["quarantined"] is False


def test_instance_that_does_not_exist_stops_the_playbook_and_blocks_nothing(
    aws: None, lambda_context: LambdaContext
) -> None:
    # GIVEN the C&C sample event in an account without its instance
    event = load_event("contain_instance/c2_outbound_dry_run")

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN it says NOT_FOUND with EC2's reason, and names no address: nothing of a missing instance is acted on
    assert result["status"] == "NOT_FOUND"
    assert [action["outcome"] for action in result["actions"]] == ["skipped"]
    assert "InvalidInstanceID.NotFound" in result["actions"][0]["reason"]
    assert result["block_addresses"] == []


def test_finding_without_an_instance_is_not_found(aws: None, lambda_context: LambdaContext) -> None:
    # GIVEN an incident that names no instance
    event = load_event("contain_instance/crypto_mining")
    event["input"]["incident"]["instance_id"] = None

    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)

    # THEN it stops with the reason
    assert result["status"] == "NOT_FOUND"
    assert result["actions"][0]["reason"] == "the finding names no instance"
