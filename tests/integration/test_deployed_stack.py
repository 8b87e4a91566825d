"""Against a deployed stack (opt-in): `AWS_SAM_STACK_NAME=firebreak make test-integration`."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from tests.support import load_event

pytestmark = pytest.mark.integration

STACK = os.environ.get("AWS_SAM_STACK_NAME")


@pytest.mark.skipif(not STACK, reason="needs a deployed stack: set AWS_SAM_STACK_NAME")
def test_sample_finding_runs_dry_and_is_recorded() -> None:
    import boto3

    outputs = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    arn = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RespondToFindingStateMachineArn")
    sfn = boto3.client("stepfunctions")
    detail = load_event("eventbridge/guardduty_sample_rdp_brute_force")["detail"]
    execution = sfn.start_execution(stateMachineArn=arn, name=str(uuid.uuid4()), input=json.dumps(detail))
    deadline = time.monotonic() + 120
    while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish in 120 s"
        time.sleep(2)
    assert status["status"] == "SUCCEEDED"
    assert json.loads(status["output"])["status"] == "DRY_RUN"
