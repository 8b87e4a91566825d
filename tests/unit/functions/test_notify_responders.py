"""Notify Responders' write-back to Security Hub, with botocore's Stubber (moto has no BatchUpdateFindings)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from firebreak.core import aws
from firebreak.core.models import Mode, Playbook, Triage
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from firebreak_local.runtime import LambdaContext
from functions.notify_responders import app
from tests.support import load_event

GUARDDUTY_PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/guardduty"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:firebreak-RespondToFindingStateMachine:run-1"
BLOCKED = {"type": "block_ip", "target": "185.220.101.47/32", "outcome": "applied", "reason": "added"}


@pytest.fixture
def topic(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A responder topic in moto, and fresh cached clients so no Stubber outlives its test."""
    aws_clients_clear()
    arn = boto3.client("sns", region_name="us-east-1").create_topic(Name="responders")["TopicArn"]
    monkeypatch.setenv("RESPONDER_TOPIC_ARN", arn)
    yield arn
    aws_clients_clear()


def aws_clients_clear() -> None:
    aws._client.cache_clear()


@pytest.fixture
def securityhub(topic: str) -> Iterator[Stubber]:
    with Stubber(aws.client("securityhub", region="us-east-1")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def request(name: str, playbook: Playbook = Playbook.BLOCK_IP, mode: Mode = Mode.ENFORCE) -> dict[str, Any]:
    incident = normalise(load_event(f"eventbridge/{name}"))
    triage = Triage(incident_id_for(incident), incident, playbook, mode)
    return {"input": {**triage.to_dict(), "actions": [BLOCKED]}, "executionId": EXECUTION}


def notify_actions(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [action for action in result["actions"] if action["type"] == "notify"]


def test_contained_security_hub_finding_is_resolved_with_a_note(
    securityhub: Stubber, lambda_context: LambdaContext
) -> None:
    # GIVEN a Security Hub finding whose attacker was blocked, and Security Hub accepting the update
    event = request("securityhub_custom_action")
    finding = event["input"]["incident"]
    identifier = {"Id": finding["finding_id"], "ProductArn": finding["product_arn"]}
    securityhub.add_response(
        "batch_update_findings",
        {"ProcessedFindings": [identifier], "UnprocessedFindings": []},
        {"FindingIdentifiers": [identifier], "Workflow": {"Status": "RESOLVED"}, "Note": ANY},
    )

    # WHEN the responders are notified
    result = app.lambda_handler(event, lambda_context)

    # THEN the finding is marked RESOLVED and the write-back is reported beside the SNS notification
    assert result["status"] == "CONTAINED"
    write_back, told = notify_actions(result)
    assert write_back == {**write_back, "target": finding["finding_id"], "outcome": "applied"}
    assert "workflow RESOLVED" in write_back["reason"]
    assert told["reason"] == "told responders CONTAINED"


def test_note_names_the_incident_and_is_within_the_limit(securityhub: Stubber, lambda_context: LambdaContext) -> None:
    # GIVEN Security Hub accepting the update
    event = request("securityhub_custom_action")
    sent: list[dict[str, Any]] = []
    securityhub.add_response("batch_update_findings", {"ProcessedFindings": [], "UnprocessedFindings": []})
    securityhub.client.meta.events.register(
        "provide-client-params.securityhub.BatchUpdateFindings", lambda params, **_: sent.append(params)
    )

    # WHEN the responders are notified
    app.lambda_handler(event, lambda_context)

    # THEN the note says which incident, what status, by whom, in at most 512 characters
    (params,) = sent
    assert params["Note"]["UpdatedBy"] == "Firebreak"
    assert params["Note"]["Text"].startswith(f"Firebreak incident {event['input']['incident_id']}: CONTAINED")
    assert len(params["Note"]["Text"]) <= 512


def test_unprocessed_finding_is_reported_as_a_failed_write_back(
    securityhub: Stubber, lambda_context: LambdaContext
) -> None:
    # GIVEN Security Hub answers 200 but lists the finding as unprocessed
    event = request("securityhub_custom_action")
    identifier = {"Id": event["input"]["incident"]["finding_id"], "ProductArn": GUARDDUTY_PRODUCT}
    unprocessed = {"FindingIdentifier": identifier, "ErrorCode": "FindingNotFound", "ErrorMessage": "no such finding"}
    securityhub.add_response("batch_update_findings", {"ProcessedFindings": [], "UnprocessedFindings": [unprocessed]})

    # WHEN the responders are notified
    result = app.lambda_handler(event, lambda_context)

    # THEN the write-back is failed with Security Hub's reason, and the incident's status is not changed by it
    write_back, _ = notify_actions(result)
    assert write_back["outcome"] == "failed"
    assert "FindingNotFound: no such finding" in write_back["reason"]
    assert result["status"] == "CONTAINED"


def test_refused_update_is_reported_and_the_responders_still_told(
    securityhub: Stubber, lambda_context: LambdaContext, topic: str
) -> None:
    # GIVEN Security Hub refuses the call
    securityhub.add_client_error("batch_update_findings", "AccessDeniedException", "not allowed", 403)

    # WHEN the responders are notified
    result = app.lambda_handler(request("securityhub_custom_action"), lambda_context)

    # THEN the failure is in the actions and in the message the responders got
    write_back, told = notify_actions(result)
    assert write_back["outcome"] == "failed"
    assert "AccessDeniedException" in write_back["reason"]
    assert told["outcome"] == "applied"


def test_dry_run_plans_the_write_back_and_calls_nothing(securityhub: Stubber, lambda_context: LambdaContext) -> None:
    # GIVEN a dry run (no response is queued: any call to Security Hub would fail the test)
    event = request("securityhub_custom_action", mode=Mode.DRY_RUN)

    # WHEN the responders are notified
    result = app.lambda_handler(event, lambda_context)

    # THEN the write-back is only planned
    write_back, _ = notify_actions(result)
    assert write_back["outcome"] == "planned"
    assert "BatchUpdateFindings" in write_back["reason"]


def test_guardduty_finding_is_written_back_through_its_security_hub_copy_when_enabled(
    securityhub: Stubber, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN GuardDuty write-back switched on, and a native GuardDuty finding routed to notify-only
    monkeypatch.setenv("WRITE_BACK_GUARDDUTY", "true")
    event = request("guardduty_ssh_brute_force", playbook=Playbook.NOTIFY_ONLY)
    arn = load_event("eventbridge/guardduty_ssh_brute_force")["detail"]["arn"]
    identifier = {"Id": arn, "ProductArn": GUARDDUTY_PRODUCT}
    securityhub.add_response(
        "batch_update_findings",
        {"ProcessedFindings": [identifier], "UnprocessedFindings": []},
        {"FindingIdentifiers": [identifier], "Workflow": {"Status": "NOTIFIED"}, "Note": ANY},
    )

    # WHEN the responders are notified
    result = app.lambda_handler(event, lambda_context)

    # THEN the copy is addressed by the GuardDuty finding ARN and the GuardDuty product, and marked NOTIFIED
    write_back, _ = notify_actions(result)
    assert write_back["target"] == arn
    assert write_back["outcome"] == "applied"


def test_guardduty_finding_is_left_alone_by_default(securityhub: Stubber, lambda_context: LambdaContext) -> None:
    # GIVEN the default configuration (no queued response: a call would fail the test)
    result = app.lambda_handler(request("guardduty_ssh_brute_force"), lambda_context)

    # THEN only the responders were told
    assert [action["target"] for action in notify_actions(result)] == ["responders"]


def test_published_message_lists_the_write_back(
    securityhub: Stubber, lambda_context: LambdaContext, topic: str
) -> None:
    # GIVEN Security Hub accepting the update, and a queue on the topic
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name="us-east-1").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    securityhub.add_response("batch_update_findings", {"ProcessedFindings": [], "UnprocessedFindings": []})

    # WHEN the responders are notified
    app.lambda_handler(request("securityhub_custom_action"), lambda_context)

    # THEN the JSON document the queue receives includes the Security Hub update among the actions
    body = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    document = json.loads(body["Message"])
    assert [a["outcome"] for a in document["actions"] if a["type"] == "notify"] == ["applied"]
    assert body["MessageAttributes"]["status"]["Value"] == "CONTAINED"
