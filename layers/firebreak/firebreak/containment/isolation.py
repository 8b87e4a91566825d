"""Network isolation of an EC2 instance: what it is now, the per-VPC Firebreak groups, and the per-interface swap.

Changing an interface's groups does not end the connections its old groups tracked. Every interface therefore goes
first to an allow-all group, which makes its flows untracked (judged packet by packet), and then to the quarantine
group alone, which has no rules, so those flows stop at their next packet. Groups are changed per interface with
ModifyNetworkInterfaceAttribute: EC2 rejects ModifyInstanceAttribute(Groups) on an instance with several interfaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from firebreak.core.aws import describe_error, error_code, is_transient
from firebreak.core.errors import InstanceNotFound, MemberRoleUnavailable, QuarantineGroupUnavailable
from firebreak.core.members import playbook_client
from firebreak.core.models import (
    EXEMPT_TAG,
    Action,
    ActionType,
    Incident,
    Outcome,
    PlaybookRequest,
    action_of,
    says_exempt,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import IpPermissionTypeDef, TagTypeDef

PURPOSE_TAG = "firebreak:purpose"
ORIGINAL_GROUPS_TAG = "firebreak:original-groups"
# Up to 16 groups of 20 characters do not fit one 256-character tag value; two always do.
ORIGINAL_GROUP_TAG_KEYS = (ORIGINAL_GROUPS_TAG, f"{ORIGINAL_GROUPS_TAG}-2")
TAG_VALUE_LIMIT = 256
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
# Rule writes two executions may race on: the loser re-reads the group instead of failing.
_RULE_RACE_CODES = frozenset({"InvalidPermission.NotFound", "InvalidPermission.Duplicate"})
_CONVERGE_ATTEMPTS = 4
_GONE_STATES = frozenset({"shutting-down", "terminated"})
_NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
# Finding types whose remote address commands or receives from the instance: the address is the attacker's.
_COMMAND_AND_CONTROL = ("C&CActivity", "BlackholeTraffic", "DropPoint", "MaliciousIPCaller")


class IsolationStatus(StrEnum):
    ISOLATED = "ISOLATED"
    ALREADY_ISOLATED = "ALREADY_ISOLATED"
    PLANNED = "PLANNED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"
    EXEMPT = "EXEMPT"


# Outcomes after which the playbook stops: nothing of the instance may be touched, so neither are its addresses.
STOPPED = frozenset({IsolationStatus.NOT_FOUND, IsolationStatus.EXEMPT})


@dataclass(frozen=True)
class GroupSpec:
    """A Firebreak security group, one per VPC: its name, its purpose tag and the only rules it may hold."""

    purpose: str
    prefix: str
    description: str
    open_to: frozenset[str]  # CIDRs allowed in and out on every protocol; empty: no rules at all

    def name(self, vpc_id: str) -> str:
        return f"{self.prefix}-{vpc_id}"


QUARANTINE = GroupSpec("quarantine", "firebreak-quarantine", "Firebreak quarantine: no traffic in or out", frozenset())
UNTRACK = GroupSpec("untrack", "firebreak-untrack", "Firebreak: allows all so tracked flows become untracked", ANYWHERE)


@dataclass(frozen=True)
class Interface:
    interface_id: str
    vpc_id: str
    group_ids: tuple[str, ...]
    private_ips: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def recorded_groups(self) -> tuple[str, ...]:
        """The groups Firebreak wrote on the interface before it first changed them; empty when it never did."""
        tags = dict(self.tags)
        return tuple(" ".join(tags.get(key, "") for key in _original_group_keys()).split())


@dataclass(frozen=True)
class Instance:
    """The instance as EC2 describes it now: its state, tags, interfaces in device order, volumes and profile."""

    instance_id: str
    state: str
    tags: tuple[tuple[str, str], ...]
    interfaces: tuple[Interface, ...]
    volume_ids: tuple[str, ...] = ()
    profile_arn: str | None = None

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)

    @property
    def exempt(self) -> bool:
        return says_exempt(self.tag(EXEMPT_TAG))

    @property
    def gone(self) -> bool:
        return self.state in _GONE_STATES

    @property
    def vpc_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(interface.vpc_id for interface in self.interfaces))

    @property
    def private_ips(self) -> tuple[str, ...]:
        return tuple(ip for interface in self.interfaces for ip in interface.private_ips)


@dataclass(frozen=True)
class Group:
    group_id: str
    name: str
    created: bool = False
    rules_changed: int = 0


@dataclass(frozen=True)
class RulePlan:
    revoke_ingress: tuple[str, ...] = ()
    revoke_egress: tuple[str, ...] = ()
    authorize_ingress: tuple[str, ...] = ()
    authorize_egress: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(map(len, (self.revoke_ingress, self.revoke_egress, self.authorize_ingress, self.authorize_egress)))


@dataclass(frozen=True)
class Isolation:
    status: IsolationStatus
    actions: tuple[Action, ...]
    suppressed_reason: str | None = None


# --- reading the instance ------------------------------------------------------------------------------------------


def describe_instance(ec2: EC2Client, instance_id: str) -> Instance:
    """The instance now; InstanceNotFound when EC2 does not know it."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error_code(error) in _NOT_FOUND_CODES:
            raise InstanceNotFound(f"instance {instance_id} does not exist ({error_code(error)})") from error
        raise
    found = [instance for reservation in reservations for instance in reservation.get("Instances", [])]
    if not found:
        raise InstanceNotFound(f"instance {instance_id} does not exist")
    data = found[0]
    interfaces = sorted(
        data.get("NetworkInterfaces", []), key=lambda eni: eni.get("Attachment", {}).get("DeviceIndex", 0)
    )
    return Instance(
        instance_id=instance_id,
        state=data.get("State", {}).get("Name", "unknown"),
        tags=tuple((tag["Key"], tag["Value"]) for tag in data.get("Tags", [])),
        interfaces=tuple(
            Interface(
                interface_id=eni["NetworkInterfaceId"],
                vpc_id=eni.get("VpcId", ""),
                group_ids=tuple(group["GroupId"] for group in eni.get("Groups", [])),
                private_ips=tuple(ip["PrivateIpAddress"] for ip in eni.get("PrivateIpAddresses", [])),
            )
            for eni in interfaces
        ),
        volume_ids=tuple(
            mapping["Ebs"]["VolumeId"] for mapping in data.get("BlockDeviceMappings", []) if "Ebs" in mapping
        ),
        profile_arn=data.get("IamInstanceProfile", {}).get("Arn"),
    )


