"""Resuming the waiting execution with a responder's answer, against a stubbed Step Functions client."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from firebreak.core.models import Decision
from firebreak.incident.answers import resume
from firebreak.triage.approvals import Answer

TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAbc-the-step-functions-task-token"
ALICE = "arn:aws:iam::123456789012:user/alice"


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_resume_reports_an_execution_that_no_longer_waits(code: str) -> None:
    # GIVEN Step Functions says the task is gone (timed out, ended, stale token)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(sfn) as stubbed:
        stubbed.add_client_error("send_task_success", service_error_code=code)
        # WHEN an approval resumes it
        # THEN resume says nothing waits, rather than failing
        assert resume(sfn, TASK_TOKEN, Answer("t", Decision.APPROVED, ALICE)) is False


def test_denial_sends_approval_denied_with_the_caller_as_cause() -> None:
    # GIVEN a responder denies
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(sfn) as stubbed:
        stubbed.add_response(
            "send_task_failure", {}, {"taskToken": TASK_TOKEN, "error": "ApprovalDenied", "cause": ALICE}
        )
        # WHEN the answer resumes the task
        # THEN it fails the task with the error the ASL Catch matches, naming who denied
        assert resume(sfn, TASK_TOKEN, Answer("t", Decision.DENIED, ALICE)) is True
