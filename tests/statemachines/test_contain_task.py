"""The real contain-task playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak_local.engine import Approvals, Engine, Execution
from tests.support import (
    TEMPLATE,
    Case,
    incident_record,
    load_event,
    out_of_memory,
    records,
    report_of,
    run_with_fault,
    stack_with,
    start,
    status_of,
)

EVENT = "eventbridge/guardduty_runtime_ecs_c2_fargate"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/checkout-prod/0f3a9c1e5b7d4e2fa8c6b4d2e0f1a321"
DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-api:7"
CLUSTER = "checkout-prod"
C2_SERVER = "193.233.20.15/32"
CONTAIN_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    "Run Contain Task Playbook",
    "Isolate Task",
    "Is Task Containable?",
    "Any Addresses To Block?",
    "Enrich Addresses",
    "Block Addresses",
    "Containment Complete",
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
    "Response Complete",
]
ISOLATE_FUNCTION = "firebreak-IsolateTaskFunction"
STOP_FUNCTION = "firebreak-StopTaskFunction"
MUTATING = ("Create", "Modify", "Authorize", "Revoke", "Stop", "Tag", "Put", "Delete")


def actions(execution: Execution, action_type: str = "contain_task") -> list[dict[str, Any]]:
    return [action for action in report_of(execution)["actions"] if action["type"] == action_type]


def seeded_task(engine: Engine, event: dict[str, Any]) -> str:
    """The emulator's ARN of the finding's task, seeding it if it is not there yet."""
    task: str = engine.world.seed(event)["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["arn"]
    return task


def task_groups(engine: Engine, task_arn: str) -> list[str]:
    """The group ids of the task's interface, as the emulator knows them."""
    ecs = engine.client("ecs")
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    [eni] = [d["value"] for a in described["attachments"] for d in a["details"] if d["name"] == "networkInterfaceId"]
    interface = engine.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return sorted(group["GroupId"] for group in interface["Groups"])


def interface_of(engine: Engine, task_arn: str) -> str:
    described = engine.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    [eni] = [d["value"] for a in described["attachments"] for d in a["details"] if d["name"] == "networkInterfaceId"]
    return eni


def mutating_calls(execution: Execution) -> list[str]:
    # The incident stream's consumer publishes status events to EventBridge: not a change to the account.
    return [
        call
        for call in execution.api_calls
        if call.split(".")[-1].startswith(MUTATING) and not call.startswith(("eventbridge.", "dynamodb.", "sns."))
    ]


def tag_task(engine: Engine, task_arn: str, key: str, value: str) -> None:
    engine.client("ecs").tag_resource(resourceArn=task_arn, tags=[{"key": key, "value": value}])


# --- the whole playbook -----------------------------------------------------------------------------------------