def with_interface_tags(ec2: EC2Client, instance: Instance) -> Instance:
    """The instance with each interface's tags, where Firebreak keeps the groups an interface had before it."""
    ids = [interface.interface_id for interface in instance.interfaces]
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=ids)["NetworkInterfaces"]
    tags = {
        eni["NetworkInterfaceId"]: tuple((t["Key"], t["Value"]) for t in eni.get("TagSet", [])) for eni in described
    }
    interfaces = tuple(
        Interface(i.interface_id, i.vpc_id, i.group_ids, i.private_ips, tags.get(i.interface_id, ()))
        for i in instance.interfaces
    )
    return Instance(
        instance.instance_id, instance.state, instance.tags, interfaces, instance.volume_ids, instance.profile_arn
    )


# --- Firebreak's groups ---------------------------------------------------------------------------------------------


def find_group(ec2: EC2Client, spec: GroupSpec, vpc_id: str) -> str | None:
    """The VPC's group of this purpose, by name and tag: a same-named group without Firebreak's tag is not trusted."""
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [spec.name(vpc_id)]},
            {"Name": f"tag:{PURPOSE_TAG}", "Values": [spec.purpose]},
        ]
    )["SecurityGroups"]
    return groups[0]["GroupId"] if groups else None


def ensure_group(ec2: EC2Client, spec: GroupSpec, vpc_id: str) -> Group:
    """The VPC's group of this purpose, created on first use and brought to exactly its rules.

    Two executions may create it at once: the one EC2 refuses (InvalidGroup.Duplicate) reads the other's group.
    """
    name = spec.name(vpc_id)
    group_id = find_group(ec2, spec, vpc_id)
    created = False
    if group_id is None:
        try:
            group_id = ec2.create_security_group(
                GroupName=name,
                Description=spec.description,
                VpcId=vpc_id,
                TagSpecifications=[
                    {
                        "ResourceType": "security-group",
                        "Tags": [{"Key": PURPOSE_TAG, "Value": spec.purpose}, {"Key": "Name", "Value": name}],
                    }
                ],
            )["GroupId"]
            created = True
        except ClientError as error:
            if error_code(error) != "InvalidGroup.Duplicate":
                raise
            group_id = find_group(ec2, spec, vpc_id)
            if group_id is None:
                raise QuarantineGroupUnavailable(
                    f"{vpc_id} has a security group named {name} without the tag {PURPOSE_TAG}={spec.purpose}; "
                    "Firebreak did not create it and will not trust it"
                ) from error
    return Group(group_id, name, created, converge_rules(ec2, group_id, spec))


