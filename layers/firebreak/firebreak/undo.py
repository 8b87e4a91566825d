"""One undo function per containment action type; the shapes they read are the contract in firebreak.release.

Each takes the recorded Action and a ReleaseContext and returns the release's entry for it: `released` with the state
it found as `before` and the state it left as `after`, or `skipped` with a "conflict:" reason when the target is no
longer as Firebreak left it (nothing is written then).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from firebreak import nacl
from firebreak.blocklist import Blocklist
from firebreak.models import Action, ActionType, Outcome, utc_now
from firebreak.waf import IpSetRef, client_for, present_addresses, remove_addresses


@dataclass(frozen=True)
class ReleaseContext:
    """What an undo function may use: clients for the incident's account and region, and the block-list holders."""

    incident_id: str
    client: Callable[[str], Any]
    # CIDR -> other incidents whose record still holds it in the block lists.
    held_elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # CIDRs some Firebreak incident (this one included) added to the block lists itself.
    added_by_firebreak: frozenset[str] = frozenset()
    # The block list's truth (firebreak.blocklist): a released CIDR leaves it, or the next sweep would put it back.
    blocklist: Blocklist | None = None
    network_acl_rules: tuple[int, int] = (71, 80)
    now: Callable[[], float] = time.time


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
    """Take the CIDR out of the block list and its IPSets unless another incident still holds it or a person put it
    there; a network ACL entry goes with its CIDR's block list item."""
    if "network_acl" in action.after:
        return _undo_network_acl(action, context)
    arns = list(action.after.get("ipsets") or [action.after["ipset"]])
    ipsets = [IpSetRef.from_arn(arn) for arn in arns]
    cidr = ipaddress.ip_network(action.target, strict=False).compressed
    wafs = {ipset.arn: _waf(ipset, context) for ipset in ipsets}
    present = all(cidr in present_addresses(wafs[ipset.arn], ipset) for ipset in ipsets)
    found = {"ipset": arns[0], "present": present}
    names = ", ".join(ipset.name for ipset in ipsets)
    if not present and context.blocklist is not None and not _still_listed(context.blocklist, cidr, context.now()):
        # The sweep lifted it on expiry (or a person deleted its item): nothing of this block is left to undo.
        return released(action, found, found, f"already lifted from WAF IPSet {names}: no longer in the block list")
    problems = differences(found, {"ipset": action.after["ipset"], "present": action.after.get("present", True)})
    if problems:
        return conflict(action, found, problems)
    holders = context.held_elsewhere.get(cidr)
    if holders:
        return released(action, found, found, f"left in WAF IPSet {names}: still held by {', '.join(holders)}")
    if action.outcome is Outcome.ALREADY_APPLIED and cidr not in context.added_by_firebreak:
        return released(action, found, found, f"left in WAF IPSet {names}: it was there before Firebreak")
    if context.blocklist is not None:
        # First out of the truth, so no concurrent block writer or sweep puts it back from the table.
        context.blocklist.forget(cidr)
    # Every set is written even when one turns out to lack the CIDR already.
    removed = [bool(remove_addresses(wafs[ipset.arn], ipset, [cidr]).removed) for ipset in ipsets]
    if not all(removed):
        return conflict(action, {**found, "present": False}, [f"removed from {names} while releasing"])
    return released(action, found, {**found, "present": False}, f"removed from WAF IPSet {names}")


def _waf(ipset: IpSetRef, context: ReleaseContext) -> Any:
    # CLOUDFRONT-scope sets are managed from us-east-1 wherever the incident happened.
    return client_for(ipset) if ipset.scope == "CLOUDFRONT" else context.client("wafv2")


def _still_listed(blocklist: Blocklist, cidr: str, now: float) -> bool:
    entry = blocklist.entry(cidr)
    return entry is not None and entry.active(int(now))


def _undo_network_acl(action: Action, context: ReleaseContext) -> Action:
    """Deny entries follow the block list: once the CIDR has left it, the ACL's range is brought to the table."""
    acl, cidr = action.after["network_acl"], action.target.split(" ", 1)[0]
    if context.blocklist is None:
        return conflict(action, {}, ["no blocklist table to release network ACL entries from"])
    if _still_listed(context.blocklist, cidr, context.now()):
        found = {"network_acl": acl, "rule": action.after.get("rule")}
        return released(action, found, found, f"left in {acl}: {cidr} is still blocked for another incident")
    rules = nacl.RuleRange(*context.network_acl_rules)
    with context.blocklist.lease(nacl.lease_name(acl)) as held:
        if not held:
            reason = f"release failed: network ACL {acl} is being written by a block step; a later release tries again"
            return Action(action.type, action.target, Outcome.FAILED, reason, at=utc_now())
        result = nacl.reconcile(context.client("ec2"), context.blocklist, acl, rules, int(context.now()))
    found = {"network_acl": acl, "rule": result.before.get(cidr)}
    left = {"network_acl": acl, "rule": result.after.get(cidr)}
    return released(action, found, left, f"deny entries of {cidr} removed from {acl}")


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