def test_happy_path_records_the_task_isolates_its_interface_and_blocks_the_c2_server(engine: Engine) -> None:
    # GIVEN a Fargate task of cluster checkout-prod talking to a command-and-control server
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    [own_group] = task_groups(engine, task_arn)

    # WHEN the finding runs through the stack
    execution = start(engine, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states == CONTAIN_STATES
    outcome = report_of(execution)
    assert (outcome["status"], outcome["playbook"]) == ("CONTAINED", "contain-task")

    # AND the task's interface holds only the VPC's quarantine group, reached through the allow-all group
    world = engine.world.report()["tasks"][TASK]
    assert world["quarantined"] is True
    assert world["stopped"] is False
    [swap] = [a for a in actions(execution) if "network_interface" in a["before"]]
    assert swap["outcome"] == "applied"
    assert swap["before"]["security_groups"] == [own_group]
    assert "through allow-all group" in swap["reason"]
    assert world["security_groups"] == swap["after"]["security_groups"]

    # AND the task and its task definition are on the record as evidence, without environment values
    [record] = [a for a in actions(execution, "record") if a["target"] == TASK]
    assert record["before"]["task"]["launch_type"] == "FARGATE"
    assert record["before"]["task_definition"]["task_definition_arn"] == DEFINITION
    assert record["before"]["task_definition"]["network_mode"] == "awsvpc"
    stored = incident_record(engine, outcome["incident_id"])
    assert stored["status"] == "CONTAINED"
    assert any(a["type"] == "record" and a["before"]["task"]["task_arn"] == task_arn for a in stored["actions"])

    # AND the command-and-control server is blocked, and the notification names the task
    assert {a["target"]: a["outcome"] for a in actions(execution, "block_ip")} == {C2_SERVER: "applied"}
    assert engine.blocked_ips() == [C2_SERVER]
    document = json.loads(engine.notifications()[-1]["message"])
    workload = engine.world.restore(document["workload"])
    assert workload == f"ECS task {TASK} in cluster {CLUSTER}, task definition {DEFINITION}"


def test_second_finding_on_an_isolated_task_changes_nothing_and_says_already_applied(engine: Engine) -> None:
    # GIVEN a task already contained for one finding
    first = load_event(EVENT)
    start(engine, first)
    task_arn = seeded_task(engine, first)
    before = task_groups(engine, task_arn)

    # WHEN another finding about the same task arrives
    second = copy.deepcopy(first)
    second["detail"]["id"] = "9c1e7a9b3d5f7a9c1e3b5d7f9a1c3e99"
    second["detail"]["type"] = "Execution:Runtime/ReverseShell"
    execution = start(engine, second)

    # THEN isolation says already applied, nothing in EC2 or ECS is changed
    assert [a["outcome"] for a in actions(execution)] == ["already_applied"]
    assert report_of(execution)["status"] == "CONTAINED"
    assert [call for call in mutating_calls(execution) if call.startswith(("ec2.", "ecs."))] == []
    assert task_groups(engine, task_arn) == before


def test_stop_after_isolation_stops_the_task_once_it_is_cut_off() -> None:
    # GIVEN a stack that stops a task after isolating it
    with stack_with({"StopTaskAfterIsolation": "true"}) as engine:
        event = load_event(EVENT)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN the task is isolated first, then stopped, and the action says what stopping costs
        assert execution.states[4:8] == ["Isolate Task", "Is Task Containable?", "Stop Task", "Any Addresses To Block?"]
        [stopped] = [a for a in actions(execution) if "desired_status" in a["after"]]
        assert stopped["outcome"] == "applied"
        assert stopped["before"]["desired_status"] == "RUNNING"
        assert "its memory is gone" in stopped["reason"]
        assert "cannot start it again" in stopped["reason"]
        world = engine.world.report()["tasks"][TASK]
        assert (world["quarantined"], world["stopped"]) == (True, True)
        assert report_of(execution)["status"] == "CONTAINED"


def test_task_tagged_exempt_now_is_suppressed_and_not_touched(engine: Engine) -> None:
    # GIVEN a task tagged firebreak:exempt=true after GuardDuty described it
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    tag_task(engine, task_arn, "firebreak:exempt", "true")
    before = task_groups(engine, task_arn)

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN nothing is touched and the incident is SUPPRESSED, with the live tag as the reason
    assert execution.states[4:7] == ["Isolate Task", "Is Task Containable?", "Containment Skipped"]
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped"
    assert "firebreak:exempt=true" in skipped["reason"]
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert task_groups(engine, task_arn) == before
    assert [call for call in mutating_calls(execution) if call.startswith(("ec2.", "ecs."))] == []


def test_cluster_tagged_exempt_protects_its_tasks(engine: Engine) -> None:
    # GIVEN the task's cluster tagged firebreak:exempt=true
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    cluster_arn = f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"
    engine.client("ecs").tag_resource(resourceArn=cluster_arn, tags=[{"key": "firebreak:exempt", "value": "TRUE"}])

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the task is left alone, the cluster named as the reason
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert f"cluster {cluster_arn} is tagged firebreak:exempt=true" in actions(execution)[0]["reason"]
    assert engine.world.report()["tasks"][TASK]["quarantined"] is False
    assert task_groups(engine, task_arn)


def test_task_stopped_before_the_finding_is_skipped_and_never_contained(engine: Engine) -> None:
    # GIVEN the task stopped before the finding was handled
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    engine.client("ecs").stop_task(cluster=CLUSTER, task=task_arn, reason="deployment")

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the playbook stops after the gate, says why, and the incident is only NOTIFIED
    assert execution.states[4:7] == ["Isolate Task", "Is Task Containable?", "Containment Skipped"]
    [skipped] = actions(execution)
    assert "STOPPED" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"


def test_dry_run_plans_every_call_and_changes_nothing() -> None:
    # GIVEN a stack in dry-run mode that would also stop the task
    with stack_with({"ResponseMode": "dry-run", "StopTaskAfterIsolation": "true"}) as engine:
        event = load_event(EVENT)
        task_arn = seeded_task(engine, event)
        before = task_groups(engine, task_arn)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN every action is planned with the exact calls, and nothing changed
        assert report_of(execution)["status"] == "DRY_RUN"
        planned = actions(execution)
        assert {a["outcome"] for a in planned} == {"planned"}
        reasons = " ".join(a["reason"] for a in planned)
        for call in ("CreateSecurityGroup", "CreateTags", "ModifyNetworkInterfaceAttribute", "StopTask(cluster="):
            assert call in reasons
        assert mutating_calls(execution) == []
        assert task_groups(engine, task_arn) == before
        assert engine.world.report()["tasks"][TASK]["stopped"] is False


def test_contain_task_mode_approval_waits_before_touching_the_task() -> None:
    # GIVEN a stack whose contain-task playbook runs in approval mode
    with stack_with({"ContainTaskMode": "approval"}) as engine:
        event = load_event(EVENT)
        task_arn = seeded_task(engine, event)
        before = task_groups(engine, task_arn)

        # WHEN the finding runs and nobody answers
        execution = start(engine, event, Approvals.REPORT)

        # THEN the incident waits with the task's containment awaiting approval, and nothing is touched
        waiting = report_of(execution) if execution.output is None else execution.output
        assert (waiting["status"], waiting["playbook"]) == ("AWAITING_APPROVAL", "contain-task")
        assert {a["target"]: a["outcome"] for a in waiting["actions"] if a["type"] == "contain_task"} == {
            TASK: "awaiting_approval"
        }
        assert task_groups(engine, task_arn) == before


def test_approved_finding_contains_the_task(engine: Engine) -> None:
    # GIVEN a task whose finding says firebreak:approval=required
    event = load_event(EVENT)
    event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["tags"].append(
        {"key": "firebreak:approval", "value": "required"}
    )

    # WHEN it runs and a responder approves
    execution = start(engine, event, Approvals.APPROVE)

    # THEN the playbook ran after the approval
    assert "Wait For Approval" in execution.states
    assert report_of(execution)["status"] == "CONTAINED"
    assert engine.world.report()["tasks"][TASK]["quarantined"] is True


# --- failures are told truthfully -------------------------------------------------------------------------------


def test_refused_interface_swap_is_failed_and_the_incident_never_contained(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN EC2 refuses to change the task's interface (as it may for an interface another service manages)
    def refuse(**kwargs: Any) -> Any:
        error = {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized to change this interface"}}
        raise ClientError(error, "ModifyNetworkInterfaceAttribute")  # type: ignore[arg-type]

    monkeypatch.setattr(aws.client("ec2", region="us-east-1"), "modify_network_interface_attribute", refuse)

    # WHEN the finding runs
    execution = start(engine, load_event(EVENT))

    # THEN the swap is failed with EC2's words, the address is still blocked, and the status says PARTIALLY_CONTAINED
    [failed] = [a for a in actions(execution) if a["outcome"] == "failed"]
    assert "UnauthorizedOperation" in failed["reason"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert engine.world.report()["tasks"][TASK]["quarantined"] is False
    assert engine.blocked_ips() == [C2_SERVER]


def test_isolation_step_crashing_is_failed_and_the_addresses_are_not_claimed_blocked(engine: Engine) -> None:
    # GIVEN the isolation function crashes (forced: a rare runtime error)
    engine.dispatcher.override(ISOLATE_FUNCTION, out_of_memory)

    # WHEN the finding runs
    execution = start(engine, load_event(EVENT))

    # THEN the task's containment is failed and the incident FAILED, never CONTAINED
    [failed] = actions(execution)
    assert {key: failed[key] for key in ("target", "outcome", "reason")} == {
        "target": TASK,
        "outcome": "failed",
        "reason": "step Isolate Task failed: RuntimeError",
    }
    assert report_of(execution)["status"] == "FAILED"


def test_stop_step_crashing_leaves_the_task_isolated_and_partially_contained() -> None:
    # GIVEN a stack that stops tasks, whose stop function crashes
    with stack_with({"StopTaskAfterIsolation": "true"}) as engine:
        engine.dispatcher.override(STOP_FUNCTION, out_of_memory)

        # WHEN the finding runs
        execution = start(engine, load_event(EVENT))

        # THEN the stop is failed, the isolation stands, and the incident is PARTIALLY_CONTAINED
        assert "step Stop Task failed: RuntimeError" in [a["reason"] for a in actions(execution)]
        assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
        world = engine.world.report()["tasks"][TASK]
        assert (world["quarantined"], world["stopped"]) == (True, False)


# --- release ------------------------------------------------------------------------------------------------------


def test_release_moves_the_interface_back_to_its_own_groups(engine: Engine) -> None:
    # GIVEN a contained task
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    before = task_groups(engine, task_arn)
    incident_id = report_of(start(engine, event))["incident_id"]

    # WHEN the incident is released
    release = engine.release(incident_id)

    # THEN the interface holds its own groups again, without Firebreak's bookkeeping tags, and the incident is RELEASED
    assert release.status == "SUCCEEDED", release.cause
    assert task_groups(engine, task_arn) == before
    eni = interface_of(engine, task_arn)
    tags = engine.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert [t["Key"] for t in tags.get("TagSet", []) if t["Key"].startswith("firebreak:")] == []
    released = report_of(release)
    assert released["status"] == "RELEASED"
    assert [a["outcome"] for a in released["actions"] if a["type"] == "contain_task"] == ["released"]
    assert engine.world.report()["tasks"][TASK]["quarantined"] is False


def test_release_after_a_person_moved_the_interface_overwrites_nothing(engine: Engine) -> None:
    # GIVEN a contained task whose interface a person then put in a group of their own
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    incident_id = report_of(start(engine, event))["incident_id"]
    ec2 = engine.client("ec2")
    eni = interface_of(engine, task_arn)
    vpc = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["VpcId"]
    forensic = ec2.create_security_group(GroupName="forensics", Description="forensics", VpcId=vpc)["GroupId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[forensic])

    # WHEN the incident is released
    released = report_of(engine.release(incident_id))

    # THEN the interface keeps the person's group, and the release says why it left it
    assert task_groups(engine, task_arn) == [forensic]
    [skipped] = [a for a in released["actions"] if a["type"] == "contain_task"]
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"].startswith("conflict:")
    assert released["status"] != "RELEASED"


def test_release_of_a_stopped_task_says_it_cannot_be_restarted() -> None:
    # GIVEN a task isolated and then stopped
    with stack_with({"StopTaskAfterIsolation": "true"}) as engine:
        event = load_event(EVENT)
        incident_id = report_of(start(engine, event))["incident_id"]

        # WHEN the incident is released
        released = report_of(engine.release(incident_id))

        # THEN release says the stop cannot be undone and what a person does instead; nothing claims RELEASED
        reasons = {a["reason"] for a in released["actions"] if a["type"] == "contain_task"}
        assert any("cannot be restarted" in reason for reason in reasons), reasons
        assert released["status"] != "RELEASED"
        assert engine.world.report()["tasks"][TASK]["stopped"] is True


# --- Kubernetes -------------------------------------------------------------------------------------------------


def test_runtime_finding_on_an_eks_pod_isolates_its_node_and_names_the_pod(engine: Engine) -> None:
    # GIVEN crypto mining in a pod of EKS cluster payments-prod, on node i-0a1b2c3d4e5f60031
    event = load_event("eventbridge/guardduty_runtime_eks_node_crypto")

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN contain-instance isolates the node, and the notification names the cluster, namespace and pod
    outcome = report_of(execution)
    assert (outcome["playbook"], outcome["status"]) == ("contain-instance", "CONTAINED")
    assert engine.world.report()["instances"]["i-0a1b2c3d4e5f60031"]["quarantined"] is True
    document = json.loads(engine.notifications()[-1]["message"])
    assert document["workload"].startswith(
        "EKS cluster payments-prod, namespace ledger, pods ledger-worker-7c9f8d6b5-x2k4q, node i-"
    )


def test_kubernetes_audit_finding_is_notify_only_with_the_kubectl_steps() -> None:
    # GIVEN an unusual privileged container launched in namespace payments of EKS cluster payments-prod
    with stack_with({}) as engine:
        event = load_event("eventbridge/guardduty_eks_anomalous_privileged_container")

        # WHEN the finding runs
        execution = start(engine, event)
        steps = "\n".join(json.loads(engine.notifications()[-1]["message"])["kubectl_steps"])

    # THEN nothing is acted on, and the notification gives the exact commands with the finding's names
    outcome = report_of(execution)
    assert (outcome["playbook"], outcome["status"]) == ("notify-only", "NOTIFIED")
    assert [call for call in mutating_calls(execution) if call.startswith(("ec2.", "ecs."))] == []
    for command in (
        "aws eks update-kubeconfig --region us-east-1 --name payments-prod",
        "kubectl --namespace payments label pod debug-shell firebreak/quarantine=true --overwrite",
        '"policyTypes":["Ingress","Egress"]',
        "kubectl cordon",
        "kubectl auth can-i --list --as=arn:aws:sts::123456789012:assumed-role/ci-deployer/build-8812",
    ):
        assert command in steps, command


# --- member accounts ----------------------------------------------------------------------------------------------

MEMBER, MEMBER_REGION = "111122223333", "eu-west-1"


def in_member_account(event: dict[str, Any]) -> dict[str, Any]:
    """The event as if its finding were about the member's task in eu-west-1 (every account and Region replaced)."""
    text = json.dumps(event).replace("123456789012", MEMBER).replace("us-east-1", MEMBER_REGION)
    return dict(json.loads(text))


def test_a_member_accounts_task_is_contained_there_through_its_member_role_and_released(engine: Engine) -> None:
    # GIVEN the C2 finding about a task of a member account in eu-west-1, delivered to the security account
    event = in_member_account(load_event(EVENT))
    member_task = TASK.replace("123456789012", MEMBER).replace("us-east-1", MEMBER_REGION)

    # WHEN it runs
    execution = start(engine, event)

    # THEN the task is quarantined in the member's eu-west-1, through the member role, and the C2 blocked centrally
    outcome = report_of(execution)
    assert outcome["status"] == "CONTAINED", [a["reason"] for a in outcome["actions"] if a["outcome"] == "failed"]
    world = engine.world.report()["tasks"][member_task]
    assert (world["account"], world["region"], world["quarantined"]) == (MEMBER, MEMBER_REGION, True)
    assert execution.api_calls.get("sts.AssumeRole", 0) >= 1
    assert engine.assume_role_refusals() == []
    assert C2_SERVER in engine.blocked_ips()

    # AND its release moves the interface back there, through the release function's member role
    released = report_of(engine.release(outcome["incident_id"]))
    assert released["status"] == "RELEASED", [a["reason"] for a in released["actions"]]
    assert engine.world.report()["tasks"][member_task]["quarantined"] is False


def test_a_member_account_without_the_member_role_is_told_and_never_called_contained() -> None:
    # GIVEN a member account that has not received the member stack
    saved = dict(os.environ)
    try:
        with Engine(TEMPLATE, without_member_role=[MEMBER]) as engine:
            # WHEN its task's finding runs
            execution = start(engine, in_member_account(load_event(EVENT)))

            # THEN the task's isolation failed naming the role, the C2 is still blocked, the status says so
            outcome = report_of(execution)
            assert outcome["status"] == "PARTIALLY_CONTAINED"
            failed = [a["reason"] for a in actions(execution) if a["outcome"] == "failed"]
            assert any("firebreak-member-isolate-task" in reason and MEMBER in reason for reason in failed)
            assert engine.blocked_ips() == [C2_SERVER]
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- every AWS call failing, transiently and permanently ----------------------------------------------------------

TASK_TRANSIENT = [
    # Isolate Task: reading the task and its definition, creating the group, recording and swapping the groups
    Case("ecs", "DescribeTasks", "ThrottlingException", 3),
    Case("ecs", "DescribeTaskDefinition", "ThrottlingException", 3),
    Case("ec2", "CreateSecurityGroup", "RequestLimitExceeded", 3),
    Case("ec2", "ModifyNetworkInterfaceAttribute", "InternalError", 3),
]


@pytest.mark.usefixtures("short_retry_waits")
@pytest.mark.parametrize("case", TASK_TRANSIENT, ids=str)
def test_transient_error_in_isolate_task_is_retried_and_the_task_still_contained(engine: Engine, case: Case) -> None:
    # GIVEN one AWS call of Isolate Task is throttled or failing server-side past the client's own retries
    # WHEN the finding runs
    execution, hits = run_with_fault(engine, load_event(EVENT), case)

    # THEN the step's Retry ran it again and the task is contained, said once
    assert hits == case.times
    assert [a for a in report_of(execution)["actions"] if a["outcome"] == "failed"] == []
    assert status_of(execution) == "CONTAINED"
    assert engine.world.report()["tasks"][TASK]["quarantined"] is True
    assert [record["status"] for record in records(engine)] == ["CONTAINED"]


# (case, incident status, the task isolated, the C2 blocked, the outcome of the action saying what did not happen)
TASK_PERMANENT = [
    (Case("ecs", "DescribeTasks", "AccessDeniedException", None), "FAILED", False, False, "failed"),
    (Case("ecs", "DescribeTasks", "ClusterNotFoundException", None), "NOTIFIED", False, False, "skipped"),
    # The task is isolated, but its definition is missing from the evidence: never told as CONTAINED.
    (Case("ecs", "DescribeTaskDefinition", "AccessDeniedException", None), "PARTIALLY_CONTAINED", True, True, "failed"),
    (Case("ec2", "CreateSecurityGroup", "UnauthorizedOperation", None), "PARTIALLY_CONTAINED", False, True, "failed"),
    (Case("ec2", "CreateTags", "UnauthorizedOperation", None), "PARTIALLY_CONTAINED", False, True, "failed"),
    (
        Case("ec2", "ModifyNetworkInterfaceAttribute", "InvalidGroup.NotFound", None),
        "PARTIALLY_CONTAINED",
        False,
        True,
        "failed",
    ),
]


@pytest.mark.usefixtures("short_retry_waits")
@pytest.mark.parametrize(("case", "status", "isolated", "blocked", "left"), TASK_PERMANENT, ids=str)
def test_permanent_error_in_isolate_task_ends_in_a_truthful_status(
    engine: Engine, case: Case, status: str, isolated: bool, blocked: bool, left: str
) -> None:
    # GIVEN one AWS call of Isolate Task is refused, or names something that is not there
    # WHEN the finding runs
    execution, hits = run_with_fault(engine, load_event(EVENT), case)

    # THEN the status says what happened, never CONTAINED for what did not, on the record and in the one message
    assert hits > 0
    assert status_of(execution) == status
    assert engine.world.report()["tasks"][TASK]["quarantined"] is isolated
    assert engine.blocked_ips() == ([C2_SERVER] if blocked else [])
    assert any(action["outcome"] == left for action in report_of(execution)["actions"])
    assert [record["status"] for record in records(engine)] == [status]
    assert [message["subject"] for message in engine.notifications()] == [
        f"Firebreak {status}: Backdoor:Runtime/C&CActivity.B"
    ]


@pytest.mark.usefixtures("short_retry_waits")
@pytest.mark.parametrize(
    ("case", "status", "stopped"),
    [
        (Case("ecs", "StopTask", "ThrottlingException", 3), "CONTAINED", True),
        (Case("ecs", "StopTask", "AccessDeniedException", None), "PARTIALLY_CONTAINED", False),
    ],
    ids=str,
)
def test_stop_task_errors_are_retried_or_told_and_the_isolation_stands(case: Case, status: str, stopped: bool) -> None:
    # GIVEN a stack that stops tasks after isolation, and StopTask throttled past the client's retries or refused
    with stack_with({"StopTaskAfterIsolation": "true"}) as engine:
        # WHEN the finding runs
        execution, hits = run_with_fault(engine, load_event(EVENT), case)

        # THEN a throttled stop is retried by the step, a refused one is a failed action; the task stays isolated
        assert hits > 0
        assert status_of(execution) == status
        world = engine.world.report()["tasks"][TASK]
        assert (world["quarantined"], world["stopped"]) == (True, stopped)


def test_an_interface_that_refuses_new_groups_is_stopped_when_the_stack_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a stack that stops tasks, and EC2 refusing to change the task's interface (as ECS-managed ones may)
    with stack_with({"StopTaskAfterIsolation": "true"}) as engine:

        def refuse(**kwargs: Any) -> Any:
            error = {"Error": {"Code": "AuthFailure", "Message": "You do not have permission to access the resource"}}
            raise ClientError(error, "ModifyNetworkInterfaceAttribute")  # type: ignore[arg-type]

        monkeypatch.setattr(aws.client("ec2", region="us-east-1"), "modify_network_interface_attribute", refuse)

        # WHEN the finding runs
        execution = start(engine, load_event(EVENT))

        # THEN the swap failed, the task was stopped instead, and the status says PARTIALLY_CONTAINED, not CONTAINED
        assert "Stop Task" in execution.states
        outcomes = {("desired_status" in a["after"], a["outcome"]) for a in actions(execution)}
        assert (False, "failed") in outcomes and (True, "applied") in outcomes
        assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
        world = engine.world.report()["tasks"][TASK]
        assert (world["quarantined"], world["stopped"]) == (False, True)


def test_a_cluster_finding_naming_no_task_is_notified_and_a_crash_names_no_task_either(engine: Engine) -> None:
    # GIVEN an ECS runtime finding without taskDetails, and then the same with the isolation function crashing
    event = load_event(EVENT)
    del event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]
    execution = start(engine, event)
    # THEN nothing is touched and the incident is only NOTIFIED, saying why
    assert [a["reason"] for a in actions(execution)] == ["the finding names no ECS task"]
    assert report_of(execution)["status"] == "NOTIFIED"

    engine.dispatcher.override(ISOLATE_FUNCTION, out_of_memory)
    event["detail"]["id"] = "9c1e7a9b3d5f7a9c1e3b5d7f9a1c3e77"
    [failed] = actions(start(engine, event))
    assert (failed["target"], failed["outcome"]) == ("unknown", "failed")


def test_a_task_tagged_approval_required_since_the_finding_is_not_touched_without_approval(engine: Engine) -> None:
    # GIVEN a task tagged firebreak:approval=required after GuardDuty described it (so triage did not ask anyone)
    event = load_event(EVENT)
    task_arn = seeded_task(engine, event)
    tag_task(engine, task_arn, "firebreak:approval", "required")
    before = task_groups(engine, task_arn)

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN nothing is touched, the reason says why, and the incident is only NOTIFIED
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped"
    assert "firebreak:approval=required now, and nobody approved this incident" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"
    assert task_groups(engine, task_arn) == before
    assert engine.blocked_ips() == []
