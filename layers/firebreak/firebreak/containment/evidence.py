"""Keeping an isolated instance as evidence and out of service: every step idempotent, its before-state recorded.

Each step stands alone: one that AWS refuses becomes a failed action and the others still run. A throttled or
unavailable service also becomes a failed action (the SDK has already retried it): repeating the whole step list
would report what this run changed as "already applied", and lose the before-state the release needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from firebreak.containment.isolation import TAG_VALUE_LIMIT, Instance, describe_instance
from firebreak.core.aws import describe_error, error_code
from firebreak.core.errors import InstanceNotFound, MemberRoleUnavailable
from firebreak.core.members import playbook_client
from firebreak.core.models import EXEMPT_TAG, Action, ActionType, Outcome, PlaybookRequest

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagTypeDef
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient

INCIDENT_TAG = "firebreak:incident-id"
INSTANCE_TAG = "firebreak:instance-id"
CONTAINED_AT_TAG = "firebreak:contained-at"
FINDING_TYPE_TAG = "firebreak:finding-type"
REVOKE_SESSIONS_POLICY = "AWSRevokeOlderSessions"
# Letters, digits, spaces and + - = . _ : / @ are what every AWS service (and instance metadata) accepts in a tag.
_TAG_UNSAFE = re.compile(r"[^\w +\-=.:/@]")
_TARGET_TYPES = frozenset({"instance", "ip"})
_BLAST_RADIUS_LISTED = 10


@dataclass(frozen=True)
class Clients:
    ec2: EC2Client
    autoscaling: AutoScalingClient
    elbv2: ElasticLoadBalancingv2Client
    iam: IAMClient


_SERVICES = ("ec2", "autoscaling", "elbv2", "iam")


@dataclass(frozen=True)
class EvidenceRequest:
    instance_id: str
    incident_id: str
    finding_type: str
    now: datetime
    dry_run: bool = False
    revoke_role_sessions: bool = False

    @property
    def timestamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")


Step = Callable[[Clients, Instance, EvidenceRequest], list[Action]]


def tag_value(text: str) -> str:
    """text as an EC2 tag value: characters tags refuse become "_", at most 256 characters."""
    return _TAG_UNSAFE.sub("_", text)[:TAG_VALUE_LIMIT]


def preserve_evidence(request: PlaybookRequest, revoke_role_sessions: bool, now: datetime) -> list[Action]:
    """Preserve Evidence for a playbook request, in the incident's account and Region."""
    evidence = EvidenceRequest(
        instance_id=request.incident.instance_id or "",
        incident_id=request.incident_id,
        finding_type=request.incident.finding_type,
        now=now,
        dry_run=request.dry_run,
        revoke_role_sessions=revoke_role_sessions,
    )
    try:
        clients = Clients(*(playbook_client(name, request, "preserve_evidence") for name in _SERVICES))
    except MemberRoleUnavailable as error:
        return [_action(evidence, Outcome.FAILED, f"evidence not preserved: {error}")]
    return preserve(clients, evidence)


def preserve(clients: Clients, request: EvidenceRequest) -> list[Action]:
    """Every evidence step for the instance, in order; a step AWS refuses is a failed action, never an exception."""
    try:
        instance = describe_instance(clients.ec2, request.instance_id)
    except InstanceNotFound as error:
        return [_action(request, Outcome.FAILED, f"evidence not preserved: {error}")]
    if instance.gone:
        return [_action(request, Outcome.FAILED, f"evidence not preserved: the instance is {instance.state}")]
    if instance.exempt:
        return [_action(request, Outcome.SKIPPED, f"instance is tagged {EXEMPT_TAG}=true: Firebreak never touches it")]
    steps: list[tuple[str, Step]] = [
        ("termination protection", protect_from_termination),
        ("shutdown behaviour", stop_on_shutdown),
        ("Auto Scaling", leave_auto_scaling),
        ("target groups", leave_target_groups),
        ("snapshots", snapshot_volumes),
        ("instance tags", tag_instance),
    ]
    if request.revoke_role_sessions:
        steps.append(("role sessions", revoke_role_sessions))
    actions: list[Action] = []
    for title, step in steps:
        try:
            actions += step(clients, instance, request)
        except ClientError as error:
            actions.append(_action(request, Outcome.FAILED, f"{title}: {describe_error(error)}"))
    return actions


