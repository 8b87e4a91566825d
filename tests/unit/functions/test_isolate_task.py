"""The Isolate Task and Stop Task handlers with the sample events for `sam local invoke`, on moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from firebreak_local.runtime import LambdaContext, run_ecs_tasks_as_aws
from firebreak_local.world import World
from functions.isolate_task import app as isolate_task
from functions.stop_task import app as stop_task
from tests.support import load_event


@pytest.fixture
def world(aws: None) -> World:
    run_ecs_tasks_as_aws()
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


def with_seeded_task(world: World, name: str) -> dict[str, Any]:
    """The handler event with the task of the ECS runtime finding seeded and named by its emulator ARN."""
    event = load_event(f"contain_task/{name}")
    delivered = world.seed(load_event("eventbridge/guardduty_runtime_ecs_c2_fargate"))
    event["input"]["incident"]["task_arn"] = delivered["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["arn"]
    return event


def test_sample_event_isolates_the_task_and_names_the_c2_server(world: World, lambda_context: LambdaContext) -> None:
    # GIVEN the sample event and its task
    event = with_seeded_task(world, "c2_fargate")

    # WHEN the handler runs (StopTaskAfterIsolation unset: off)
    result = isolate_task.lambda_handler(event, lambda_context)

    # THEN the result carries what the Choice reads: isolated, no stop, the address to block
    assert (result["status"], result["stop_task"], result["suppressed_reason"]) == ("ISOLATED", False, None)
    assert result["block_addresses"] == ["193.233.20.15"]
    assert [a["type"] for a in result["actions"]][0] == "record"
    assert world.report()["tasks"][load_event("contain_task/c2_fargate")["input"]["incident"]["task_arn"]][
        "quarantined"
    ]


def test_dry_run_sample_plans_the_isolation_and_the_stop(
    world: World, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the dry-run sample, with StopTaskAfterIsolation on
    monkeypatch.setenv("STOP_TASK_AFTER_ISOLATION", "true")
    event = with_seeded_task(world, "c2_fargate_dry_run")

    # WHEN both handlers run
    isolation = isolate_task.lambda_handler(event, lambda_context)
    stop = stop_task.lambda_handler(event, lambda_context)

    # THEN both only plan, and Stop Task is to run
    assert (isolation["status"], isolation["stop_task"]) == ("PLANNED", True)
    assert [a["outcome"] for a in stop["actions"]] == ["planned"]
