"""The Protect Bucket handler with the sample events for `sam local invoke`, on moto."""

from __future__ import annotations

import json

import boto3
import pytest

from firebreak_local.runtime import LambdaContext
from firebreak_local.world import World
from functions.protect_bucket import app
from tests.support import load_event


@pytest.fixture
def world(aws: None) -> World:
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


def test_sample_event_protects_the_bucket_and_names_what_the_playbook_does_next(
    world: World, lambda_context: LambdaContext
) -> None:
    # GIVEN the public bucket and its caller, as the world seeds them for the finding
    world.seed(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted"))

    # WHEN the handler runs on the sample input
    result = app.lambda_handler(load_event("protect_bucket/anonymous_access_granted"), lambda_context)

    # THEN the bucket is protected, and the result carries what the Choices read: revoke, addresses, suppression
    assert result["status"] == "PROTECTED"
    assert (result["revoke"], result["block_addresses"], result["suppressed_reason"]) == (True, ["185.100.87.41"], None)
    assert [a["outcome"] for a in result["actions"]] == ["applied", "applied"]
    json.dumps(result)  # what Step Functions receives must be JSON


def test_dry_run_sample_event_plans_the_object_read_deny_and_writes_no_policy(
    world: World, lambda_context: LambdaContext
) -> None:
    world.seed(load_event("eventbridge/guardduty_s3_malicious_file"))
    result = app.lambda_handler(load_event("protect_bucket/malicious_file_dry_run"), lambda_context)
    assert result["status"] == "PLANNED"
    assert [a["outcome"] for a in result["actions"]] == ["already_applied", "planned"]
    with pytest.raises(boto3.client("s3").exceptions.ClientError):
        boto3.client("s3").get_bucket_policy(Bucket="acme-customer-uploads")
