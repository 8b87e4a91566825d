"""Template and definition contract of the incident record, the failure alerts, the metrics and the release machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import Stack, Template, load_template

ROOT = Path(__file__).parents[2]
RELEASE_MACHINE = ROOT / "statemachines" / "release_incident.asl.json"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def stack(template: Template) -> Stack:
    return Stack(template, ref=lambda logical_id: logical_id, get_att=lambda a, b: f"{a}.{b}")


def of_type(template: Template, type_name: str) -> dict[str, dict[str, Any]]:
    return {logical_id: r for logical_id, r in template.resources.items() if r["Type"] == type_name}


def test_every_state_machine_ending_failed_timed_out_or_aborted_alerts_the_responders(
    template: Template, stack: Stack
) -> None:
    # GIVEN every state machine and the rules on Step Functions execution status changes
    machines = set(of_type(template, "AWS::Serverless::StateMachine"))
    rules = [
        stack.properties(logical_id)
        for logical_id in of_type(template, "AWS::Events::Rule")
        if stack.properties(logical_id)["EventPattern"].get("source") == ["aws.states"]
    ]
    assert rules, "no EventBridge rule on aws.states execution status changes"
    # WHEN the alerting rules are read
    alerting = [
        rule
        for rule in rules
        if rule["EventPattern"].get("detail-type") == ["Step Functions Execution Status Change"]
        and {"FAILED", "TIMED_OUT", "ABORTED"} <= set(rule["EventPattern"]["detail"]["status"])
        and any(target["Arn"] == "ResponderTopic" for target in rule.get("Targets", []))
    ]
    covered = {arn for rule in alerting for arn in rule["EventPattern"]["detail"].get("stateMachineArn", [])}
    # THEN each machine is covered by a rule that sends FAILED, TIMED_OUT and ABORTED to the responder topic
    assert alerting, "no rule sends FAILED, TIMED_OUT and ABORTED executions to the responder topic"
    assert machines <= covered, f"state machines without a failure alert: {sorted(machines - covered)}"


def test_the_topic_accepts_the_failure_rule_and_the_alarm(template: Template) -> None:
    # GIVEN the responder topic's policy
    statements = template.resources["ResponderTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    sources = [statement["Condition"]["ArnEquals"]["aws:SourceArn"] for statement in statements]
    # THEN EventBridge's failure rule and the time-to-contain alarm may publish, and nothing else
    assert {"Fn::GetAtt": ["ExecutionFailedRule", "Arn"]} in sources
    assert {"Fn::GetAtt": ["TimeToContainAlarm", "Arn"]} in sources


def test_incident_table_keeps_evidence_and_streams_its_changes(template: Template) -> None:
    # GIVEN the incident table
    table = template.resources["IncidentTable"]
    properties = table["Properties"]
    # THEN it has point-in-time recovery, no TTL, survives stack deletion, and streams old and new images
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "TimeToLiveSpecification" not in properties
    assert table.get("DeletionPolicy") == "Retain"
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_stream_consumer_reports_failed_records_and_keeps_what_it_cannot_handle(stack: Stack) -> None:
    # GIVEN the function on the incident stream
    (event,) = stack.properties("PublishIncidentFunction")["Events"].values()
    properties = event["Properties"]
    # THEN it reports per record, retries a bounded number of times, and sends what still fails to a queue
    assert event["Type"] == "DynamoDB"
    assert properties["Stream"] == "IncidentTable.StreamArn"
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < properties["MaximumRetryAttempts"] <= 10
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == "IncidentStreamDeadLetterQueue.Arn"


def test_time_to_contain_has_an_alarm_to_the_responders_and_a_dashboard(template: Template, stack: Stack) -> None:
    # GIVEN the alarm and the dashboard
    alarm = stack.properties("TimeToContainAlarm")
    dashboards = of_type(template, "AWS::CloudWatch::Dashboard")
    # THEN the alarm reads Firebreak's TimeToContain for each containing playbook and notifies the topic
    metrics = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert {m["Namespace"] for m in metrics} == {"Firebreak"}
    assert {m["MetricName"] for m in metrics} == {"TimeToContain"}
    playbooks = {d["Value"] for m in metrics for d in m["Dimensions"] if d["Name"] == "playbook"}
    assert playbooks == {"block-ip", "contain-instance", "revoke-credentials"} | {"contain-database"}
    assert alarm["AlarmActions"] == ["ResponderTopic"]
    (dashboard,) = dashboards
    body = json.loads(stack.properties(dashboard)["DashboardBody"])
    assert any("TimeToContain" in json.dumps(widget) for widget in body["widgets"])


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_security_hub_write_back_may_only_notify_or_resolve(template: Template, enabled: str) -> None:
    # GIVEN the notify function's Security Hub statement, with Security Hub on or off
    stack = Stack(
        template,
        ref=lambda logical_id: logical_id,
        get_att=lambda a, b: f"{a}.{b}",
        overrides={"SecurityHubEnabled": enabled},
    )
    statements = [
        statement
        for policy in stack.properties("NotifyRespondersFunction")["Policies"]
        for statement in policy.get("Statement", [])
        if statement["Action"] == "securityhub:BatchUpdateFindings"
    ]
    # THEN there is none without Security Hub
    if enabled == "false":
        assert statements == []
        return
    # AND otherwise it is held to the account's hub and to the two workflow statuses Firebreak writes
    (statement,) = statements
    assert statement["Resource"].endswith(":hub/default")
    condition = statement["Condition"]["StringEqualsIfExists"]["securityhub:ASFFSyntaxPath/Workflow.Status"]
    assert sorted(condition) == ["NOTIFIED", "RESOLVED"]


def test_release_machine_records_and_notifies_every_failure_then_fails() -> None:
    # GIVEN the release machine
    states = json.loads(RELEASE_MACHINE.read_text())["States"]
    failure_path = {"Record Release Failure", "Notify Responders Of Failure"}
    # WHEN its tasks outside the failure path are checked
    uncaught = [
        name
        for name, state in states.items()
        if state["Type"] == "Task"
        and name not in failure_path
        and not any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", []))
    ]
    # THEN each catches everything, and the failure path ends in a Fail state
    assert not uncaught, uncaught
    assert states[states["Notify Responders Of Failure"]["Next"]]["Type"] == "Fail"
    assert states["Record Release"]["Arguments"]["ConditionExpression"] == "#status = :previous"
