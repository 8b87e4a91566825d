"""Network isolation on moto: Firebreak's groups per VPC, the two-step swap per interface, the gate, the plan."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.containment import isolation
from firebreak.containment.isolation import (
    QUARANTINE,
    UNTRACK,
    Interface,
    IsolationStatus,
    addresses_to_block,
    ensure_group,
    isolate_instance,
    original_group_tags,
    plan_rules,
)
from firebreak.core.errors import QuarantineGroupUnavailable
from firebreak.core.models import Outcome
from firebreak.triage.findings import normalise
from firebreak_local.world import World
from tests.support import load_event

ORIGINALS = [["sg-0a1b2c3d4e5f60001"], ["sg-0a1b2c3d4e5f60002", "sg-0a1b2c3d4e5f60003"], ["sg-0a1b2c3d4e5f60009"]]


@pytest.fixture
def ec2(aws: None) -> Any:
    return boto3.client("ec2", region_name="us-east-1")


@pytest.fixture
def world(ec2: Any) -> World:
    return World(ec2, boto3.client("iam", region_name="us-east-1"))


def three_interface_instance(world: World) -> str:
    """A seeded instance with three interfaces in one VPC, each with the groups of ORIGINALS; its emulator id."""
    event = load_event("eventbridge/guardduty_crypto_mining")
    interfaces = event["detail"]["resource"]["instanceDetails"]["networkInterfaces"]
    third = copy.deepcopy(interfaces[1])
    third.update(
        networkInterfaceId="eni-0f1e2d3c4b5a60009",
        subnetId="subnet-0a1b2c3d4e5f60009",
        securityGroups=[{"groupName": "db", "groupId": "sg-0a1b2c3d4e5f60009"}],
    )
    interfaces.append(third)
    instance_id: str = world.seed(event)["detail"]["resource"]["instanceDetails"]["instanceId"]
    return instance_id


def groups_by_interface(ec2: Any, instance_id: str) -> list[list[str]]:
    interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    ordered = sorted(interfaces["NetworkInterfaces"], key=lambda eni: eni["Attachment"]["DeviceIndex"])
    return [sorted(group["GroupId"] for group in eni["Groups"]) for eni in ordered]


def as_finding(world: World, groups: list[list[str]]) -> list[list[str]]:
    return [sorted(world.finding_id(group) for group in eni) for eni in groups]


def rules(ec2: Any, group_id: str) -> list[tuple[bool, str, str]]:
    listed = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return sorted(
        (r["IsEgress"], r["IpProtocol"], r.get("CidrIpv4") or r.get("CidrIpv6")) for r in listed["SecurityGroupRules"]
    )


def failing(ec2: Any, code: str, when: Callable[[dict[str, Any]], bool]) -> None:
    """Make ec2.modify_network_interface_attribute raise `code` for the calls `when` picks; the rest go through."""
    real = ec2.modify_network_interface_attribute

    def modify(**kwargs: Any) -> Any:
        if when(kwargs):
            raise ClientError({"Error": {"Code": code, "Message": "forced"}}, "ModifyNetworkInterfaceAttribute")
        return real(**kwargs)

    ec2.modify_network_interface_attribute = modify


# --- rules ----------------------------------------------------------------------------------------------------------


def test_quarantine_plan_revokes_every_rule_and_authorizes_none() -> None:
    # GIVEN a new group's default egress rule, an IPv6 egress rule and an SSH ingress rule
    present = [
        {"SecurityGroupRuleId": "sgr-1", "IsEgress": True, "IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"},
        {"SecurityGroupRuleId": "sgr-2", "IsEgress": True, "IpProtocol": "-1", "CidrIpv6": "::/0"},
        {"SecurityGroupRuleId": "sgr-3", "IsEgress": False, "IpProtocol": "tcp", "CidrIpv4": "10.0.0.0/8"},
    ]

    # WHEN the quarantine group's plan is made
    plan = plan_rules(present, QUARANTINE)

    # THEN all three go and nothing comes
    assert (plan.revoke_ingress, plan.revoke_egress) == (("sgr-3",), ("sgr-1", "sgr-2"))
    assert (plan.authorize_ingress, plan.authorize_egress) == ((), ())


def test_untrack_plan_keeps_all_traffic_rules_adds_missing_families_and_drops_narrow_rules() -> None:
    # GIVEN a group with the default IPv4 egress and a narrow ingress rule
    present = [
        {"SecurityGroupRuleId": "sgr-1", "IsEgress": True, "IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"},
        {"SecurityGroupRuleId": "sgr-2", "IsEgress": False, "IpProtocol": "tcp", "CidrIpv4": "0.0.0.0/0"},
    ]

    # WHEN the untrack group's plan is made
    plan = plan_rules(present, UNTRACK)

    # THEN all traffic is opened both ways for IPv4 and IPv6, and the narrow rule goes
    assert plan.revoke_ingress == ("sgr-2",)
    assert plan.revoke_egress == ()
    assert plan.authorize_ingress == ("0.0.0.0/0", "::/0")
    assert plan.authorize_egress == ("::/0",)


# --- groups ---------------------------------------------------------------------------------------------------------


def test_quarantine_group_is_created_tagged_without_any_rule_even_in_an_ipv6_vpc(ec2: Any) -> None:
    # GIVEN a VPC with an IPv6 block, where a new group gets ::/0 egress as well
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]

    # WHEN its quarantine group is asked for
    group = ensure_group(ec2, QUARANTINE, vpc)

    # THEN it is created, named and tagged for Firebreak, and holds no rule at all
    assert group.created is True
    described = ec2.describe_security_groups(GroupIds=[group.group_id])["SecurityGroups"][0]
    assert described["GroupName"] == f"firebreak-quarantine-{vpc}"
    assert {"Key": "firebreak:purpose", "Value": "quarantine"} in described["Tags"]
    assert rules(ec2, group.group_id) == []


def test_untrack_group_allows_everything_both_ways_for_both_families(ec2: Any) -> None:
    # GIVEN a VPC
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]

    # WHEN its untrack group is asked for
    group = ensure_group(ec2, UNTRACK, vpc)

    # THEN it allows every protocol from and to everywhere, IPv4 and IPv6, and nothing narrower
    assert rules(ec2, group.group_id) == [
        (False, "-1", "0.0.0.0/0"),
        (False, "-1", "::/0"),
        (True, "-1", "0.0.0.0/0"),
        (True, "-1", "::/0"),
    ]


def test_later_incidents_reuse_the_group_and_change_nothing(ec2: Any) -> None:
    # GIVEN a VPC whose quarantine group exists
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    first = ensure_group(ec2, QUARANTINE, vpc)

    # WHEN it is asked for again
    again = ensure_group(ec2, QUARANTINE, vpc)

    # THEN the same group comes back, untouched
    assert (again.group_id, again.created, again.rules_changed) == (first.group_id, False, 0)


def test_rules_someone_added_to_the_quarantine_group_are_removed(ec2: Any) -> None:
    # GIVEN a quarantine group to which someone added an SSH rule
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    group = ensure_group(ec2, QUARANTINE, vpc)
    ec2.authorize_security_group_ingress(
        GroupId=group.group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )

    # WHEN the next incident asks for it
    again = ensure_group(ec2, QUARANTINE, vpc)

    # THEN the rule is gone, and the change is counted
    assert again.rules_changed == 1
    assert rules(ec2, group.group_id) == []


def test_group_created_by_another_execution_in_between_is_read_back(ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN another execution creates the quarantine group after this one looked for it and before it creates it
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    theirs = ensure_group(ec2, QUARANTINE, vpc)
    real_find = isolation.find_group
    looks: list[str] = []

    def find_late(client: Any, spec: Any, vpc_id: str) -> str | None:
        looks.append(vpc_id)
        return None if len(looks) == 1 else real_find(client, spec, vpc_id)

    monkeypatch.setattr(isolation, "find_group", find_late)

    # WHEN this execution asks for the group
    ours = ensure_group(ec2, QUARANTINE, vpc)

    # THEN EC2 refused its create (InvalidGroup.Duplicate) and it uses the other execution's group
    assert len(looks) == 2
    assert (ours.group_id, ours.created) == (theirs.group_id, False)
    assert len(ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]) == 2


def test_same_named_group_without_firebreak_tag_is_not_trusted(ec2: Any) -> None:
    # GIVEN someone created a group with the quarantine group's name, allowing everything, without Firebreak's tag
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName=f"firebreak-quarantine-{vpc}", Description="not ours", VpcId=vpc)

    # WHEN the quarantine group is asked for
    # THEN Firebreak refuses to use it, saying why
    with pytest.raises(QuarantineGroupUnavailable, match="without the tag firebreak:purpose=quarantine"):
        ensure_group(ec2, QUARANTINE, vpc)


# --- interfaces -----------------------------------------------------------------------------------------------------


def test_original_groups_of_an_interface_fit_two_tags_even_with_sixteen_groups() -> None:
    # GIVEN an interface with sixteen groups (the most EC2 allows)
    groups = [f"sg-{index:017x}" for index in range(16)]

    # WHEN they are written as tags and read back
    tags = original_group_tags(groups)
    interface = Interface("eni-1", "vpc-1", ("sg-quarantine",), tags=tuple((t["Key"], t["Value"]) for t in tags))

    # THEN every value fits a tag and the groups come back in order
    assert [tag["Key"] for tag in tags] == ["firebreak:original-groups", "firebreak:original-groups-2"]
    assert all(len(tag["Value"]) <= 256 for tag in tags)
    assert interface.recorded_groups == tuple(groups)


# --- the instance ---------------------------------------------------------------------------------------------------


def test_every_interface_goes_to_quarantine_with_its_original_groups_recorded(ec2: Any, world: World) -> None:
    # GIVEN an instance with three interfaces
    instance_id = three_interface_instance(world)

    # WHEN it is isolated
    result = isolate_instance(ec2, instance_id, dry_run=False)

    # THEN every interface holds only the quarantine group, which has no rule
    assert result.status is IsolationStatus.ISOLATED
    [quarantine] = ec2.describe_security_groups(Filters=[{"Name": "tag:firebreak:purpose", "Values": ["quarantine"]}])[
        "SecurityGroups"
    ]
    assert groups_by_interface(ec2, instance_id) == [[quarantine["GroupId"]]] * 3
    assert rules(ec2, quarantine["GroupId"]) == []

    # AND each interface's action and tags hold its own groups
    swaps = [a for a in result.actions if "network_interface" in a.before]
    assert [a.outcome for a in swaps] == [Outcome.APPLIED] * 3
    assert as_finding(world, [a.before["security_groups"] for a in swaps]) == ORIGINALS
    assert all(a.after["security_groups"] == [quarantine["GroupId"]] for a in swaps)
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[a.before["network_interface"] for a in swaps])
    recorded = {eni["NetworkInterfaceId"]: eni["TagSet"] for eni in described["NetworkInterfaces"]}
    for action in swaps:
        tags = {t["Key"]: t["Value"] for t in recorded[action.before["network_interface"]]}
        assert tags["firebreak:original-groups"].split() == action.before["security_groups"]

    # AND creating the two groups is on the record too
    created = [a.reason for a in result.actions if a.reason.startswith("created")]
    assert [reason.split()[1] for reason in created] == ["quarantine", "untrack"]


def test_isolated_instance_is_already_isolated_and_nothing_is_called_to_change_it(
    ec2: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an isolated instance
    instance_id = three_interface_instance(world)
    isolate_instance(ec2, instance_id, dry_run=False)
    calls: list[str] = []
    for name in ("modify_network_interface_attribute", "create_tags", "create_security_group"):
        monkeypatch.setattr(ec2, name, lambda _name=name, **kwargs: calls.append(_name))

    # WHEN it is isolated again
    result = isolate_instance(ec2, instance_id, dry_run=False)

    # THEN every interface is already applied, with the original groups still on the record, and nothing changed
    assert result.status is IsolationStatus.ALREADY_ISOLATED
    assert [a.outcome for a in result.actions] == [Outcome.ALREADY_APPLIED] * 3
    assert as_finding(world, [a.before["security_groups"] for a in result.actions]) == ORIGINALS
    assert calls == []


def test_failed_quarantine_step_puts_the_interface_back_in_its_own_groups(ec2: Any, world: World) -> None:
    # GIVEN EC2 refuses to put the second interface into the quarantine group (after it took the allow-all group)
    instance_id = three_interface_instance(world)
    second = groups_by_interface(ec2, instance_id)[1]
    interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    eni = next(e["NetworkInterfaceId"] for e in interfaces["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 1)
    quarantine = ensure_group(ec2, QUARANTINE, interfaces["NetworkInterfaces"][0]["VpcId"]).group_id
    failing(ec2, "UnauthorizedOperation", lambda call: call == {"NetworkInterfaceId": eni, "Groups": [quarantine]})

    # WHEN the instance is isolated
    result = isolate_instance(ec2, instance_id, dry_run=False)

    # THEN that interface is back in its own groups, never left open, and says so; the others are isolated
    assert result.status is IsolationStatus.FAILED
    assert groups_by_interface(ec2, instance_id) == [[quarantine], second, [quarantine]]
    [failed] = [a for a in result.actions if a.outcome is Outcome.FAILED]
    assert failed.reason.startswith(f"interface {eni} its own groups restored: UnauthorizedOperation")


def test_throttled_quarantine_step_restores_the_interface_then_raises_for_the_retry(ec2: Any, world: World) -> None:
    # GIVEN EC2 throttles the quarantine step of every interface
    instance_id = three_interface_instance(world)
    before = groups_by_interface(ec2, instance_id)
    vpc = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["VpcId"]
    quarantine = ensure_group(ec2, QUARANTINE, vpc).group_id
    failing(ec2, "RequestLimitExceeded", lambda call: call["Groups"] == [quarantine])

    # WHEN the instance is isolated
    # THEN the error leaves for the state machine's retry, and the interface is in its own groups again
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        isolate_instance(ec2, instance_id, dry_run=False)
    assert groups_by_interface(ec2, instance_id) == before


def test_interface_left_in_the_allow_all_group_by_an_interrupted_run_keeps_its_recorded_originals(
    ec2: Any, world: World
) -> None:
    # GIVEN a run that tagged an interface with its groups, moved it to the allow-all group and then stopped
    instance_id = three_interface_instance(world)
    vpc = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["VpcId"]
    untrack = ensure_group(ec2, UNTRACK, vpc).group_id
    interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    first = next(e for e in interfaces["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 0)
    own = [g["GroupId"] for g in first["Groups"]]
    ec2.create_tags(Resources=[first["NetworkInterfaceId"]], Tags=original_group_tags(own))
    ec2.modify_network_interface_attribute(NetworkInterfaceId=first["NetworkInterfaceId"], Groups=[untrack])

    # WHEN the retry isolates the instance
    result = isolate_instance(ec2, instance_id, dry_run=False)

    # THEN the record shows the interface's own groups, not the allow-all group it was found in
    swap = next(a for a in result.actions if a.before.get("network_interface") == first["NetworkInterfaceId"])
    assert swap.before["security_groups"] == own
    assert swap.outcome is Outcome.APPLIED


def test_dry_run_plans_the_exact_calls_and_changes_nothing(ec2: Any, world: World) -> None:
    # GIVEN an instance with three interfaces
    instance_id = three_interface_instance(world)
    before = groups_by_interface(ec2, instance_id)

    # WHEN its isolation is planned
    result = isolate_instance(ec2, instance_id, dry_run=True)

    # THEN both groups and every swap are planned with their calls, and no group or interface changed
    assert result.status is IsolationStatus.PLANNED
    assert {a.outcome for a in result.actions} == {Outcome.PLANNED}
    reasons = [a.reason for a in result.actions]
    assert reasons[0].startswith("would call CreateSecurityGroup(GroupName=firebreak-quarantine-vpc-")
    assert reasons[1].startswith("would call CreateSecurityGroup(GroupName=firebreak-untrack-vpc-")
    assert all("ModifyNetworkInterfaceAttribute(NetworkInterfaceId=eni-" in reason for reason in reasons[2:])
    assert len(reasons) == 5
    assert groups_by_interface(ec2, instance_id) == before
    names = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    assert not [name for name in names if name.startswith("firebreak-")]


def test_instance_that_does_not_exist_is_not_found(ec2: Any) -> None:
    # GIVEN no such instance
    # WHEN it is isolated
    result = isolate_instance(ec2, "i-0123456789abcdef0", dry_run=False)

    # THEN the outcome says so, with EC2's error code, and nothing failed
    assert result.status is IsolationStatus.NOT_FOUND
    [skipped] = result.actions
    assert skipped.outcome is Outcome.SKIPPED
    assert "InvalidInstanceID.NotFound" in skipped.reason


def test_terminated_instance_is_not_found(ec2: Any, world: World) -> None:
    # GIVEN a terminated instance
    instance_id = three_interface_instance(world)
    ec2.terminate_instances(InstanceIds=[instance_id])

    # WHEN it is isolated
    result = isolate_instance(ec2, instance_id, dry_run=False)

    # THEN it is skipped as gone
    assert result.status is IsolationStatus.NOT_FOUND
    assert "terminated" in result.actions[0].reason


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_instance_tagged_exempt_is_not_touched_and_suppressed(ec2: Any, world: World, value: str) -> None:
    # GIVEN an instance tagged firebreak:exempt=true, however written
    instance_id = three_interface_instance(world)
    before = groups_by_interface(ec2, instance_id)
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "firebreak:exempt", "Value": value}])

    # WHEN it is isolated
    result = isolate_instance(ec2, instance_id, dry_run=False)

    # THEN nothing changed, and the result says it is suppressed
    assert result.status is IsolationStatus.EXEMPT
    assert result.suppressed_reason == "instance tagged firebreak:exempt=true"
    assert groups_by_interface(ec2, instance_id) == before


# --- the addresses to block -----------------------------------------------------------------------------------------


def test_command_and_control_server_is_blocked() -> None:
    # GIVEN an instance calling out to a C&C server
    incident = normalise(load_event("eventbridge/guardduty_c2_outbound"))

    # WHEN the addresses to block are chosen
    addresses, skipped = addresses_to_block(incident)

    # THEN the server is one of them
    assert (addresses, skipped) == (("193.233.20.15",), ())


def test_address_that_attacked_the_instance_is_blocked() -> None:
    # GIVEN an inbound connection from an address to an instance that is acting up
    event = load_event("eventbridge/guardduty_c2_outbound")
    event["detail"]["type"] = "UnauthorizedAccess:EC2/TorIPCaller"
    event["detail"]["service"]["action"]["networkConnectionAction"]["connectionDirection"] = "INBOUND"

    # WHEN the addresses to block are chosen
    addresses, _ = addresses_to_block(normalise(event))

    # THEN the caller is blocked
    assert addresses == ("193.233.20.15",)


def test_address_the_instance_attacked_is_not_blocked_and_the_reason_says_why() -> None:
    # GIVEN an instance port-scanning an address on the internet
    event = load_event("eventbridge/guardduty_c2_outbound")
    event["detail"]["type"] = "Recon:EC2/Portscan"

    # WHEN the addresses to block are chosen
    addresses, skipped = addresses_to_block(normalise(event))

    # THEN its victim is not blocked, and is reported skipped with the reason
    assert addresses == ()
    assert [(a.type.value, a.target, a.outcome) for a in skipped] == [("block_ip", "193.233.20.15", Outcome.SKIPPED)]
    assert "not the attacker" in skipped[0].reason
