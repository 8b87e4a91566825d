"""One undo function per recorded step; the shapes they read are the contract in firebreak.release.

A playbook records one Action per step it takes, several per target (an instance has one per interface, one for
its termination protection, ...), so a step is told apart by the keys of its `before`/`after` (`step_kind`) and
the ids among them (`step_key`). Each undo function takes the recorded Action and a ReleaseContext and returns the
release's entry for it: `released` with the state it found as `before` and the state it left as `after` (both
carry the step's ids, so a later release knows the step is done), or `skipped` with a "conflict:" reason when the
target is no longer as Firebreak left it (nothing is written then).
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from firebreak.blocking import nacl
from firebreak.blocking.blocklist import Blocklist
from firebreak.containment import bucket as buckets
from firebreak.containment.credentials import (
    INSTANCE_SESSIONS_POLICY_PREFIX,
    REVOKE_SESSIONS_POLICY,
    USER_DENY_POLICY,
    inline_policy,
)
from firebreak.containment.database import database_groups
from firebreak.containment.function import reserved_concurrency
from firebreak.containment.isolation import ORIGINAL_GROUP_TAG_KEYS, describe_instance
from firebreak.core.aws import error_code
from firebreak.core.models import Action, ActionType, Outcome, utc_now
from firebreak.core.waf import IpSetRef, client_for, present_addresses, remove_addresses


@dataclass(frozen=True)
class ReleaseContext:
    """What an undo function may use: clients for the incident's account and region, and the block-list holders."""

    incident_id: str
    client: Callable[[str], Any]
    # CIDR -> other incidents whose record still holds it in the block lists.
    held_elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # CIDRs some Firebreak incident (this one included) added to the block lists itself.
    added_by_firebreak: frozenset[str] = frozenset()
    # The block list's truth (blocking.blocklist): a released CIDR leaves it, or the next sweep would put it back.
    blocklist: Blocklist | None = None
    network_acl_rules: tuple[int, int] = (71, 80)
    now: Callable[[], float] = time.time
    # protect-bucket: "<bucket> <ARN>" -> other incidents whose Firebreak bucket-policy statement still relies on it.
    denied_elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


Undo = Callable[[Action, ReleaseContext], Action]
# The inline policies revoke-credentials and contain-instance write; release touches no other policy name.
FIREBREAK_POLICIES = frozenset({USER_DENY_POLICY, REVOKE_SESSIONS_POLICY})

# The key of a recorded state that says which step it is, in the order they are tested.
_KINDS: tuple[tuple[str, str], ...] = (
    ("ipset", "block"),
    ("network_interface", "interface"),
    ("disable_api_termination", "termination_protection"),
    ("shutdown_behavior", "shutdown_behavior"),
    ("auto_scaling_group", "auto_scaling"),
    ("target_group", "target_group"),
    ("snapshot", "snapshot"),
    ("volume", "snapshot"),
    ("security_group", "firebreak_group"),
    ("policy_name", "inline_policy"),
    ("access_key_id", "access_key"),
    ("login_profile", "login_profile"),
    ("tags", "tags"),
    # contain-function
    ("evidence_version", "function_evidence"),
    ("reserved_concurrency", "reserved_concurrency"),
    # protect-bucket: told apart by the bucket and, in the bucket policy, by Firebreak's statement
    ("public_access_block", "public_access_block"),
    ("logging", "bucket_logging"),
    ("policy_statement", "bucket_policy_statement"),
    # contain-database: the database's groups, and its snapshot (evidence, kept)
    ("db_security_groups", "db_quarantine"),
    ("db_snapshot", "db_snapshot"),
    # contain-task: a task's stop, told apart by its recorded desired status
    ("desired_status", "task_stop"),
)
_IDS: tuple[str, ...] = (
    "network_interface",
    "target_group",
    "user",
    "role",
    "policy_name",
    "access_key_id",
    "security_group",
    "function",
    "bucket",
    "policy_statement",
)


