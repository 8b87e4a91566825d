"""contain-task: an ECS task of a Runtime Monitoring finding recorded, its network interface isolated as an instance's
is (containment.isolation's two steps through the allow-all group), and stopped afterwards when the stack says so.

Only a task with its own interface (awsvpc networking: every Fargate task, and EC2 tasks in that mode) can be cut off
this way; a bridge- or host-mode task shares its container instance's interface, which is contain-instance's to
isolate. A stopped task cannot be started again: ECS starts a new task (new id, new interface) instead.
Also here: the kubectl steps a person runs for a Kubernetes finding, since Firebreak holds no cluster's API.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from firebreak.containment.isolation import Interface, IsolationStatus, addresses_to_block, isolate_interfaces
from firebreak.core.aws import describe_error, error_code, is_transient
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.members import playbook_client
from firebreak.core.models import (
    APPROVAL_TAG,
    EXEMPT_TAG,
    Action,
    ActionType,
    Incident,
    Outcome,
    PlaybookRequest,
    action_of,
    asks_approval,
    says_exempt,
    step_output,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient

# Statuses after which a task has no network left to isolate (ECS deletes a Fargate task's interface as it stops).
_GONE = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED", "DELETED"})
_NOT_FOUND_CODES = frozenset({"ClusterNotFoundException", "InvalidParameterException"})
# What ECS shows as the stop reason (it keeps 255 characters) and CloudTrail records with StopTask.
STOP_REASON = "Firebreak incident {incident_id}: isolated, then stopped (StopTaskAfterIsolation)"
QUARANTINE_LABEL = "firebreak/quarantine"
# The tag triage.approvals reads on the finding's copy of the tags; read here live, since it may be newer.


@dataclass(frozen=True)
class Task:
    """The task as ECS describes it now, with the ids and settings the record keeps (never environment values)."""

    task_arn: str
    cluster_arn: str
    last_status: str
    desired_status: str
    task_definition_arn: str
    launch_type: str | None
    tags: tuple[tuple[str, str], ...]
    interface_ids: tuple[str, ...]
    containers: tuple[Mapping[str, Any], ...] = ()
    group: str | None = None
    started_by: str | None = None
    started_at: str | None = None

    @property
    def gone(self) -> bool:
        return self.last_status in _GONE or self.desired_status == "STOPPED"

    def evidence(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["tags"] = dict(self.tags)
        fields["interface_ids"] = list(self.interface_ids)
        fields["containers"] = [dict(container) for container in self.containers]
        return fields


@dataclass(frozen=True)
class TaskIsolation:
    """Isolate Task's answer: its status, actions, the addresses to block, and whether Stop Task is to run."""

    status: IsolationStatus
    actions: tuple[Action, ...]
    block_addresses: tuple[str, ...] = ()
    suppressed_reason: str | None = None
    stop_task: bool = False

    def to_dict(self) -> dict[str, Any]:
        return step_output(self)


# --- reading the task -----------------------------------------------------------------------------------------------


def cluster_of(incident: Incident) -> str | None:
    """The task's cluster as the finding names it: its ARN, else its name, else the long task ARN's cluster part."""
    if incident.cluster_arn or incident.cluster_name:
        return incident.cluster_arn or incident.cluster_name
    parts = (incident.task_arn or "").split(":task/", 1)[-1].split("/")
    return parts[0] if len(parts) == 2 else None


def describe_task(ecs: ECSClient, cluster: str | None, task_arn: str) -> Task | None:
    """The task now, with its tags; None when ECS does not know it (or its cluster)."""
    try:
        found = ecs.describe_tasks(**({"cluster": cluster} if cluster else {}), tasks=[task_arn], include=["TAGS"])
    except ClientError as error:
        if error_code(error) in _NOT_FOUND_CODES:
            return None
        raise
    tasks = [task for task in found.get("tasks", []) if task.get("taskArn") == task_arn]
    if not tasks:
        return None
    data = tasks[0]
    interfaces = [
        detail["value"]
        for attachment in data.get("attachments", [])
        if attachment.get("type") == "ElasticNetworkInterface"
        for detail in attachment.get("details", [])
        if detail.get("name") == "networkInterfaceId" and detail.get("value")
    ]
    started = data.get("startedAt")
    return Task(
        task_arn=task_arn,
        cluster_arn=data.get("clusterArn", cluster or ""),
        last_status=data.get("lastStatus", "UNKNOWN"),
        desired_status=data.get("desiredStatus", "UNKNOWN"),
        task_definition_arn=data.get("taskDefinitionArn", ""),
        launch_type=data.get("launchType"),
        tags=tuple((tag["key"], tag["value"]) for tag in data.get("tags", []) if "key" in tag and "value" in tag),
        interface_ids=tuple(interfaces),
        containers=tuple(
            {key: container[key] for key in ("name", "image", "imageDigest", "runtimeId") if key in container}
            for container in data.get("containers", [])
        ),
        group=data.get("group"),
        started_by=data.get("startedBy"),
        started_at=None if started is None else started.isoformat(),
    )


