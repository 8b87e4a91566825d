"""The Contain Function handler with the sample event for `sam local invoke`, on moto (named apart from the
playbook's tests/statemachines/test_contain_function.py: test modules need distinct basenames)."""

from __future__ import annotations

import json

import boto3
import pytest

from firebreak_local.runtime import LambdaContext
from firebreak_local.world import World
from functions.contain_function import app
from tests.support import load_event


@pytest.fixture
def world(aws: None, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("STACK_NAME", "firebreak")
    seeded = World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))
    seeded.seed(load_event("eventbridge/guardduty_lambda_crypto_mining"))
    return seeded


def test_sample_event_stops_the_function_and_names_its_role_and_the_pool(
    world: World, lambda_context: LambdaContext
) -> None:
    # GIVEN the sample event for a crypto-mining function, and the function
    event = load_event("contain_function/crypto_mining")

    # WHEN the handler runs
    result = json.loads(json.dumps(app.lambda_handler(event, lambda_context)))

    # THEN the result carries the status the Choice reads, the role to revoke and the address to block
    assert result["status"] == "CONTAINED"
    assert result["role_name"] == "thumbnailer-role"
    assert result["block_addresses"] == ["45.9.148.108"]
    assert [a["type"] for a in result["actions"]] == ["contain_function", "contain_function"]
    assert world.report()["functions"]["thumbnailer"]["reserved_concurrency"] == 0


def test_an_approved_run_is_not_stopped_by_an_approval_tag_added_since(
    world: World, lambda_context: LambdaContext
) -> None:
    # GIVEN the function tagged for approval after the finding, and a run a person approved
    lam = boto3.client("lambda", region_name="us-east-1")
    arn = lam.get_function(FunctionName="thumbnailer")["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"firebreak:approval": "required"})
    event = load_event("contain_function/crypto_mining")

    # WHEN the handler runs without, then with, the approver
    refused = app.lambda_handler(event, lambda_context)
    event["input"]["approved_by"] = "alice@example.com"
    approved = app.lambda_handler(event, lambda_context)

    # THEN only the approved run contains it
    assert (refused["status"], approved["status"]) == ("REFUSED", "CONTAINED")
