"""The revoke-credentials playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from firebreak_local.engine import Engine, Execution
from tests.support import TEMPLATE, load_event, report_of, start

USER_FINDING = "guardduty_iam_user_key_compromised"
ROLE_FINDING = "guardduty_access_key_malicious_ip"
ROOT_FINDING = "guardduty_root_credential_usage"
FINDING_KEY = "AKIAZ4FQH7XKN2LD3VB6"
PLAYBOOK_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    "Run Revoke Credentials Playbook",
    "Revoke Credentials",
    "Enrich Addresses",
    "Block Addresses",
    "Playbook Complete",
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
    "Response Complete",
]


def run(engine: Engine, name: str, event: dict[str, Any] | None = None) -> Execution:
    return start(engine, event or load_event(f"eventbridge/{name}"))


def revocations(execution: Execution) -> list[dict[str, Any]]:
    return [action for action in report_of(execution)["actions"] if action["type"] == "revoke_credentials"]


def with_other_key(engine: Engine) -> str:
    """ci-deployer created ahead of the finding, with a key the finding does not name; the engine adds the finding's."""
    iam = engine.client("iam")
    iam.create_user(UserName="ci-deployer")
    other: str = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    return other


def key_statuses(engine: Engine) -> dict[str, str]:
    keys = engine.client("iam").list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
    return {engine.world.finding_id(key["AccessKeyId"]): key["Status"] for key in keys}


def playbook_start(engine: Engine) -> datetime:
    """When the (only) revoke-credentials execution started."""
    arn = next(
        arn for arn, logical_id in engine.state_machines.items() if logical_id == "RevokeCredentialsStateMachine"
    )
    (execution,) = engine.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    started: datetime = execution["startDate"]
    return started