def plan_rules(rules: Iterable[Mapping[str, Any]], spec: GroupSpec) -> RulePlan:
    """What to revoke (rule ids) and authorize (CIDRs) so the group holds exactly the spec's all-traffic rules."""

    def cidr(rule: Mapping[str, Any]) -> str | None:
        value = rule.get("CidrIpv4") or rule.get("CidrIpv6")
        return str(value) if value else None

    def wanted(rule: Mapping[str, Any]) -> bool:
        return rule.get("IpProtocol") == "-1" and cidr(rule) in spec.open_to

    plan: dict[str, tuple[str, ...]] = {}
    listed = list(rules)
    for direction, egress in (("ingress", False), ("egress", True)):
        mine = [rule for rule in listed if bool(rule.get("IsEgress")) is egress]
        plan[f"revoke_{direction}"] = tuple(sorted(str(r["SecurityGroupRuleId"]) for r in mine if not wanted(r)))
        present = {cidr(rule) for rule in mine if wanted(rule)}
        plan[f"authorize_{direction}"] = tuple(sorted(spec.open_to - present))
    return RulePlan(**plan)


def converge_rules(ec2: EC2Client, group_id: str, spec: GroupSpec) -> int:
    """Bring the group to its rules (re-reading when another execution changed them first); the number of changes."""
    changed = 0
    for _ in range(_CONVERGE_ATTEMPTS):
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        plan = plan_rules(rules["SecurityGroupRules"], spec)
        if plan.size == 0:
            return changed
        try:
            _apply(ec2, group_id, plan)
        except ClientError as error:
            if error_code(error) not in _RULE_RACE_CODES:
                raise
            continue
        changed += plan.size
    raise QuarantineGroupUnavailable(f"the rules of {group_id} kept changing while Firebreak set them; not trusted")


def _apply(ec2: EC2Client, group_id: str, plan: RulePlan) -> None:
    if plan.revoke_ingress:
        ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=list(plan.revoke_ingress))
    if plan.revoke_egress:
        ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=list(plan.revoke_egress))
    if plan.authorize_ingress:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[_all_traffic(plan.authorize_ingress)])
    if plan.authorize_egress:
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[_all_traffic(plan.authorize_egress)])


def _all_traffic(cidrs: Sequence[str]) -> IpPermissionTypeDef:
    return {
        "IpProtocol": "-1",
        "IpRanges": [{"CidrIp": cidr} for cidr in cidrs if ":" not in cidr],
        "Ipv6Ranges": [{"CidrIpv6": cidr} for cidr in cidrs if ":" in cidr],
    }


# --- the interfaces -------------------------------------------------------------------------------------------------


def _original_group_keys() -> tuple[str, str]:
    return ORIGINAL_GROUP_TAG_KEYS