def step_kind(action: Action) -> str:
    """Which kind of step an action records (or a release entry undid), from the keys of its state."""
    if action.type is ActionType.BLOCK_IP:
        return "block"  # one step per CIDR, whatever state an entry about it carries
    state = {**action.before, **action.after}
    return next((kind for key, kind in _KINDS if key in state), "")


def step_key(action: Action) -> str:
    """The step within its target: the kind and the ids it acts on (an interface, a target group, a policy)."""
    state = {**action.before, **action.after}
    return "|".join([step_kind(action), *(f"{key}={state[key]}" for key in _IDS if key in state)])


def kept(action: Action) -> str | None:
    """Why release leaves what this step made, or None when it is to be undone."""
    kind = step_kind(action)
    if kind == "snapshot":
        return f"snapshot {action.after.get('snapshot', '')} of {action.after.get('volume', '')} (evidence)".strip()
    if kind == "db_snapshot":
        return f"snapshot {action.after.get('db_snapshot', '')} of {action.after.get('database', '')} (evidence)"
    if kind == "firebreak_group":
        # One quarantine group per VPC holds every isolated instance there, whichever incident isolated it.
        return f"Firebreak group {action.after.get('security_group', '')} (shared by every incident in its VPC)"
    if kind == "function_evidence":
        version, function = action.after.get("evidence_version", ""), action.after.get("function", "")
        return f"version {version} of function {function} (evidence)"
    return None


def differences(found: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The keys of `expected` whose value the target no longer has, described for a person."""
    return [f"{key} is {found.get(key)!r}, not {value!r}" for key, value in expected.items() if found.get(key) != value]


def step_ids(action: Action) -> dict[str, Any]:
    """The ids of the step, and the key that says its kind (valued None): what every release entry about it carries."""
    state = {**action.before, **action.after}
    ids = {key: state[key] for key in _IDS if key in state}
    marker = next((key for key, _ in _KINDS if key in state), None)
    return ids if marker is None or marker in ids else {**ids, marker: None}


def conflict(action: Action, found: Mapping[str, Any], problems: list[str]) -> Action:
    reason = "conflict: changed since Firebreak acted (" + "; ".join(problems) + "); left as it is"
    state = {**step_ids(action), **found}
    return Action(action.type, action.target, Outcome.SKIPPED, reason, state, state, utc_now())


def released(action: Action, found: Mapping[str, Any], left: Mapping[str, Any], reason: str) -> Action:
    ids = step_ids(action)
    return Action(action.type, action.target, Outcome.RELEASED, reason, {**ids, **found}, {**ids, **left}, utc_now())


def undo(action: Action, context: ReleaseContext) -> Action:
    """The undo function the step's kind selects; a record shape no function knows is left for a person."""
    function = (TASK_UNDO if action.type is ActionType.CONTAIN_TASK else UNDO).get(step_kind(action))
    if function is None:
        reason = f"no undo for a {action.type.value} step recorded as {sorted(action.after)}: check it by hand"
        return Action(action.type, action.target, Outcome.SKIPPED, reason, at=utc_now())
    return function(action, context)


# --- block_ip -----------------------------------------------------------------------------------------------------


def undo_block_ip(action: Action, context: ReleaseContext) -> Action:
    """Take the CIDR out of the block list and its IPSets unless another incident still holds it or a person put it
    there; a network ACL entry goes with its CIDR's block list item."""
    if "network_acl" in action.after:
        return _undo_network_acl(action, context)
    arns = list(action.after.get("ipsets") or [action.after["ipset"]])
    ipsets = [IpSetRef.from_arn(arn) for arn in arns]
    cidr = ipaddress.ip_network(action.target, strict=False).compressed
    # The block lists live in the security account and the stack's Region, wherever the incident happened.
    wafs = {ipset.arn: client_for(ipset) for ipset in ipsets}
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


def undo_interface(action: Action, context: ReleaseContext) -> Action:
    """The interface back in its own groups, and the tags where isolation kept them removed."""
    ec2 = context.client("ec2")
    eni = action.after["network_interface"]
    described = ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": [eni]}])
    interfaces = described["NetworkInterfaces"]
    groups = sorted(group["GroupId"] for group in interfaces[0].get("Groups", [])) if interfaces else None
    found = {"security_groups": groups}
    problems = differences(found, {"security_groups": sorted(action.after["security_groups"])})
    if problems:
        return conflict(action, found, problems)
    originals = list(action.before["security_groups"])
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=originals)
    bookkeeping = [tag["Key"] for tag in interfaces[0].get("TagSet", []) if tag["Key"] in ORIGINAL_GROUP_TAG_KEYS]
    if bookkeeping:
        ec2.delete_tags(Resources=[eni], Tags=[{"Key": key} for key in bookkeeping])
    return released(action, found, {"security_groups": originals}, f"interface {eni} back in {', '.join(originals)}")