def cluster_tags(ecs: ECSClient, cluster: str) -> dict[str, str]:
    clusters = ecs.describe_clusters(clusters=[cluster], include=["TAGS"]).get("clusters", [])
    return {tag["key"]: tag["value"] for c in clusters for tag in c.get("tags", []) if "key" in tag and "value" in tag}


def describe_definition(ecs: ECSClient, arn: str) -> dict[str, Any]:
    """What the record keeps of the task definition: roles, network mode, and each container's image and privileges.

    Environment values and secrets' values are left out (they may be credentials); their names are kept.
    """
    data = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    containers = [
        {
            "name": container.get("name"),
            "image": container.get("image"),
            "privileged": container.get("privileged", False),
            "user": container.get("user"),
            "read_only_root_filesystem": container.get("readonlyRootFilesystem", False),
            "environment_names": sorted(item["name"] for item in container.get("environment", []) if "name" in item),
            "secret_names": sorted(item["name"] for item in container.get("secrets", []) if "name" in item),
        }
        for container in data.get("containerDefinitions", [])
    ]
    return {
        "task_definition_arn": data.get("taskDefinitionArn", arn),
        "family": data.get("family"),
        "revision": data.get("revision"),
        "task_role_arn": data.get("taskRoleArn"),
        "execution_role_arn": data.get("executionRoleArn"),
        "network_mode": data.get("networkMode"),
        "requires_compatibilities": list(data.get("requiresCompatibilities", [])),
        "containers": containers,
    }


def task_interfaces(ec2: EC2Client, interface_ids: Sequence[str]) -> tuple[tuple[Interface, ...], bool]:
    """The task's interfaces with their groups and tags (where isolation keeps the groups it had before), and whether
    a service manages any of them (RequesterManaged), which may refuse to change its groups."""
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=list(interface_ids))["NetworkInterfaces"]
    managed = any(eni.get("RequesterManaged") for eni in described)
    return tuple(
        Interface(
            interface_id=eni["NetworkInterfaceId"],
            vpc_id=eni.get("VpcId", ""),
            group_ids=tuple(group["GroupId"] for group in eni.get("Groups", [])),
            private_ips=tuple(ip["PrivateIpAddress"] for ip in eni.get("PrivateIpAddresses", [])),
            tags=tuple((tag["Key"], tag["Value"]) for tag in eni.get("TagSet", [])),
        )
        for eni in described
    ), managed


# --- the playbook steps ---------------------------------------------------------------------------------------------


def isolate_task(request: PlaybookRequest, stop_after_isolation: bool, approved: bool = False) -> TaskIsolation:
    """Isolate Task: the task and its definition recorded, its interface isolated; the addresses to block, and whether
    Stop Task runs next: only when asked, for a task there and not exempt. An interface that could not be isolated
    (ECS may refuse group changes on interfaces it manages) leaves stopping as the containment there is."""
    task_arn = request.incident.task_arn
    if task_arn is None:
        return TaskIsolation(IsolationStatus.NOT_FOUND, (_skipped("unknown", "the finding names no ECS task"),))
    try:
        ecs = playbook_client("ecs", request, "isolate_task")
        ec2 = playbook_client("ec2", request, "isolate_task")
    except MemberRoleUnavailable as error:
        failed = _action(task_arn, Outcome.FAILED, f"not isolated: {error}")
        return _with_addresses(request, TaskIsolation(IsolationStatus.FAILED, (failed,)), stop=False)
    cluster = cluster_of(request.incident)
    task = describe_task(ecs, cluster, task_arn)
    if task is None:
        reason = f"task {task_arn} is unknown to ECS (stopped and gone): nothing left to isolate"
        return TaskIsolation(IsolationStatus.NOT_FOUND, (_skipped(task_arn, reason),))
    clusters = cluster_tags(ecs, task.cluster_arn)
    exempt = _exempt_by(task, clusters)
    if exempt:
        reason = f"{exempt} is tagged {EXEMPT_TAG}=true: Firebreak never touches it"
        return TaskIsolation(
            IsolationStatus.EXEMPT,
            (_skipped(task_arn, reason),),
            suppressed_reason=f"{exempt} tagged {EXEMPT_TAG}=true",
        )
    if task.gone:
        reason = f"task {task_arn} is {task.last_status} (desired {task.desired_status}): nothing left to isolate"
        return TaskIsolation(IsolationStatus.NOT_FOUND, (_skipped(task_arn, reason),))
    wanting = _approval_wanted_by(task, clusters) if not approved else None
    if wanting and not request.dry_run:
        reason = (
            f"{wanting} is tagged {APPROVAL_TAG}=required now, and nobody approved this incident (GuardDuty's copy of "
            "the tags did not ask): not touched; a responder contains it by hand or tags the finding's resource first"
        )
        waiting = _action(task_arn, Outcome.SKIPPED, reason, left_open=True)
        return TaskIsolation(IsolationStatus.NOT_FOUND, (waiting,))
    record = _record(ecs, task)
    if not task.interface_ids:
        reason = (
            f"task {task_arn} has no network interface of its own (bridge or host networking): it shares its "
            f"container instance's, which contain-instance isolates; not isolated"
        )
        failed = _action(task_arn, Outcome.FAILED, reason)
        isolation = TaskIsolation(IsolationStatus.FAILED, (record, failed))
        return _with_addresses(request, isolation, stop=stop_after_isolation)
    interfaces, managed = task_interfaces(ec2, task.interface_ids)
    status, actions = isolate_interfaces(ec2, task_arn, interfaces, request.dry_run)
    retyped = tuple(_retyped(action, managed, stop_after_isolation) for action in actions)
    return _with_addresses(request, TaskIsolation(status, (record, *retyped)), stop=stop_after_isolation)