def original_group_tags(group_ids: Sequence[str]) -> list[TagTypeDef]:
    """The tags that keep an interface's own groups on the interface itself, space-separated over two values."""
    first: list[str] = []
    rest: list[str] = []
    for group in group_ids:
        target = first if len(" ".join([*first, group])) <= TAG_VALUE_LIMIT and not rest else rest
        target.append(group)
    keys = _original_group_keys()
    return [{"Key": keys[0], "Value": " ".join(first)}, {"Key": keys[1], "Value": " ".join(rest)}]


def original_groups(interface: Interface, firebreak_groups: Iterable[str]) -> tuple[str, ...]:
    """The interface's own groups: what it holds now, unless that is only Firebreak's groups from an earlier run."""
    if interface.recorded_groups and set(interface.group_ids) <= set(firebreak_groups):
        return interface.recorded_groups
    return interface.group_ids


def isolate_interface(
    ec2: EC2Client, instance_id: str, interface: Interface, untrack: Group, quarantine: Group
) -> Action:
    """Allow-all group, then the quarantine group alone; an interface left open by a failure gets its groups back."""
    eni = interface.interface_id
    originals = original_groups(interface, (untrack.group_id, quarantine.group_id))
    before = {"network_interface": eni, "security_groups": list(originals)}
    after = {"network_interface": eni, "security_groups": [quarantine.group_id]}
    if interface.group_ids == (quarantine.group_id,):
        reason = f"interface {eni} already holds only quarantine group {quarantine.group_id}"
        return _action(instance_id, Outcome.ALREADY_APPLIED, reason, before, after)
    try:
        if interface.recorded_groups != originals:
            ec2.create_tags(Resources=[eni], Tags=original_group_tags(originals))
        if interface.group_ids != (untrack.group_id,):
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[untrack.group_id])
    except ClientError as error:
        if is_transient(error):
            raise
        return _action(instance_id, Outcome.FAILED, f"interface {eni} unchanged: {describe_error(error)}", before)
    try:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[quarantine.group_id])
    except ClientError as error:
        restored = _restore(ec2, eni, originals)
        if is_transient(error) and restored:
            raise
        state = "its own groups restored" if restored else f"LEFT OPEN in allow-all group {untrack.group_id}"
        return _action(instance_id, Outcome.FAILED, f"interface {eni} {state}: {describe_error(error)}", before)
    reason = (
        f"interface {eni} moved from {', '.join(originals)} to quarantine group {quarantine.group_id} "
        f"through allow-all group {untrack.group_id}, so its tracked flows are cut"
    )
    return _action(instance_id, Outcome.APPLIED, reason, before, after)


def _restore(ec2: EC2Client, eni: str, groups: Sequence[str]) -> bool:
    try:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=list(groups))
    except ClientError:
        return False
    return True


# --- the instance ---------------------------------------------------------------------------------------------------


def isolate_instance(ec2: EC2Client, instance_id: str, dry_run: bool) -> Isolation:
    """Every interface of the instance into its VPC's quarantine group; the gate first (gone, exempt)."""
    try:
        instance = describe_instance(ec2, instance_id)
    except InstanceNotFound as error:
        return Isolation(IsolationStatus.NOT_FOUND, (_action(instance_id, Outcome.SKIPPED, f"{error}: not isolated"),))
    if instance.gone:
        reason = f"instance {instance_id} is {instance.state}: nothing left to isolate"
        return Isolation(IsolationStatus.NOT_FOUND, (_action(instance_id, Outcome.SKIPPED, reason),))
    if instance.exempt:
        reason = f"instance {instance_id} is tagged {EXEMPT_TAG}=true: Firebreak never touches it"
        skipped = _action(instance_id, Outcome.SKIPPED, reason)
        return Isolation(IsolationStatus.EXEMPT, (skipped,), f"instance tagged {EXEMPT_TAG}=true")
    if not instance.interfaces:
        failed = _action(instance_id, Outcome.FAILED, f"instance {instance_id} has no network interface to isolate")
        return Isolation(IsolationStatus.FAILED, (failed,))
    instance = with_interface_tags(ec2, instance)
    status, actions = isolate_interfaces(ec2, instance_id, instance.interfaces, dry_run)
    return Isolation(status, actions)


