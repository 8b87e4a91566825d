"""Notify Responders handler on moto's SNS with an SQS subscriber: final status, one publish, a notify action."""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from firebreak import aws as firebreak_aws
from firebreak.findings import normalise
from firebreak.incidents import incident_id_for
from firebreak.models import Action, ActionType, IncidentStatus, Mode, Outcome, Playbook, Triage, actions_from
from firebreak.notifications import summary
from firebreak_local.runtime import LambdaContext
from functions.block_ip.app import lambda_handler as block_ip
from functions.enrich_ip.app import lambda_handler as enrich_ip
from functions.notify_responders.app import lambda_handler
from tests.support import load_event

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:firebreak-respond-to-finding:4b9f3d2e"
TOPIC = "firebreak-responders"
APPLIED = Action(ActionType.BLOCK_IP, "45.155.205.233/32", Outcome.APPLIED, "added to WAF IPSet firebreak-blocked-ipv4")
ENRICHED = Action(ActionType.ENRICH_IP, "45.155.205.233", Outcome.APPLIED, "suspicious (60): finding ...")


@dataclass
class Responders:
    sqs: Any
    queue_url: str
    topic_arn: str

    def messages(self) -> list[dict[str, Any]]:
        """Every SNS envelope the queue received."""
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]


@pytest.fixture
def responders(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Responders]:
    firebreak_aws._client.cache_clear()
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName="responders")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("RESPONDER_TOPIC_ARN", topic_arn)
    yield Responders(sqs, queue_url, topic_arn)
    firebreak_aws._client.cache_clear()


def triage_of(finding: str, playbook: Playbook = Playbook.BLOCK_IP, mode: Mode = Mode.ENFORCE, **extra: Any) -> Triage:
    incident = normalise(load_event(f"eventbridge/{finding}"))
    return Triage(incident_id_for(incident), incident, playbook, mode, **extra)


def invoke(context: LambdaContext, triage: Triage, actions: list[Action] | None) -> dict[str, Any]:
    """What the state machine sends: the triage merged with the playbook's actions; the result through JSON."""
    request: dict[str, Any] = triage.to_dict()
    if actions is not None:
        request["actions"] = [a.to_dict() for a in actions]
    result: dict[str, Any] = json.loads(
        json.dumps(lambda_handler({"input": request, "executionId": EXECUTION_ID}, context))
    )
    return result


def test_contained_incident_publishes_one_message_and_appends_a_notify_action(
    responders: Responders, lambda_context: LambdaContext
) -> None:
    # GIVEN a block-ip run that enriched and blocked the attacker
    triage = triage_of("guardduty_ssh_brute_force")

    # WHEN responders are notified
    result = invoke(lambda_context, triage, [ENRICHED, APPLIED])

    # THEN the status is CONTAINED and a notify action is appended after the playbook's own
    assert result["status"] == "CONTAINED"
    assert [Action.from_dict(a) for a in result["actions"]] == [
        ENRICHED,
        APPLIED,
        Action(ActionType.NOTIFY, TOPIC, Outcome.APPLIED, "told responders CONTAINED"),
    ]

    # AND exactly one message was published, with the subject and the attributes subscribers filter on
    (message,) = responders.messages()
    assert message["TopicArn"] == responders.topic_arn
    assert message["Subject"] == "Firebreak CONTAINED: UnauthorizedAccess:EC2/SSHBruteForce"
    assert {k: (v["Type"], v["Value"]) for k, v in message["MessageAttributes"].items()} == {
        "status": ("String", "CONTAINED"),
        "playbook": ("String", "block-ip"),
        "severity": ("Number", "2"),
    }


def test_queue_subscriber_receives_the_machine_document(responders: Responders, lambda_context: LambdaContext) -> None:
    # GIVEN a contained incident
    triage = triage_of("guardduty_ssh_brute_force")

    # WHEN responders are notified
    invoke(lambda_context, triage, [ENRICHED, APPLIED])

    # THEN the SQS subscriber gets the JSON document (not the email text) with status, incident and actions
    (message,) = responders.messages()
    document = json.loads(message["Message"])
    assert document["status"] == "CONTAINED"
    assert document["incident_id"] == triage.incident_id
    assert document["execution_arn"] == EXECUTION_ID
    assert [Action.from_dict(a) for a in document["actions"]] == [ENRICHED, APPLIED]
    assert document["finding"]["finding_id"] == triage.incident.finding_id


def test_failed_block_makes_the_incident_failed(responders: Responders, lambda_context: LambdaContext) -> None:
    # GIVEN a block-ip run whose only block failed (as the ASL Catch reports a failed playbook)
    failed = Action(ActionType.BLOCK_IP, "45.155.205.233", Outcome.FAILED, "playbook failed: States.Timeout")
    triage = triage_of("guardduty_ssh_brute_force")

    # WHEN responders are notified
    result = invoke(lambda_context, triage, [ENRICHED, failed])

    # THEN the incident is FAILED, in the result, the subject and the attributes, never CONTAINED
    assert result["status"] == "FAILED"
    assert result["actions"][-1]["reason"] == "told responders FAILED"
    (message,) = responders.messages()
    assert message["Subject"] == "Firebreak FAILED: UnauthorizedAccess:EC2/SSHBruteForce"
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"


def test_one_failed_and_one_applied_block_is_partial(responders: Responders, lambda_context: LambdaContext) -> None:
    # GIVEN one address blocked and one whose IPSet was full
    failed = Action(ActionType.BLOCK_IP, "2a0e:97c0:3e3:2a2::1/128", Outcome.FAILED, "would exceed 10000 addresses")

    # WHEN responders are notified
    result = invoke(lambda_context, triage_of("guardduty_port_probe_high"), [APPLIED, failed])

    # THEN the incident is partially contained
    assert result["status"] == "PARTIALLY_CONTAINED"
    assert responders.messages()[0]["MessageAttributes"]["status"]["Value"] == "PARTIALLY_CONTAINED"