def stop_task(request: PlaybookRequest) -> Action:
    """Stop Task: the isolated task stopped (its memory is lost with it), or why not; read live again first."""
    task_arn = request.incident.task_arn or "unknown"
    try:
        ecs = playbook_client("ecs", request, "stop_task")
    except MemberRoleUnavailable as error:
        return _action(task_arn, Outcome.FAILED, f"not stopped: {error}")
    cluster = cluster_of(request.incident)
    task = describe_task(ecs, cluster, task_arn)
    if task is None:
        return _skipped(task_arn, f"task {task_arn} is unknown to ECS: nothing to stop")
    exempt = _exempt_by(task, cluster_tags(ecs, task.cluster_arn))
    if exempt:
        return _skipped(task_arn, f"{exempt} is tagged {EXEMPT_TAG}=true: Firebreak never touches it")
    before = {"desired_status": task.desired_status, "last_status": task.last_status}
    after = {"desired_status": "STOPPED"}
    if task.gone:
        reason = f"task {task_arn} is already {task.last_status} (desired {task.desired_status})"
        return _action(task_arn, Outcome.ALREADY_APPLIED, reason, before, after)
    stop_reason = STOP_REASON.format(incident_id=request.incident_id)
    if request.dry_run:
        reason = f"would call StopTask(cluster={task.cluster_arn}, task={task_arn}, reason={stop_reason!r})"
        return _action(task_arn, Outcome.PLANNED, reason, before, after)
    try:
        ecs.stop_task(cluster=task.cluster_arn, task=task_arn, reason=stop_reason)
    except ClientError as error:
        if is_transient(error):
            raise
        return _action(task_arn, Outcome.FAILED, f"task {task_arn} not stopped: {describe_error(error)}", before)
    reason = (
        f"task {task_arn} stopped after isolation: its memory is gone, and ECS cannot start it again "
        f"(its service, if any, starts a new task from {task.task_definition_arn})"
    )
    return _action(task_arn, Outcome.APPLIED, reason, before, after)


def _retyped(action: Action, managed: bool, stopping: bool) -> Action:
    """An isolation action as the task's; a failed one on a managed interface says what is left to do."""
    action = dataclasses.replace(action, type=ActionType.CONTAIN_TASK)
    if action.outcome is not Outcome.FAILED or not managed:
        return action
    left = "Stop Task stops it next" if stopping else "stop the task (StopTaskAfterIsolation does) to cut it off"
    hint = f"; the interface is managed by ECS, which may refuse to change its groups: {left}"
    return dataclasses.replace(action, reason=action.reason + hint)


def _approval_wanted_by(task: Task, cluster: Mapping[str, str]) -> str | None:
    """Which of the task and its cluster asks for a person's approval now (firebreak:approval=required)."""
    if asks_approval(dict(task.tags).get(APPROVAL_TAG)):
        return f"task {task.task_arn}"
    if asks_approval(cluster.get(APPROVAL_TAG)):
        return f"cluster {task.cluster_arn}"
    return None


def _exempt_by(task: Task, cluster: Mapping[str, str]) -> str | None:
    """Which of the task and its cluster is tagged exempt now (the finding's copy of the tags may be old)."""
    if says_exempt(dict(task.tags).get(EXEMPT_TAG)):
        return f"task {task.task_arn}"
    if says_exempt(cluster.get(EXEMPT_TAG)):
        return f"cluster {task.cluster_arn}"
    return None


