"""The engine's moto patches that change when moto checks what: a definition is checked at its first start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from firebreak_local import runtime

ROLE = "arn:aws:iam::123456789012:role/local"


@pytest.fixture
def sfn(aws: None) -> Iterator[Any]:
    """Step Functions with moto's interpreter, patched as the engine patches it."""
    runtime.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def test_a_definition_moto_cannot_parse_is_refused_at_every_start_not_left_running(sfn: Any) -> None:
    # GIVEN a state machine whose definition is JSON but not ASL (created: the check waits for a start)
    broken = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Nope"}}})
    arn = sfn.create_state_machine(name="broken", definition=broken, roleArn=ROLE)["stateMachineArn"]

    # WHEN / THEN every start is refused with the parser's error, as CreateStateMachine refused it before
    for _ in range(2):
        with pytest.raises(ClientError, match="ASLParserException"):
            sfn.start_execution(stateMachineArn=arn, input="{}")
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_a_valid_definition_starts_and_runs(sfn: Any) -> None:
    # GIVEN a state machine with one Pass state
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name="passes", definition=definition, roleArn=ROLE)["stateMachineArn"]

    # WHEN it is started
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]

    # THEN it is accepted
    assert sfn.describe_execution(executionArn=execution)["stateMachineArn"] == arn
