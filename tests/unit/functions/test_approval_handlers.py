"""Request Approval and Answer Approval on moto: the pending entry, the request message, and what each answer does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from firebreak.core import aws as firebreak_aws
from firebreak.core.models import Approval, IncidentStatus, Mode, Outcome, Playbook, Triage
from firebreak.incident.notifications import sns_message
from firebreak.triage.approvals import DIRECT_CALLER, new_request, planned_actions, sign
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from firebreak_local.runtime import LambdaContext
from functions.answer_approval.app import lambda_handler as answer_approval
from functions.request_approval.app import lambda_handler as request_approval
from tests.support import load_event

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:firebreak-respond-to-finding:9c1d"
TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAbc-the-step-functions-task-token"
ALICE = "arn:aws:iam::123456789012:user/alice"


@dataclass
class Stack:
    dynamodb: Any
    sqs: Any
    queue_url: str
    key: bytes

    def pending(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName="approvals")["Items"])

    def incident(self, incident_id: str) -> dict[str, str]:
        item = self.dynamodb.get_item(TableName="incidents", Key={"incident_id": {"S": incident_id}})["Item"]
        return {key: next(iter(value.values())) for key, value in item.items()}

    def messages(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    firebreak_aws._client.cache_clear()
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for table, key in (("approvals", "approval_id"), ("incidents", "incident_id")):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="signing", SecretString="s3cr3t"
    )
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic_arn = sns.create_topic(Name="responders")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {
        "APPROVAL_TABLE_NAME": "approvals",
        "INCIDENT_TABLE_NAME": "incidents",
        "APPROVAL_SECRET_ARN": secret["ARN"],
        "RESPONDER_TOPIC_ARN": topic_arn,
    }.items():
        monkeypatch.setenv(name, value)
    yield Stack(dynamodb, sqs, queue_url, b"s3cr3t")
    firebreak_aws._client.cache_clear()


def triage() -> Triage:
    incident = normalise(load_event("eventbridge/guardduty_ssh_brute_force_approval_required"))
    approval = Approval("resource tagged firebreak:approval=required", 600)
    return Triage(incident_id_for(incident), incident, Playbook.BLOCK_IP, Mode.APPROVAL, approval=approval)


def ask(stack: Stack, context: LambdaContext) -> dict[str, Any]:
    event = {"input": triage().to_dict(), "taskToken": TASK_TOKEN, "executionId": EXECUTION_ID}
    result: dict[str, Any] = request_approval(event, context)
    return result


def token_in(message: dict[str, Any]) -> str:
    return str(json.loads(message["Message"])["approval"]["request"]["token"])


def answer(token: str, decision: str, context: LambdaContext) -> tuple[int, dict[str, Any]]:
    event = {
        "requestContext": {"authorizer": {"iam": {"userArn": ALICE}}},
        "body": json.dumps({"token": token, "decision": decision}),
    }
    response = answer_approval(event, context)
    return response["statusCode"], json.loads(response["body"])


# --- Request Approval ---------------------------------------------------------------------------------------------


def test_request_keeps_the_task_token_marks_the_incident_and_asks_the_responders(
    stack: Stack, lambda_context: LambdaContext
) -> None:
    # GIVEN an incident waiting for approval
    # WHEN Request Approval runs with the task token
    result = ask(stack, lambda_context)

    # THEN one pending entry maps the approval id to the task token, expiring with the window
    (item,) = stack.pending()
    assert item["approval_id"]["S"] == result["approval_id"]
    assert item["task_token"]["S"] == TASK_TOKEN
    assert item["execution_arn"]["S"] == EXECUTION_ID
    assert 590 <= int(item["expires_at"]["N"]) - time.time() <= 600
    # AND the incident record says AWAITING_APPROVAL
    assert stack.incident(triage().incident_id)["status"] == "AWAITING_APPROVAL"
    # AND the responders get what will happen and a signed token, never the task token
    (message,) = stack.messages()
    assert message["Subject"] == "Firebreak AWAITING_APPROVAL: UnauthorizedAccess:EC2/SSHBruteForce"
    document = json.loads(message["Message"])
    assert document["status"] == "AWAITING_APPROVAL"
    assert [(a["type"], a["target"], a["outcome"]) for a in document["actions"]] == [
        ("block_ip", "103.151.103.15", "awaiting_approval")
    ]
    assert document["approval"]["reason"] == "resource tagged firebreak:approval=required"
    assert document["approval"]["request"]["approval_id"] == result["approval_id"]
    assert TASK_TOKEN not in json.dumps(message)


def test_request_message_tells_a_person_how_to_answer() -> None:
    # GIVEN a request with its signed token
    request = new_request(b"key", TASK_TOKEN, 600, time.time())

    # WHEN the message responders read by email is built
    plan = planned_actions(Playbook.BLOCK_IP, triage().incident, Outcome.AWAITING_APPROVAL)
    message = sns_message(IncidentStatus.AWAITING_APPROVAL, triage(), plan, EXECUTION_ID, request=request)
    email = json.loads(message)["email"]

    # THEN it says why, what will happen, the token, the deadline, the timeout policy and the answer path
    assert "Approval:  resource tagged firebreak:approval=required" in email
    assert "block_ip 103.151.103.15: awaiting_approval (will add to the WAF block list" in email
    assert f"Token:     {request.token}" in email
    assert f"Decide by: {request.expires} (no answer by then: deny)" in email
    assert "AnswerApprovalUrl" in email and "SigV4" in email
    assert TASK_TOKEN not in message


# --- Answer Approval ----------------------------------------------------------------------------------------------


def test_genuine_approval_is_applied_once_and_recorded(stack: Stack, lambda_context: LambdaContext) -> None:
    # GIVEN a pending request and its token from the notification
    ask(stack, lambda_context)
    token = token_in(stack.messages()[0])

    # WHEN a responder approves, and the same token is sent again
    first = answer(token, "approve", lambda_context)
    replay = answer(token, "deny", lambda_context)

    # THEN the first resumes the execution and is recorded with the caller, the replay changes nothing
    assert first[0] == 200 and first[1]["status"] == "APPROVED"
    assert replay == (
        409,
        {"status": "ALREADY_ANSWERED", "message": "this approval was already answered; nothing changed"},
    )
    assert stack.pending() == []
    record = stack.incident(triage().incident_id)
    assert (record["approval_decision"], record["approval_decided_by"]) == ("approved", ALICE)


def test_forged_token_changes_nothing(stack: Stack, lambda_context: LambdaContext) -> None:
    # GIVEN a pending request, and a token for its id signed with another key
    result = ask(stack, lambda_context)
    forged = sign(b"guessed-key", result["approval_id"], int(time.time()) + 600)

    # WHEN it is used
    status, body = answer(forged, "approve", lambda_context)

    # THEN it is refused and the request still waits
    assert (status, body["status"]) == (403, "REFUSED")
    assert len(stack.pending()) == 1
    assert "approval_decision" not in stack.incident(triage().incident_id)


def test_expired_token_changes_nothing(stack: Stack, lambda_context: LambdaContext) -> None:
    # GIVEN a genuine token whose window closed
    ask(stack, lambda_context)
    expired = new_request(stack.key, TASK_TOKEN, -1, time.time()).token

    # WHEN it is used
    status, body = answer(expired, "approve", lambda_context)

    # THEN it is refused as expired and the entry is left for its TTL
    assert (status, body["status"]) == (410, "EXPIRED")
    assert len(stack.pending()) == 1


def test_unreadable_answer_is_a_bad_request(stack: Stack, lambda_context: LambdaContext) -> None:
    response = answer_approval({"requestContext": {}, "body": "not json"}, lambda_context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["status"] == "BAD_REQUEST"


def test_direct_invocation_answers_without_the_http_wrapper(stack: Stack, lambda_context: LambdaContext) -> None:
    # GIVEN a pending request
    ask(stack, lambda_context)
    token = token_in(stack.messages()[0])
    # WHEN a responder invokes the function directly to deny
    body = answer_approval({"token": token, "decision": "deny"}, lambda_context)
    # THEN the plain answer says so and the record names the direct caller
    assert body["status"] == "DENIED"
    assert stack.incident(triage().incident_id)["approval_decided_by"] == DIRECT_CALLER