def undo_termination_protection(action: Action, context: ReleaseContext) -> Action:
    ec2, instance_id = context.client("ec2"), action.target
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    found = {"disable_api_termination": value["DisableApiTermination"]["Value"]}
    problems = differences(found, {"disable_api_termination": action.after["disable_api_termination"]})
    if problems:
        return conflict(action, found, problems)
    protected = bool(action.before["disable_api_termination"])
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": protected})
    left = {"disable_api_termination": protected}
    return released(action, found, left, f"termination protection back {'on' if protected else 'off'}")


def undo_shutdown_behavior(action: Action, context: ReleaseContext) -> Action:
    ec2, instance_id = context.client("ec2"), action.target
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    found = {"shutdown_behavior": value["InstanceInitiatedShutdownBehavior"]["Value"]}
    problems = differences(found, {"shutdown_behavior": action.after["shutdown_behavior"]})
    if problems:
        return conflict(action, found, problems)
    behavior = str(action.before["shutdown_behavior"])
    # The Attribute/Value form: moto ignores InstanceInitiatedShutdownBehavior={"Value": ...}; EC2 takes both.
    ec2.modify_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior", Value=behavior)
    return released(action, found, {"shutdown_behavior": behavior}, f"shutdown behaviour back to {behavior}")


def undo_auto_scaling(action: Action, context: ReleaseContext) -> Action:
    """Back in its Auto Scaling group; AttachInstances raises desired capacity by one, so the replacement stays."""
    autoscaling, instance_id = context.client("autoscaling"), action.target
    members = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    found = {"auto_scaling_group": next((m["AutoScalingGroupName"] for m in members), None)}
    problems = differences(found, {"auto_scaling_group": None})
    if problems:
        return conflict(action, found, problems)
    group = str(action.before["auto_scaling_group"])
    autoscaling.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName=group)
    reason = (
        f"re-attached to Auto Scaling group {group}; its desired capacity rose by one, so the replacement it launched "
        "stays (Firebreak never terminates an instance): scale it in by hand if it is not wanted"
    )
    return released(action, found, {"auto_scaling_group": group}, reason)


def undo_target_group(action: Action, context: ReleaseContext) -> Action:
    """Registered again as the same targets (id, port, zone); a draining target counts as deregistered."""
    elbv2, arn = context.client("elbv2"), action.after["target_group"]
    targets = [dict(target) for target in action.before["targets"]]
    ids = {str(target["Id"]) for target in targets}
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    registered = [
        dict(d["Target"])
        for d in health
        if d["Target"]["Id"] in ids and d.get("TargetHealth", {}).get("State") != "draining"
    ]
    found = {"targets": registered}
    problems = differences(found, {"targets": []})
    if problems:
        return conflict(action, found, problems)
    elbv2.register_targets(TargetGroupArn=arn, Targets=targets)
    return released(action, found, {"targets": targets}, f"registered again with target group {arn.split('/')[-2]}")