def protect_from_termination(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    attribute = clients.ec2.describe_instance_attribute(
        InstanceId=instance.instance_id, Attribute="disableApiTermination"
    )
    current = bool(attribute.get("DisableApiTermination", {}).get("Value"))
    before, after = {"disable_api_termination": current}, {"disable_api_termination": True}
    if current:
        return [_action(request, Outcome.ALREADY_APPLIED, "termination protection already on", before, after)]
    if request.dry_run:
        call = f"ModifyInstanceAttribute(InstanceId={instance.instance_id}, DisableApiTermination={{Value: true}})"
        return [_action(request, Outcome.PLANNED, f"would call {call}", before, after)]
    clients.ec2.modify_instance_attribute(InstanceId=instance.instance_id, DisableApiTermination={"Value": True})
    return [_action(request, Outcome.APPLIED, "termination protection on", before, after)]


def stop_on_shutdown(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    """A shutdown from inside the instance stops it (keeping its volumes) instead of terminating it."""
    attribute = clients.ec2.describe_instance_attribute(
        InstanceId=instance.instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    current = attribute.get("InstanceInitiatedShutdownBehavior", {}).get("Value")
    before, after = {"shutdown_behavior": current}, {"shutdown_behavior": "stop"}
    if current == "stop":
        return [_action(request, Outcome.ALREADY_APPLIED, "shutdown behaviour already stop", before, after)]
    if request.dry_run:
        call = (
            f"ModifyInstanceAttribute(InstanceId={instance.instance_id}, "
            "Attribute=instanceInitiatedShutdownBehavior, Value=stop)"
        )
        return [_action(request, Outcome.PLANNED, f"would call {call}", before, after)]
    # The Attribute/Value form: the same call to EC2, and the one moto applies (it ignores the structure form).
    clients.ec2.modify_instance_attribute(
        InstanceId=instance.instance_id, Attribute="instanceInitiatedShutdownBehavior", Value="stop"
    )
    return [_action(request, Outcome.APPLIED, f"shutdown behaviour stop (was {current})", before, after)]


def leave_auto_scaling(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    """Out of its Auto Scaling group, whose health checks would otherwise terminate the evidence, at full capacity."""
    autoscaling = clients.autoscaling
    members = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance.instance_id])["AutoScalingInstances"]
    if not members:
        return [_action(request, Outcome.SKIPPED, "not in an Auto Scaling group")]
    member = members[0]
    name = member["AutoScalingGroupName"]
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    desired = groups[0]["DesiredCapacity"] if groups else None
    before = {"auto_scaling_group": name, "lifecycle_state": member["LifecycleState"], "desired_capacity": desired}
    after = {"auto_scaling_group": None, "desired_capacity": desired}
    if request.dry_run:
        call = (
            f"DetachInstances(AutoScalingGroupName={name}, InstanceIds=[{instance.instance_id}], "
            "ShouldDecrementDesiredCapacity=false)"
        )
        return [_action(request, Outcome.PLANNED, f"would call {call}", before, after)]
    autoscaling.detach_instances(
        InstanceIds=[instance.instance_id], AutoScalingGroupName=name, ShouldDecrementDesiredCapacity=False
    )
    reason = f"detached from Auto Scaling group {name}; desired capacity stays {desired}, so it launches a replacement"
    return [_action(request, Outcome.APPLIED, reason, before, after)]


def leave_target_groups(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    """Out of every load balancer target group that holds it, by instance id or by one of its private addresses.

    No API says which groups hold an instance, so every instance or ip target group of its VPCs is read.
    """
    elbv2 = clients.elbv2
    ids = {instance.instance_id, *instance.private_ips}
    vpcs = set(instance.vpc_ids)
    actions: list[Action] = []
    for page in elbv2.get_paginator("describe_target_groups").paginate():
        for group in page["TargetGroups"]:
            if group.get("VpcId") not in vpcs or group.get("TargetType", "instance") not in _TARGET_TYPES:
                continue
            arn = group["TargetGroupArn"]
            health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            held = [d for d in health if d.get("Target", {}).get("Id") in ids]
            if held:
                actions.append(_leave_target_group(elbv2, request, group["TargetGroupName"], arn, held))
    return actions or [_action(request, Outcome.SKIPPED, "not a target of any load balancer target group")]


def _leave_target_group(
    elbv2: ElasticLoadBalancingv2Client, request: EvidenceRequest, name: str, arn: str, held: Sequence[Any]
) -> Action:
    targets = [dict(d["Target"]) for d in held]
    before, after = {"target_group": arn, "targets": targets}, {"target_group": arn, "targets": []}
    if all(d.get("TargetHealth", {}).get("State") == "draining" for d in held):
        return _action(request, Outcome.ALREADY_APPLIED, f"already draining from target group {name}", before, after)
    if request.dry_run:
        ids = ", ".join(str(target["Id"]) for target in targets)
        return _action(request, Outcome.PLANNED, f"would call DeregisterTargets({name}, [{ids}])", before, after)
    try:
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=targets)  # type: ignore[arg-type]
    except ClientError as error:
        return _action(request, Outcome.FAILED, f"target group {name}: {describe_error(error)}", before)
    return _action(request, Outcome.APPLIED, f"deregistered from target group {name}", before, after)


def snapshot_volumes(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    """One snapshot of every attached EBS volume, tagged with the incident and the instance; one per incident."""
    if not instance.volume_ids:
        return [_action(request, Outcome.SKIPPED, "no EBS volume attached")]
    return [_snapshot(clients.ec2, instance, request, volume) for volume in instance.volume_ids]


def _snapshot(ec2: EC2Client, instance: Instance, request: EvidenceRequest, volume: str) -> Action:
    tags: list[TagTypeDef] = [
        {"Key": INCIDENT_TAG, "Value": tag_value(request.incident_id)},
        {"Key": INSTANCE_TAG, "Value": instance.instance_id},
    ]
    existing = ec2.describe_snapshots(
        OwnerIds=["self"],
        Filters=[
            {"Name": "volume-id", "Values": [volume]},
            {"Name": f"tag:{INCIDENT_TAG}", "Values": [tag_value(request.incident_id)]},
        ],
    )["Snapshots"]
    before = {"volume": volume}
    if existing:
        after = {"volume": volume, "snapshot": existing[0]["SnapshotId"]}
        reason = f"snapshot {existing[0]['SnapshotId']} of {volume} already taken for this incident"
        return _action(request, Outcome.ALREADY_APPLIED, reason, before, after)
    if request.dry_run:
        keys = ", ".join(f"{tag['Key']}={tag['Value']}" for tag in tags)
        return _action(request, Outcome.PLANNED, f"would call CreateSnapshot(VolumeId={volume}, Tags=[{keys}])", before)
    try:
        snapshot = ec2.create_snapshot(
            VolumeId=volume,
            Description=f"Firebreak evidence of {instance.instance_id} for incident {request.incident_id}"[:255],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
        )
    except ClientError as error:
        return _action(request, Outcome.FAILED, f"snapshot of {volume}: {describe_error(error)}", before)
    after = {"volume": volume, "snapshot": snapshot["SnapshotId"]}
    return _action(request, Outcome.APPLIED, f"snapshot {snapshot['SnapshotId']} of {volume}", before, after)


def tag_instance(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    """The incident, the time and the finding type on the instance; the first containment's tags are kept."""
    wanted = {
        INCIDENT_TAG: tag_value(request.incident_id),
        CONTAINED_AT_TAG: request.timestamp,
        FINDING_TYPE_TAG: tag_value(request.finding_type),
    }
    before = {"tags": {key: instance.tag(key) for key in wanted}}
    after = {"tags": wanted}
    if instance.tag(INCIDENT_TAG) == wanted[INCIDENT_TAG]:
        return [_action(request, Outcome.ALREADY_APPLIED, "already tagged with this incident", before, before)]
    keys = ", ".join(f"{key}={value}" for key, value in wanted.items())
    if request.dry_run:
        call = f"CreateTags(Resources=[{instance.instance_id}], Tags=[{keys}])"
        return [_action(request, Outcome.PLANNED, f"would call {call}", before, after)]
    clients.ec2.create_tags(
        Resources=[instance.instance_id], Tags=[{"Key": key, "Value": value} for key, value in wanted.items()]
    )
    return [_action(request, Outcome.APPLIED, f"tagged {keys}", before, after)]


def revoke_policy(timestamp: str) -> str:
    """The policy the IAM console's "Revoke active sessions" attaches: deny every session issued before timestamp."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"DateLessThan": {"aws:TokenIssueTime": timestamp}},
                }
            ],
        }
    )


def revoke_role_sessions(clients: Clients, instance: Instance, request: EvidenceRequest) -> list[Action]:
    """Deny the instance profile role's sessions issued before now, saying who else that touches."""
    if instance.profile_arn is None:
        return [_action(request, Outcome.SKIPPED, "no instance profile: no role sessions to revoke")]
    profile = instance.profile_arn.rsplit("/", 1)[-1]
    roles = clients.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
    users = _instances_using(clients.ec2, instance.profile_arn)
    return [_revoke(clients.iam, request, profile, role["RoleName"], role["Path"], users) for role in roles]


def _revoke(iam: IAMClient, request: EvidenceRequest, profile: str, role: str, path: str, users: list[str]) -> Action:
    if path.startswith("/aws-service-role/"):
        reason = f"role {role} is service-linked: its sessions cannot be revoked"
        return Action(ActionType.REVOKE_CREDENTIALS, role, Outcome.SKIPPED, reason)
    listed = ", ".join(users[:_BLAST_RADIUS_LISTED]) + (", ..." if len(users) > _BLAST_RADIUS_LISTED else "")
    blast = (
        f"every session of role {role} issued before {request.timestamp} is denied: {len(users)} instance(s) using "
        f"profile {profile} ({listed}) fetch new credentials, and anyone else holding a session of the role loses it"
    )
    previous = _role_policy(iam, role)
    document = revoke_policy(request.timestamp)
    # The inline-policy shape of the release contract (firebreak.incident.release), as revoke-credentials records it.
    before = {"role": role, "policy_name": REVOKE_SESSIONS_POLICY, "document": previous}
    after = {
        "role": role,
        "policy_name": REVOKE_SESSIONS_POLICY,
        "document": json.loads(document),
        "token_issue_time": request.timestamp,
    }
    if request.dry_run:
        reason = f"would call PutRolePolicy(RoleName={role}, PolicyName={REVOKE_SESSIONS_POLICY}): {blast}"
        return Action(ActionType.REVOKE_CREDENTIALS, role, Outcome.PLANNED, reason, before, after)
    try:
        iam.put_role_policy(RoleName=role, PolicyName=REVOKE_SESSIONS_POLICY, PolicyDocument=document)
    except ClientError as error:
        return Action(ActionType.REVOKE_CREDENTIALS, role, Outcome.FAILED, describe_error(error), before)
    return Action(ActionType.REVOKE_CREDENTIALS, role, Outcome.APPLIED, blast, before, after)


def _role_policy(iam: IAMClient, role: str) -> dict[str, Any] | None:
    try:
        document: Any = iam.get_role_policy(RoleName=role, PolicyName=REVOKE_SESSIONS_POLICY)["PolicyDocument"]
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        return None
    # boto3 decodes the URL-encoded document into a dict; a string is what other clients may hand back.
    return json.loads(document) if isinstance(document, str) else dict(document)


def _instances_using(ec2: EC2Client, profile_arn: str) -> list[str]:
    pages = ec2.get_paginator("describe_iam_instance_profile_associations").paginate(
        Filters=[{"Name": "state", "Values": ["associated"]}]
    )
    return sorted(
        association["InstanceId"]
        for page in pages
        for association in page["IamInstanceProfileAssociations"]
        if association.get("IamInstanceProfile", {}).get("Arn") == profile_arn
    )


def _action(
    request: EvidenceRequest,
    outcome: Outcome,
    reason: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Action:
    return Action(ActionType.ISOLATE_INSTANCE, request.instance_id, outcome, reason, before or {}, after or {})