def _record(ecs: ECSClient, task: Task) -> Action:
    """The task and its task definition as they are now, on the incident record (evidence; nothing to undo)."""
    images = ", ".join(str(container.get("image")) for container in task.containers) or "no containers listed"
    recorded = (
        f"recorded task {task.task_arn} ({task.launch_type or 'unknown launch type'}, {task.last_status}; {images})"
    )
    try:
        definition: dict[str, Any] = describe_definition(ecs, task.task_definition_arn)
    except ClientError as error:
        if is_transient(error):
            raise
        # The task is still on the record; what is missing is said, and isolation goes on regardless.
        why = describe_error(error)
        before = {"task": task.evidence(), "task_definition": {"task_definition_arn": task.task_definition_arn}}
        reason = f"{recorded}, but not its task definition {task.task_definition_arn}: {why}"
        return Action(ActionType.RECORD, task.task_arn, Outcome.FAILED, reason, before)
    reason = f"{recorded} and its task definition {task.task_definition_arn} as evidence"
    before = {"task": task.evidence(), "task_definition": definition}
    return Action(ActionType.RECORD, task.task_arn, Outcome.APPLIED, reason, before)


def _with_addresses(request: PlaybookRequest, isolation: TaskIsolation, *, stop: bool) -> TaskIsolation:
    addresses, not_blocked = addresses_to_block(request.incident)
    return dataclasses.replace(
        isolation, actions=isolation.actions + not_blocked, block_addresses=addresses, stop_task=stop
    )


def _skipped(target: str, reason: str) -> Action:
    return _action(target, Outcome.SKIPPED, reason)


_action = partial(action_of, ActionType.CONTAIN_TASK)


# --- Kubernetes: what a person runs -----------------------------------------------------------------------------------


def workload_line(incident: Incident) -> str | None:
    """The container workload a finding is about, for the notification: the task, or the cluster, namespace and pod."""
    if incident.task_arn:
        definition = f", task definition {incident.task_definition_arn}" if incident.task_definition_arn else ""
        return f"ECS task {incident.task_arn} in cluster {incident.cluster_name or incident.cluster_arn}{definition}"
    if incident.resource_type != "EKSCluster" or not incident.cluster_name:
        return None
    pod = (
        f", namespace {incident.kubernetes_namespace}, {incident.kubernetes_workload_type or 'workload'} "
        f"{incident.kubernetes_workload}"
        if incident.kubernetes_workload
        else ""
    )
    node = f", node {incident.instance_id}" if incident.instance_id else ""
    return f"EKS cluster {incident.cluster_name}{pod}{node}"


def kubectl_steps(incident: Incident) -> tuple[str, ...]:
    """The exact commands a person runs for a Kubernetes audit-log finding, names filled in from the finding.

    Firebreak holds no cluster's API (acting inside a cluster needs its RBAC), so it cannot run them itself.
    """
    if incident.resource_type != "EKSCluster" or not incident.cluster_name or incident.instance_id:
        return ()
    q = shlex.quote
    steps = [f"aws eks update-kubeconfig --region {q(incident.region)} --name {q(incident.cluster_name)}"]
    namespace, pod = incident.kubernetes_namespace, incident.kubernetes_workload
    if pod and namespace and (incident.kubernetes_workload_type or "pods").lower() in ("pods", "pod"):
        ns = f"--namespace {q(namespace)}"
        policy = json.dumps(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "firebreak-quarantine", "namespace": namespace},
                "spec": {
                    "podSelector": {"matchLabels": {QUARANTINE_LABEL: "true"}},
                    "policyTypes": ["Ingress", "Egress"],
                },
            },
            separators=(",", ":"),
        )
        steps += [
            f"kubectl {ns} get pod {q(pod)} -o yaml > {q(pod + '.yaml')}  # evidence first",
            f"kubectl {ns} label pod {q(pod)} {QUARANTINE_LABEL}=true --overwrite",
            f"echo {q(policy)} | kubectl apply -f -  # deny-all for that label (needs network policy enforcement on)",
            f"kubectl cordon $(kubectl {ns} get pod {q(pod)} -o jsonpath='{{.spec.nodeName}}')",
        ]
    elif pod and namespace:
        steps.append(
            f"kubectl --namespace {q(namespace)} get {q(incident.kubernetes_workload_type or 'all')} {q(pod)} -o yaml"
            "  # evidence, then quarantine its pods as above"
        )
    user = incident.kubernetes_user
    if user:
        steps += [
            f"kubectl auth can-i --list --as={q(user)}",
            f"kubectl get rolebindings,clusterrolebindings --all-namespaces -o wide | grep -F -- {q(user)}"
            "  # remove the bindings it should not have",
        ]
    return tuple(steps)