def undo_tags(action: Action, context: ReleaseContext) -> Action:
    """The instance's Firebreak tags back to what they were: removed, or an earlier incident's values put back."""
    ec2, instance_id = context.client("ec2"), action.target
    instance = describe_instance(ec2, instance_id)
    wanted: Mapping[str, Any] = action.after["tags"]
    found = {"tags": {key: instance.tag(key) for key in wanted}}
    problems = differences(found, {"tags": dict(wanted)})
    if problems:
        return conflict(action, found, problems)
    before: Mapping[str, Any] = action.before["tags"]
    removed = [key for key in wanted if before.get(key) is None]
    restored = {key: str(value) for key, value in before.items() if value is not None}
    if removed:
        ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": key} for key in removed])
    if restored:
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": key, "Value": value} for key, value in restored.items()])
    reason = "removed tags " + ", ".join(removed) if removed else "tags of the earlier incident put back"
    return released(action, found, {"tags": dict(before)}, reason)


# --- revoke_credentials -------------------------------------------------------------------------------------------


def undo_access_key(action: Action, context: ReleaseContext) -> Action:
    """The key active again, only if it was active when Firebreak deactivated it."""
    iam = context.client("iam")
    user, key = action.after["user"], action.after["access_key_id"]
    try:
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        keys = []
    found = {"status": next((k["Status"] for k in keys if k["AccessKeyId"] == key), None)}
    problems = differences(found, {"status": action.after["status"]})
    if problems:
        return conflict(action, found, problems)
    if action.before.get("status") != "Active":
        return released(action, found, found, f"left {found['status']}: it was not active before Firebreak")
    iam.update_access_key(UserName=user, AccessKeyId=key, Status="Active")
    return released(action, found, {"status": "Active"}, f"access key of user {user} active again")


def undo_inline_policy(action: Action, context: ReleaseContext) -> Action:
    """Firebreak's deny policy deleted, or the document that was there before it put back."""
    iam = context.client("iam")
    kind: Literal["user", "role"] = "user" if "user" in action.after else "role"
    name, policy = str(action.after[kind]), str(action.after["policy_name"])
    previous = action.before.get("document")
    refusal = not_firebreaks(policy, previous)
    if refusal is not None:
        return conflict(action, {"document": "not read"}, [refusal])
    current = inline_policy(iam, kind, name, policy)
    found = {"document": current}
    if current != action.after["document"]:
        state = "is gone" if current is None else "is no longer the document Firebreak attached"
        return conflict(action, found, [f"{policy} on {kind} {name} {state}"])
    if previous is not None:
        text = json.dumps(previous, separators=(",", ":"))
        if kind == "user":
            iam.put_user_policy(UserName=name, PolicyName=policy, PolicyDocument=text)
        else:
            iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=text)
        return released(
            action, found, {"document": previous}, f"{policy} on {kind} {name} back to its earlier document"
        )
    if kind == "user":
        iam.delete_user_policy(UserName=name, PolicyName=policy)
        return released(action, found, {"document": None}, f"deleted {policy} from user {name}")
    iam.delete_role_policy(RoleName=name, PolicyName=policy)
    reason = f"deleted {policy} from role {name}: sessions issued before the revocation work again until they expire"
    return released(action, found, {"document": None}, reason)


def not_firebreaks(policy: str, document: Any) -> str | None:
    """Why release must not write this policy back; None when it is Firebreak's own shape.

    Release takes the name and the earlier document from the incident record, so whoever can write the incident
    table could otherwise have release put any policy on any principal: only Firebreak's policy names, and only
    documents of Deny statements, ever go back.
    """
    if policy not in FIREBREAK_POLICIES and not policy.startswith(INSTANCE_SESSIONS_POLICY_PREFIX):
        return f"{policy} is not a policy Firebreak writes; release only restores Firebreak's own policies"
    if document is None:
        return None
    statements = document.get("Statement") if isinstance(document, dict) else None
    statements = [statements] if isinstance(statements, dict) else statements
    if not statements or not all(isinstance(s, dict) and s.get("Effect") == "Deny" for s in statements):
        return f"the earlier document of {policy} on the record is not Deny statements only; release will not write it"
    return None


def undo_login_profile(action: Action, context: ReleaseContext) -> Action:
    """A deleted console password cannot be restored; release says so until a person sets a new one."""
    iam, user = context.client("iam"), action.after["user"]
    try:
        iam.get_login_profile(UserName=user)
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        reason = (
            f"cannot be undone: Firebreak deleted the console password of user {user}; "
            "set a new one (iam create-login-profile) if the user is to sign in again"
        )
        return Action(action.type, action.target, Outcome.SKIPPED, reason, action.after, action.after, utc_now())
    found = {"login_profile": True}
    return released(action, found, found, f"user {user} has a console password again, set since by a person")