def isolate_interfaces(
    ec2: EC2Client, target_id: str, interfaces: Sequence[Interface], dry_run: bool
) -> tuple[IsolationStatus, tuple[Action, ...]]:
    """Interfaces (with their tags) into their VPCs' quarantine groups, or the plan to; any resource's, such as an ECS
    task's. The actions name target_id and are typed isolate_instance: a caller of another type retypes them."""
    actions: list[Action] = []
    for vpc_id in dict.fromkeys(interface.vpc_id for interface in interfaces):
        in_vpc = [interface for interface in interfaces if interface.vpc_id == vpc_id]
        actions += (_plan_vpc if dry_run else _isolate_vpc)(ec2, target_id, vpc_id, in_vpc)
    return _status(actions, dry_run), tuple(actions)


def _isolate_vpc(ec2: EC2Client, instance_id: str, vpc_id: str, interfaces: Sequence[Interface]) -> list[Action]:
    groups: list[tuple[Group, GroupSpec]] = []
    try:
        quarantine = ensure_group(ec2, QUARANTINE, vpc_id)
        groups.append((quarantine, QUARANTINE))
        # An instance already in quarantine needs no allow-all group: nothing of it is tracked any more.
        if all(interface.group_ids == (quarantine.group_id,) for interface in interfaces):
            untrack = quarantine
        else:
            untrack = ensure_group(ec2, UNTRACK, vpc_id)
            groups.append((untrack, UNTRACK))
    except ClientError as error:
        if is_transient(error):
            raise
        return _unchanged(instance_id, interfaces, f"no quarantine group in {vpc_id}: {describe_error(error)}")
    except QuarantineGroupUnavailable as error:
        return _unchanged(instance_id, interfaces, str(error))
    actions = [action for group, spec in groups if (action := _group_action(instance_id, vpc_id, group, spec))]
    return actions + [isolate_interface(ec2, instance_id, i, untrack, quarantine) for i in interfaces]


def _unchanged(instance_id: str, interfaces: Sequence[Interface], why: str) -> list[Action]:
    return [_action(instance_id, Outcome.FAILED, f"interface {i.interface_id} unchanged: {why}") for i in interfaces]


def _group_action(instance_id: str, vpc_id: str, group: Group, spec: GroupSpec) -> Action | None:
    if group.created:
        reason = f"created {spec.purpose} group {group.group_id} ({group.name}) in {vpc_id}"
        return _action(instance_id, Outcome.APPLIED, reason, {}, {"security_group": group.group_id, "vpc": vpc_id})
    if group.rules_changed:
        reason = f"reset {group.rules_changed} rule(s) someone changed on {spec.purpose} group {group.group_id}"
        return _action(instance_id, Outcome.APPLIED, reason, {}, {"security_group": group.group_id})
    return None


