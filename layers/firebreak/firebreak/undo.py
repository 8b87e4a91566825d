"""One undo function per containment action type; the shapes they read are the contract in firebreak.release.

Each takes the recorded Action and a ReleaseContext and returns the release's entry for it: `released` with the state
it found as `before` and the state it left as `after`, or `skipped` with a "conflict:" reason when the target is no
longer as Firebreak left it (nothing is written then).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from firebreak.models import Action, ActionType, Outcome, utc_now
from firebreak.waf import IpSetRef, present_addresses, remove_addresses


@dataclass(frozen=True)
class ReleaseContext:
    """What an undo function may use: clients for the incident's account and region, and the block-list holders."""

    incident_id: str
    client: Callable[[str], Any]
    # CIDR -> other incidents whose record still holds it in the block lists.
    held_elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # CIDRs some Firebreak incident (this one included) added to the block lists itself.
    added_by_firebreak: frozenset[str] = frozenset()


Undo = Callable[[Action, ReleaseContext], Action]


def differences(found: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The keys of `expected` whose value the target no longer has, described for a person."""
    return [f"{key} is {found.get(key)!r}, not {value!r}" for key, value in expected.items() if found.get(key) != value]


def conflict(action: Action, found: Mapping[str, Any], problems: list[str]) -> Action:
    reason = "conflict: changed since Firebreak acted (" + "; ".join(problems) + "); left as it is"
    return Action(action.type, action.target, Outcome.SKIPPED, reason, dict(found), dict(found), utc_now())


def released(action: Action, found: Mapping[str, Any], left: Mapping[str, Any], reason: str) -> Action:
    return Action(action.type, action.target, Outcome.RELEASED, reason, dict(found), dict(left), utc_now())


# --- block_ip -----------------------------------------------------------------------------------------------------


def undo_block_ip(action: Action, context: ReleaseContext) -> Action:
    """Take the CIDR out of its IPSet unless another incident still holds it or a person put it there."""
    ipset = IpSetRef.from_arn(action.after["ipset"])
    waf = context.client("wafv2")
    cidr = ipaddress.ip_network(action.target, strict=False).compressed
    found = {"ipset": ipset.arn, "present": cidr in present_addresses(waf, ipset)}
    problems = differences(found, {"ipset": action.after["ipset"], "present": action.after.get("present", True)})
    if problems:
        return conflict(action, found, problems)
    holders = context.held_elsewhere.get(cidr)
    if holders:
        return released(action, found, found, f"left in WAF IPSet {ipset.name}: still held by {', '.join(holders)}")
    if action.outcome is Outcome.ALREADY_APPLIED and cidr not in context.added_by_firebreak:
        return released(action, found, found, f"left in WAF IPSet {ipset.name}: it was there before Firebreak")
    if not remove_addresses(waf, ipset, [cidr]).removed:
        return conflict(action, {**found, "present": False}, [f"removed from {ipset.name} while releasing"])
    return released(action, found, {**found, "present": False}, f"removed from WAF IPSet {ipset.name}")


# --- isolate_instance ---------------------------------------------------------------------------------------------


def _instance_state(action: Action, context: ReleaseContext) -> dict[str, Any]:
    """The instance as it is now, in the shape of the recorded `after`."""
    ec2 = context.client("ec2")
    instance_id = action.target
    interfaces = ec2.describe_network_interfaces(NetworkInterfaceIds=list(action.after.get("interfaces", {})))
    protection = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    shutdown = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    groups = context.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    elbv2 = context.client("elbv2") if action.before.get("target_groups") else None
    return {
        "interfaces": {
            eni["NetworkInterfaceId"]: sorted(group["GroupId"] for group in eni.get("Groups", []))
            for eni in interfaces["NetworkInterfaces"]
        },
        "termination_protection": protection["DisableApiTermination"]["Value"],
        "shutdown_behavior": shutdown["InstanceInitiatedShutdownBehavior"]["Value"],
        "auto_scaling_group": next((item["AutoScalingGroupName"] for item in groups["AutoScalingInstances"]), None),
        "target_groups": [
            target_group
            for target_group in action.before.get("target_groups", ())
            if elbv2 is not None
            and any(
                description["Target"]["Id"] == instance_id
                for description in elbv2.describe_target_health(TargetGroupArn=target_group["arn"])[
                    "TargetHealthDescriptions"
                ]
            )
        ],
    }


def undo_isolate_instance(action: Action, context: ReleaseContext) -> Action:
    """Groups per interface, protection, shutdown behaviour, Auto Scaling and target groups back to `before`."""
    found = _instance_state(action, context)
    expected = {**action.after, "interfaces": {eni: sorted(g) for eni, g in action.after["interfaces"].items()}}
    problems = differences(found, {key: expected[key] for key in found if key in expected})
    if problems:
        return conflict(action, found, problems)
    before, instance_id = action.before, action.target
    ec2 = context.client("ec2")
    for eni, groups in before["interfaces"].items():
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=list(groups))
    ec2.modify_instance_attribute(
        InstanceId=instance_id, DisableApiTermination={"Value": bool(before["termination_protection"])}
    )
    # The Attribute/Value form: moto 5.2.5 ignores InstanceInitiatedShutdownBehavior={"Value": ...} (and resets the
    # instance's groups instead); both forms are the same call to EC2.
    ec2.modify_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior", Value=before["shutdown_behavior"]
    )
    notes = ["interfaces back in their groups"]
    if before.get("auto_scaling_group"):
        context.client("autoscaling").attach_instances(
            InstanceIds=[instance_id], AutoScalingGroupName=before["auto_scaling_group"]
        )
        notes.append(f"re-attached to {before['auto_scaling_group']} (desired capacity +1)")
    for target_group in before.get("target_groups", ()):
        target = {"Id": instance_id, **({"Port": target_group["port"]} if target_group.get("port") else {})}
        context.client("elbv2").register_targets(TargetGroupArn=target_group["arn"], Targets=[target])
    if before.get("target_groups"):
        notes.append(f"registered with {len(before['target_groups'])} target group(s)")
    return released(action, found, before, "; ".join(notes))


# --- revoke_credentials -------------------------------------------------------------------------------------------


def _has_policy(get_policy: Callable[..., Any], no_such_entity: type[Exception], **names: str) -> bool:
    try:
        get_policy(**names)
    except no_such_entity:
        return False
    return True


def undo_revoke_credentials(action: Action, context: ReleaseContext) -> Action:
    """The key back to its status and Firebreak's deny policy deleted, for an IAM user or a role."""
    iam = context.client("iam")
    after, before = action.after, action.before
    deny = after["deny_policy"]
    if after.get("principal_type") == "AssumedRole":
        role = after["role_name"]
        present = _has_policy(iam.get_role_policy, iam.exceptions.NoSuchEntityException, RoleName=role, PolicyName=deny)
        found: dict[str, Any] = {"deny_policy": deny if present else None}
        problems = differences(found, {"deny_policy": deny})
        if problems:
            return conflict(action, found, problems)
        if deny in before.get("policy_names", ()):
            return released(action, found, found, f"{deny} existed before the incident; left on role {role}")
        iam.delete_role_policy(RoleName=role, PolicyName=deny)
        return released(action, found, {"deny_policy": None}, f"deleted {deny} from role {role}")
    user, key = after["user_name"], after["access_key_id"]
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    present = _has_policy(iam.get_user_policy, iam.exceptions.NoSuchEntityException, UserName=user, PolicyName=deny)
    found = {
        "key_status": next((k["Status"] for k in keys if k["AccessKeyId"] == key), None),
        "deny_policy": deny if present else None,
    }
    problems = differences(found, {"key_status": after["key_status"], "deny_policy": deny})
    if problems:
        return conflict(action, found, problems)
    iam.update_access_key(UserName=user, AccessKeyId=key, Status=before["key_status"])
    if deny in before.get("policy_names", ()):
        left = {"key_status": before["key_status"], "deny_policy": deny}
        return released(action, found, left, f"key {before['key_status']}; {deny} existed before, left on {user}")
    iam.delete_user_policy(UserName=user, PolicyName=deny)
    left = {"key_status": before["key_status"], "deny_policy": None}
    return released(action, found, left, f"key {before['key_status']}, {deny} deleted from user {user}")


UNDO: Mapping[ActionType, Undo] = {
    ActionType.BLOCK_IP: undo_block_ip,
    ActionType.ISOLATE_INSTANCE: undo_isolate_instance,
    ActionType.REVOKE_CREDENTIALS: undo_revoke_credentials,
}