# --- protect_bucket -----------------------------------------------------------------------------------------------


def undo_public_access_block(action: Action, context: ReleaseContext) -> Action:
    """The bucket's Block Public Access back to its earlier settings (or none of its own), unless changed since."""
    s3, bucket = context.client("s3"), str(action.after["bucket"])
    found = {"public_access_block": buckets.read_public_access_block(s3, bucket)}
    problems = differences(found, {"public_access_block": action.after["public_access_block"]})
    if problems:
        return conflict(action, found, problems)
    previous = action.before.get("public_access_block")
    if previous is None:
        s3.delete_public_access_block(Bucket=bucket)
        return released(action, found, {"public_access_block": None}, f"Block Public Access of {bucket} removed again")
    settings = {key: bool(previous.get(key)) for key in buckets.ALL_BLOCKED}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings)
    off = ", ".join(key for key, value in settings.items() if not value)
    return released(
        action, found, {"public_access_block": settings}, f"Block Public Access of {bucket}: {off} off again"
    )


def undo_bucket_logging(action: Action, context: ReleaseContext) -> Action:
    """Server access logging back as it was (off, most often), unless someone changed it since."""
    s3, bucket = context.client("s3"), str(action.after["bucket"])
    found = {"logging": buckets.read_logging(s3, bucket)}
    problems = differences(found, {"logging": action.after["logging"]})
    if problems:
        return conflict(action, found, problems)
    previous = action.before.get("logging")
    buckets.put_logging(s3, bucket, previous)
    state = "off again, as it was" if previous is None else f"back into {previous['TargetBucket']}"
    return released(action, found, {"logging": previous}, f"server access logging of {bucket} {state}")


def undo_bucket_policy_statement(action: Action, context: ReleaseContext) -> Action:
    """Take out of Firebreak's statement what this incident added; the statement goes once it names nothing."""
    s3, bucket, sid = context.client("s3"), str(action.after["bucket"]), str(action.after["policy_statement"])
    if sid not in buckets.FIREBREAK_SIDS:
        return conflict(action, {"policy_statement": sid}, [f"{sid} is not a statement Firebreak writes"])
    kind = "principals" if sid == buckets.DENY_PRINCIPALS_SID else "objects"
    listed = buckets.denied_principals if kind == "principals" else buckets.denied_objects
    # What this incident asked to deny (applied, or found denied already and so shared), else what it added.
    added = sorted(action.after.get("denies") or set(action.after.get(kind) or ()) - set(action.before.get(kind) or ()))
    policy = buckets.read_policy(s3, bucket)
    present = listed(policy)
    found = {kind: present}
    gone = [value for value in added if value not in present]
    if gone:
        return conflict(action, found, [f"statement {sid} no longer denies {', '.join(gone)}"])
    held = {
        value: context.denied_elsewhere[f"{bucket} {value}"]
        for value in added
        if f"{bucket} {value}" in context.denied_elsewhere
    }
    taken = [value for value in added if value not in held]
    kept = "".join(f"; {value} stays: incident {', '.join(ids)} relies on it" for value, ids in held.items())
    if not taken:
        return released(action, found, found, f"nothing taken out of {sid} on {bucket}{kept}")
    buckets.write_policy(s3, bucket, buckets.without(policy, sid, taken))
    left = [value for value in present if value not in taken]
    state = f"it still denies {', '.join(left)}" if left else "it named nothing else, so it is gone"
    reason = f"{', '.join(taken)} taken out of {sid} on {bucket}; {state}{kept}"
    return released(action, found, {kind: left}, reason)


# --- contain_function ---------------------------------------------------------------------------------------------