def _plan_vpc(ec2: EC2Client, instance_id: str, vpc_id: str, interfaces: Sequence[Interface]) -> list[Action]:
    quarantine = find_group(ec2, QUARANTINE, vpc_id)
    untrack = find_group(ec2, UNTRACK, vpc_id)
    actions: list[Action] = []
    for found, spec, then in (
        (quarantine, QUARANTINE, "RevokeSecurityGroupEgress of its default rule"),
        (untrack, UNTRACK, "AuthorizeSecurityGroupIngress and -Egress of all traffic from 0.0.0.0/0 and ::/0"),
    ):
        if found is None:
            reason = f"would call CreateSecurityGroup(GroupName={spec.name(vpc_id)}, VpcId={vpc_id}), then {then}"
            actions.append(_action(instance_id, Outcome.PLANNED, reason))
    quarantine_ref = quarantine or QUARANTINE.name(vpc_id)
    untrack_ref = untrack or UNTRACK.name(vpc_id)
    for interface in interfaces:
        eni = interface.interface_id
        originals = original_groups(interface, {quarantine_ref, untrack_ref})
        before = {"network_interface": eni, "security_groups": list(originals)}
        after = {"network_interface": eni, "security_groups": [quarantine_ref]}
        if interface.group_ids == (quarantine_ref,):
            reason = f"interface {eni} already holds only quarantine group {quarantine_ref}"
            actions.append(_action(instance_id, Outcome.ALREADY_APPLIED, reason, before, after))
            continue
        reason = (
            f"would call CreateTags(Resources=[{eni}], Tags=[{ORIGINAL_GROUPS_TAG}={' '.join(originals)}]), "
            f"ModifyNetworkInterfaceAttribute(NetworkInterfaceId={eni}, Groups=[{untrack_ref}]), "
            f"then ModifyNetworkInterfaceAttribute(NetworkInterfaceId={eni}, Groups=[{quarantine_ref}])"
        )
        actions.append(_action(instance_id, Outcome.PLANNED, reason, before, after))
    return actions


def _status(actions: Sequence[Action], dry_run: bool) -> IsolationStatus:
    outcomes = {action.outcome for action in actions}
    if Outcome.FAILED in outcomes:
        return IsolationStatus.FAILED
    if outcomes == {Outcome.ALREADY_APPLIED}:
        return IsolationStatus.ALREADY_ISOLATED
    return IsolationStatus.PLANNED if dry_run else IsolationStatus.ISOLATED


_action = partial(action_of, ActionType.ISOLATE_INSTANCE)


# --- the remote addresses -------------------------------------------------------------------------------------------


def addresses_to_block(incident: Incident) -> tuple[tuple[str, ...], tuple[Action, ...]]:
    """The remote addresses that attacked or command the instance; the others (its own destinations) with why not.

    Enrichment and Block Addresses then refuse what must never be blocked (private, allow-listed, over the cap).
    """
    if not incident.remote_ips:
        return (), ()
    commanded = any(marker in incident.finding_type for marker in _COMMAND_AND_CONTROL)
    attacked = (
        incident.direction == "INBOUND"
        or incident.action_type == "PORT_PROBE"
        or (incident.resource_role == "TARGET" and incident.direction != "OUTBOUND")
    )
    if commanded or attacked:
        return incident.remote_ips, ()
    reason = f"the instance reached out to it ({incident.finding_type}): a destination, not the attacker"
    return (), tuple(Action(ActionType.BLOCK_IP, ip, Outcome.SKIPPED, reason) for ip in incident.remote_ips)


# --- the playbook step ----------------------------------------------------------------------------------------------


def isolate(request: PlaybookRequest) -> tuple[Isolation, tuple[str, ...]]:
    """Isolate Instance: the isolation, and the addresses to block unless the instance was not found or is exempt."""
    instance_id = request.incident.instance_id
    if instance_id is None:
        skipped = Action(ActionType.ISOLATE_INSTANCE, "unknown", Outcome.SKIPPED, "the finding names no instance")
        return Isolation(IsolationStatus.NOT_FOUND, (skipped,)), ()
    try:
        ec2 = playbook_client("ec2", request, "isolate_instance")
    except MemberRoleUnavailable as error:
        # The shared block lists need no member role: the addresses are still blocked below.
        failed = Action(ActionType.ISOLATE_INSTANCE, instance_id, Outcome.FAILED, f"not isolated: {error}")
        isolation = Isolation(IsolationStatus.FAILED, (failed,))
    else:
        isolation = isolate_instance(ec2, instance_id, request.dry_run)
    if isolation.status in STOPPED:
        return isolation, ()
    addresses, not_blocked = addresses_to_block(request.incident)
    return Isolation(isolation.status, isolation.actions + not_blocked, isolation.suppressed_reason), addresses