def token_issue_times(document: Any) -> list[datetime]:
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    return [
        datetime.fromisoformat(s["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
        for s in statements
        if "Condition" in s
    ]


def test_user_key_is_deactivated_the_other_key_stays_active_and_the_user_is_denied(engine: Engine) -> None:
    # GIVEN ci-deployer has a second key besides the one the finding names
    other_key = with_other_key(engine)

    # WHEN the anomalous-behaviour finding on the first key runs through the stack
    execution = run(engine, USER_FINDING)

    # THEN the playbook ran every step, only the finding's key is inactive, and the incident is contained
    assert execution.status == "SUCCEEDED"
    assert execution.states == PLAYBOOK_STATES
    assert key_statuses(engine) == {FINDING_KEY: "Inactive", other_key: "Active"}
    assert [(a["target"], a["outcome"]) for a in revocations(execution)] == [
        (FINDING_KEY, "applied"),
        (FINDING_KEY, "applied"),
    ]
    assert report_of(execution)["status"] == "CONTAINED"
    assert engine.world.report()["access_keys"] == {FINDING_KEY: "Inactive"}
    # AND the deny policy denies everything, and every session issued before the playbook started
    policy = engine.client("iam").get_user_policy(UserName="ci-deployer", PolicyName="FirebreakDenyAll")
    (issued_before,) = token_issue_times(policy["PolicyDocument"])
    assert abs((issued_before - playbook_start(engine)).total_seconds()) < 1
    # AND the finding's remote address is blocked too
    assert engine.blocked_ips() == ["146.70.119.82/32"]


def test_role_finding_attaches_the_session_revocation_policy_to_the_role_it_names(engine: Engine) -> None:
    # GIVEN another role in the account, which must stay untouched
    engine.client("iam").create_role(RoleName="batch-role", AssumeRolePolicyDocument="{}")

    # WHEN instance credentials of web-server-role are seen used outside AWS
    execution = run(engine, ROLE_FINDING)

    # THEN web-server-role alone has AWSRevokeOlderSessions at the playbook's start, and the responders learn the
    # blast radius: every instance of the role gets new credentials from IMDS
    iam = engine.client("iam")
    assert engine.world.report()["revoked_roles"] == ["web-server-role"]
    assert iam.list_role_policies(RoleName="batch-role")["PolicyNames"] == []
    document = iam.get_role_policy(RoleName="web-server-role", PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    (issued_before,) = token_issue_times(document)
    assert abs((issued_before - playbook_start(engine)).total_seconds()) < 1
    (action,) = revocations(execution)
    assert (action["target"], action["outcome"]) == ("web-server-role", "applied")
    assert "new credentials from IMDS" in action["reason"]
    assert report_of(execution)["status"] == "CONTAINED"
    assert engine.blocked_ips() == ["103.151.103.15/32"]


def test_root_finding_changes_nothing_and_tells_a_person_what_to_do(engine: Engine) -> None:
    # GIVEN root credentials used from an unknown address
    # WHEN the finding runs
    execution = run(engine, ROOT_FINDING)

    # THEN nothing was revoked or blocked, and the notification carries the instruction for root
    outcome = report_of(execution)
    assert (outcome["playbook"], outcome["status"]) == ("notify-only", "NOTIFIED")
    assert "Run Revoke Credentials Playbook" not in execution.states
    assert "root" in outcome["escalation"] and "MFA" in outcome["escalation"]
    assert engine.client("iam").list_users()["Users"] == []
    assert engine.blocked_ips() == []
    (message,) = engine.notifications()
    assert message["subject"] == "Firebreak NOTIFIED: Policy:IAMUser/RootCredentialUsage"
    assert json.loads(message["message"])["escalation"] == outcome["escalation"]


def test_aws_service_finding_changes_nothing_and_tells_a_person_what_to_do(engine: Engine) -> None:
    # GIVEN an access-key finding whose principal is an AWS service
    event = copy.deepcopy(load_event(f"eventbridge/{USER_FINDING}"))
    event["detail"]["resource"]["accessKeyDetails"].update(userType="AWSService", userName="AWSService")

    # WHEN it runs
    execution = run(engine, USER_FINDING, event)

    # THEN nothing was revoked or blocked, and the escalation says what to look for
    outcome = report_of(execution)
    assert (outcome["playbook"], outcome["status"]) == ("notify-only", "NOTIFIED")
    assert "invokedBy" in outcome["escalation"]
    assert engine.client("iam").list_users()["Users"] == []
    assert engine.blocked_ips() == []
    assert len(engine.notifications()) == 1


def test_break_glass_principal_is_refused_and_left_as_it_was() -> None:
    # GIVEN a stack that lists ci-deployer as a break-glass principal
    with Engine(TEMPLATE, {"ProtectedPrincipals": "root-breakglass, ci-deployer"}) as engine:
        other_key = with_other_key(engine)

        # WHEN a finding names its key
        execution = run(engine, USER_FINDING)

        # THEN both keys stay active, no policy is attached, and the refusal is reported with its reason
        assert key_statuses(engine) == {FINDING_KEY: "Active", other_key: "Active"}
        assert engine.client("iam").list_user_policies(UserName="ci-deployer")["PolicyNames"] == []
        (action,) = revocations(execution)
        assert (action["target"], action["outcome"]) == (FINDING_KEY, "skipped")
        assert "break-glass" in action["reason"]
        # AND blocking the address alone does not make the incident contained
        assert engine.blocked_ips() == ["146.70.119.82/32"]
        assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_firebreaks_own_role_is_refused(engine: Engine) -> None:
    # GIVEN a finding about one of the stack's own roles (named after the stack, as CloudFormation names them)
    event = copy.deepcopy(load_event(f"eventbridge/{ROLE_FINDING}"))
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = "firebreak-RevokeCredentialsFunctionRole-1A2B3C"

    # WHEN it runs
    execution = run(engine, ROLE_FINDING, event)

    # THEN the role gets no policy and the refusal names the stack
    assert engine.world.report()["revoked_roles"] == []
    (action,) = revocations(execution)
    assert action["outcome"] == "skipped"
    assert "Firebreak stack firebreak" in action["reason"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_second_delivery_changes_nothing(engine: Engine) -> None:
    # GIVEN the user finding was handled
    with_other_key(engine)
    first = run(engine, USER_FINDING)
    iam = engine.client("iam")
    policy = iam.get_user_policy(UserName="ci-deployer", PolicyName="FirebreakDenyAll")["PolicyDocument"]
    keys = key_statuses(engine)

    # WHEN GuardDuty delivers it again
    second = run(engine, USER_FINDING)

    # THEN it is a duplicate: no playbook ran, keys and policy are as they were, nobody is told twice
    assert second.states == ["Parse Finding", "Open Incident", "Record Duplicate"]
    assert report_of(second)["incident_id"] == report_of(first)["incident_id"]
    assert key_statuses(engine) == keys
    assert iam.get_user_policy(UserName="ci-deployer", PolicyName="FirebreakDenyAll")["PolicyDocument"] == policy
    assert len(engine.notifications()) == 1


def test_dry_run_plans_the_revocation_and_changes_nothing() -> None:
    # GIVEN the revoke-credentials playbook runs in dry-run while the stack enforces
    with Engine(TEMPLATE, {"RevokeCredentialsMode": "dry-run"}) as engine:
        # WHEN the user finding runs
        execution = run(engine, USER_FINDING)

        # THEN the calls are planned, the key is still active, no policy and no block
        assert report_of(execution)["status"] == "DRY_RUN"
        assert [a["outcome"] for a in revocations(execution)] == ["planned", "planned"]
        assert "iam:UpdateAccessKey(UserName=ci-deployer" in revocations(execution)[0]["reason"]
        assert engine.world.report()["access_keys"] == {FINDING_KEY: "Active"}
        assert engine.client("iam").list_user_policies(UserName="ci-deployer")["PolicyNames"] == []
        assert engine.blocked_ips() == []


def test_revocation_crash_is_reported_failed_and_the_address_is_still_blocked(engine: Engine) -> None:
    # GIVEN the revoke function crashes (forced: a rare error)
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("IAM endpoint unreachable")

    engine.dispatcher.override("firebreak-RevokeCredentialsFunction", broken)

    # WHEN the user finding runs
    execution = run(engine, USER_FINDING)

    # THEN the revocation is failed, the block still happened, and the incident is only partially contained
    (action,) = revocations(execution)
    assert (action["target"], action["outcome"]) == (FINDING_KEY, "failed")
    assert "RuntimeError" in action["reason"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert engine.blocked_ips() == ["146.70.119.82/32"]
    assert engine.world.report()["access_keys"] == {FINDING_KEY: "Active"}


def test_blocking_failure_keeps_the_revocation_and_reports_the_block_failed(engine: Engine) -> None:
    # GIVEN WAF refuses every update (forced: a rare error)
    def denied(event: dict[str, Any], context: Any) -> Any:
        raise PermissionError("wafv2:UpdateIPSet denied")

    engine.dispatcher.override("firebreak-BlockIpFunction", denied)

    # WHEN the role finding runs
    execution = run(engine, ROLE_FINDING)

    # THEN the role is still revoked, the block is reported failed, and the incident is only partially contained
    assert engine.world.report()["revoked_roles"] == ["web-server-role"]
    blocks = [a for a in report_of(execution)["actions"] if a["type"] == "block_ip"]
    assert [(a["target"], a["outcome"]) for a in blocks] == [("103.151.103.15", "failed")]
    assert "PermissionError" in blocks[0]["reason"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert engine.blocked_ips() == []


def test_failed_playbook_is_recorded_as_a_failed_revocation(engine: Engine) -> None:
    # GIVEN the playbook machine itself fails (forced: its definition replaced by a Fail state)
    arn = next(
        arn for arn, logical_id in engine.state_machines.items() if logical_id == "RevokeCredentialsStateMachine"
    )
    broken = {"QueryLanguage": "JSONata", "StartAt": "Break", "States": {"Break": {"Type": "Fail", "Error": "Forced"}}}
    engine.client("stepfunctions").update_state_machine(stateMachineArn=arn, definition=json.dumps(broken))

    # WHEN the user finding runs
    execution = run(engine, USER_FINDING)

    # THEN the entry machine's catch reports the revocation failed for the finding's key, and the incident FAILED
    (action,) = revocations(execution)
    assert (action["target"], action["outcome"]) == (FINDING_KEY, "failed")
    assert action["reason"].startswith("playbook failed: ")
    assert report_of(execution)["status"] == "FAILED"
    assert execution.status == "FAILED"
    assert engine.world.report()["access_keys"] == {FINDING_KEY: "Active"}