def undo_reserved_concurrency(action: Action, context: ReleaseContext) -> Action:
    """The function's reserved concurrency back to what it was, or none reserved again, if it is still 0."""
    client, name = context.client("lambda"), str(action.after["function"])
    try:
        current = reserved_concurrency(client, name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return conflict(action, {"reserved_concurrency": None}, [f"function {name} no longer exists"])
    found = {"reserved_concurrency": current}
    problems = differences(found, {"reserved_concurrency": action.after["reserved_concurrency"]})
    if problems:
        return conflict(action, found, problems)
    previous = action.before.get("reserved_concurrency")
    if previous is None:
        client.delete_function_concurrency(FunctionName=name)
        reason = f"function {name} has no reserved concurrency again: it shares the account's pool and can be invoked"
    else:
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(previous))
        reason = f"reserved concurrency of function {name} back to {previous}: it can be invoked again"
    return released(action, found, {"reserved_concurrency": previous}, reason)


# --- contain_database -----------------------------------------------------------------------------------------------


def undo_database_groups(action: Action, context: ReleaseContext) -> Action:
    """The database back in its own groups, and the tags where the quarantine kept them removed."""
    rds = context.client("rds")
    target, cluster = str(action.after["database"]), bool(action.after.get("cluster"))
    arn, groups, tags = database_groups(rds, target, cluster)
    found = {"db_security_groups": None if groups is None else sorted(groups)}
    problems = differences(found, {"db_security_groups": sorted(action.after["db_security_groups"])})
    if problems:
        return conflict(action, found, problems)
    originals = [str(group) for group in action.before["db_security_groups"]]
    if cluster:
        rds.modify_db_cluster(DBClusterIdentifier=target, VpcSecurityGroupIds=originals, ApplyImmediately=True)
    else:
        rds.modify_db_instance(DBInstanceIdentifier=target, VpcSecurityGroupIds=originals, ApplyImmediately=True)
    bookkeeping = [key for key in tags if key in ORIGINAL_GROUP_TAG_KEYS]
    if bookkeeping:
        rds.remove_tags_from_resource(ResourceName=arn, TagKeys=bookkeeping)
    kind = "cluster" if cluster else "DB instance"
    return released(action, found, {"db_security_groups": originals}, f"{kind} {target} back in {', '.join(originals)}")


# --- contain_task -------------------------------------------------------------------------------------------------

TASK_CANNOT_RESTART = (
    "a stopped ECS task cannot be restarted: ECS only starts new tasks (new id, new interface); its service, if "
    "any, has started one from the same task definition, or a person runs one (aws ecs run-task) if it is wanted"
)


def undo_task_interface(action: Action, context: ReleaseContext) -> Action:
    """The task's interface back in its own groups, as an instance's; gone with a stopped task, there is none."""
    eni = action.after["network_interface"]
    described = context.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": [eni]}]
    )
    if not described["NetworkInterfaces"]:
        reason = f"cannot be undone: interface {eni} is gone with the task; {TASK_CANNOT_RESTART}"
        return Action(action.type, action.target, Outcome.SKIPPED, reason, action.after, action.after, utc_now())
    return undo_interface(action, context)


def undo_task_stop(action: Action, context: ReleaseContext) -> Action:
    reason = f"cannot be undone: {TASK_CANNOT_RESTART}"
    return Action(action.type, action.target, Outcome.SKIPPED, reason, action.after, action.after, utc_now())


TASK_UNDO: Mapping[str, Undo] = {"interface": undo_task_interface, "task_stop": undo_task_stop}


UNDO: Mapping[str, Undo] = {
    "block": undo_block_ip,
    "interface": undo_interface,
    "termination_protection": undo_termination_protection,
    "shutdown_behavior": undo_shutdown_behavior,
    "auto_scaling": undo_auto_scaling,
    "target_group": undo_target_group,
    "tags": undo_tags,
    "access_key": undo_access_key,
    "inline_policy": undo_inline_policy,
    "login_profile": undo_login_profile,
    "public_access_block": undo_public_access_block,
    "bucket_logging": undo_bucket_logging,
    "bucket_policy_statement": undo_bucket_policy_statement,
    "reserved_concurrency": undo_reserved_concurrency,
    "db_quarantine": undo_database_groups,
}