def test_dry_run_is_reported_as_dry_run(responders: Responders, lambda_context: LambdaContext) -> None:
    # GIVEN a dry-run block-ip that only planned
    planned = Action(ActionType.BLOCK_IP, "45.155.205.233/32", Outcome.PLANNED, "would add")

    # WHEN responders are notified
    result = invoke(lambda_context, triage_of("guardduty_ssh_brute_force", mode=Mode.DRY_RUN), [planned])

    # THEN the incident is a dry run
    assert result["status"] == "DRY_RUN"


def test_exempt_notify_only_incident_without_actions_is_suppressed(
    responders: Responders, lambda_context: LambdaContext
) -> None:
    # GIVEN an exempt instance routed to notify-only, whose state machine passes no actions at all
    triage = triage_of(
        "guardduty_ssh_brute_force",
        playbook=Playbook.NOTIFY_ONLY,
        suppressed_reason="resource tagged firebreak:exempt=true",
    )

    # WHEN responders are notified
    result = invoke(lambda_context, triage, None)

    # THEN it is SUPPRESSED, the only action is the notification, and the attributes say notify-only
    assert result["status"] == "SUPPRESSED"
    assert [a["type"] for a in result["actions"]] == ["notify"]
    (message,) = responders.messages()
    assert message["MessageAttributes"]["playbook"]["Value"] == "notify-only"


class PublishSpy:
    """The real (moto) SNS client, keeping what each Publish sent."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.published: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def publish(self, **kwargs: Any) -> Any:
        self.published.append(kwargs)
        return self._client.publish(**kwargs)


def test_people_get_the_summary_and_machines_the_document(
    responders: Responders, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a contained incident, and a view of exactly what is published
    spy = PublishSpy(boto3.client("sns", region_name="us-east-1"))
    monkeypatch.setattr(firebreak_aws, "client", lambda service, region=None, role_arn=None: spy)
    triage = triage_of("guardduty_ssh_brute_force")

    # WHEN responders are notified
    invoke(lambda_context, triage, [APPLIED])

    # THEN one per-protocol JSON message is published: the readable summary, with the undo hint, for email and
    # default, and the document for queues, functions and webhooks
    (publish,) = spy.published
    assert publish["MessageStructure"] == "json"
    bodies = json.loads(publish["Message"])
    assert bodies["email"] == bodies["default"] == summary(IncidentStatus.CONTAINED, triage, (APPLIED,), EXECUTION_ID)
    assert "Undo:      remove 45.155.205.233/32" in bodies["email"]
    assert json.loads(bodies["sqs"])["status"] == json.loads(bodies["https"])["status"] == "CONTAINED"
    assert len(responders.messages()) == 1


def port_probe_from(count: int) -> dict[str, Any]:
    event = load_event("eventbridge/guardduty_port_probe_high")
    probes = event["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"]
    first = int(ipaddress.IPv4Address("45.0.0.0"))
    entries = []
    for i in range(count):
        probe = copy.deepcopy(probes[0])
        probe["remoteIpDetails"]["ipAddressV4"] = str(ipaddress.IPv4Address(first + i))
        entries.append(probe)
    event["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"] = entries
    return event


def test_port_probe_from_a_hundred_addresses_still_notifies(
    responders: Responders, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a port probe from 100 public addresses, enriched and blocked by the real handlers (50 blocked, 50 capped)
    waf = boto3.client("wafv2", region_name="us-east-1")
    for version in ("IPV4", "IPV6"):
        created = waf.create_ip_set(
            Name=f"firebreak-blocked-{version.lower()}", Scope="REGIONAL", IPAddressVersion=version, Addresses=[]
        )
        monkeypatch.setenv(f"BLOCKED_{version}_SET_ARN", created["Summary"]["ARN"])
    monkeypatch.delenv("MAX_ADDRESSES_PER_INCIDENT", raising=False)
    monkeypatch.delenv("ALLOW_LIST_CIDRS", raising=False)
    incident = normalise(port_probe_from(100))
    triage = Triage(incident_id_for(incident), incident, Playbook.BLOCK_IP, Mode.ENFORCE)
    enrichment = enrich_ip({"input": triage.to_dict(), "executionId": EXECUTION_ID}, lambda_context)
    blocking = block_ip(
        {"input": {"incident_id": triage.incident_id, "mode": "enforce", "verdicts": enrichment["verdicts"]}},
        lambda_context,
    )
    actions = actions_from(enrichment["actions"] + blocking["actions"])
    # 50 enriched with evidence and 50 blocked; the other 50 are one enrich line and one block line
    assert [a.outcome for a in actions].count(Outcome.APPLIED) == 100
    assert [a.outcome for a in actions].count(Outcome.SKIPPED) == 2
    request = {**triage.to_dict(), "actions": [a.to_dict() for a in actions]}
    assert len(json.dumps(request)) < 200_000  # inside the 256 KiB Step Functions payload limit

    # WHEN responders are notified
    result = invoke(lambda_context, triage, list(actions))

    # THEN they are told it was contained, with the first actions listed and a count of the rest
    assert result["status"] == "CONTAINED"
    (envelope,) = responders.messages()
    delivered = json.loads(envelope["Message"])
    assert delivered["status"] == "CONTAINED"
    assert delivered["actions_not_listed"] + len(delivered["actions"]) == len(actions)
