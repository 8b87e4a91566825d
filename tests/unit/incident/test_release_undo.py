"""Release against moto: one undo function per action type, the conflict rule, and the incident's status after it."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.nacl import RuleRange, deny
from firebreak.core.models import Action, ActionType, IncidentStatus, Outcome
from firebreak.incident.release import ReleasePlan, release, release_status
from firebreak.incident.undo import ReleaseContext, undo, undo_block_ip

REGION = "us-east-1"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


def context(**kwargs: Any) -> ReleaseContext:
    return ReleaseContext("fb-incident", client, **kwargs)


# --- block_ip -----------------------------------------------------------------------------------------------------


@pytest.fixture
def ipset(aws: None) -> dict[str, str]:
    summary = client("wafv2").create_ip_set(
        Name="blocked-ipv4", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=["198.51.100.1/32"]
    )["Summary"]
    return {"name": summary["Name"], "id": summary["Id"], "arn": summary["ARN"]}


def addresses(ipset: dict[str, str]) -> list[str]:
    return sorted(
        client("wafv2").get_ip_set(Name=ipset["name"], Scope="REGIONAL", Id=ipset["id"])["IPSet"]["Addresses"]
    )


def block(ipset: dict[str, str], cidr: str, outcome: Outcome = Outcome.APPLIED) -> Action:
    """What block_ip records, with the address put in the set as the playbook would."""
    current = addresses(ipset)
    if cidr not in current:
        client("wafv2").update_ip_set(
            Name=ipset["name"],
            Scope="REGIONAL",
            Id=ipset["id"],
            Addresses=[*current, cidr],
            LockToken=client("wafv2").get_ip_set(Name=ipset["name"], Scope="REGIONAL", Id=ipset["id"])["LockToken"],
        )
    before = {"ipset": ipset["arn"], "present": outcome is Outcome.ALREADY_APPLIED}
    return Action(ActionType.BLOCK_IP, cidr, outcome, "added", before, {"ipset": ipset["arn"], "present": True})


def test_block_is_removed_and_the_rest_of_the_set_kept(ipset: dict[str, str]) -> None:
    # GIVEN an incident's block beside a block of someone else's
    action = block(ipset, "203.0.113.7/32")

    # WHEN it is undone
    entry = undo_block_ip(action, context(added_by_firebreak=frozenset({"203.0.113.7/32"})))

    # THEN only that address left the set, and the entry records the state before and after the release
    assert entry.outcome is Outcome.RELEASED
    assert addresses(ipset) == ["198.51.100.1/32"]
    assert (entry.before["present"], entry.after["present"]) == (True, False)


def test_last_address_can_be_removed(aws: None) -> None:
    # GIVEN a set holding only the incident's address
    summary = client("wafv2").create_ip_set(Name="only", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=[])[
        "Summary"
    ]
    only = {"name": summary["Name"], "id": summary["Id"], "arn": summary["ARN"]}
    action = block(only, "203.0.113.7/32")

    # WHEN it is undone
    entry = undo_block_ip(action, context())

    # THEN the set is empty
    assert entry.outcome is Outcome.RELEASED
    assert addresses(only) == []


def test_address_removed_since_is_a_conflict_and_nothing_is_written(ipset: dict[str, str]) -> None:
    # GIVEN a block that a person removed by hand after the incident
    action = block(ipset, "203.0.113.7/32")
    lock = client("wafv2").get_ip_set(Name=ipset["name"], Scope="REGIONAL", Id=ipset["id"])["LockToken"]
    client("wafv2").update_ip_set(
        Name=ipset["name"], Scope="REGIONAL", Id=ipset["id"], Addresses=["198.51.100.1/32"], LockToken=lock
    )

    # WHEN it is undone
    entry = undo_block_ip(action, context())

    # THEN release refuses with the reason, and the set was not written
    assert entry.outcome is Outcome.SKIPPED
    assert entry.reason.startswith("conflict:") and "present is False, not True" in entry.reason
    assert addresses(ipset) == ["198.51.100.1/32"]


def test_address_another_incident_holds_stays_blocked(ipset: dict[str, str]) -> None:
    # GIVEN the same attacker blocked for another incident that is still open
    action = block(ipset, "203.0.113.7/32")

    # WHEN this incident's block is undone
    entry = undo_block_ip(action, context(held_elsewhere={"203.0.113.7/32": ("fb-other",)}))

    # THEN this incident lets go of it but the address stays for the other one
    assert entry.outcome is Outcome.RELEASED
    assert "still held by fb-other" in entry.reason
    assert "203.0.113.7/32" in addresses(ipset)


def test_address_a_person_blocked_before_any_incident_stays(ipset: dict[str, str]) -> None:
    # GIVEN an incident that found its attacker already blocked by a person
    action = block(ipset, "198.51.100.1/32", Outcome.ALREADY_APPLIED)

    # WHEN it is released and no Firebreak incident ever added the address
    entry = undo_block_ip(action, context())

    # THEN the person's block stays
    assert entry.outcome is Outcome.RELEASED
    assert "before Firebreak" in entry.reason
    assert "198.51.100.1/32" in addresses(ipset)


def test_address_left_for_this_incident_by_an_earlier_one_is_removed(ipset: dict[str, str]) -> None:
    # GIVEN an incident relying on a block an earlier, already released incident added and left for it
    action = block(ipset, "203.0.113.7/32", Outcome.ALREADY_APPLIED)

    # WHEN it is released
    entry = undo_block_ip(action, context(added_by_firebreak=frozenset({"203.0.113.7/32"})))

    # THEN the last holder removes it
    assert entry.outcome is Outcome.RELEASED
    assert addresses(ipset) == ["198.51.100.1/32"]


# --- isolate_instance ---------------------------------------------------------------------------------------------


def step(instance: str, before: dict[str, Any], after: dict[str, Any]) -> Action:
    return Action(ActionType.ISOLATE_INSTANCE, instance, Outcome.APPLIED, "contained", before, after)


@pytest.fixture
def isolated(aws: None) -> dict[str, Any]:
    """An instance in an Auto Scaling group and a target group, isolated step by step as contain-instance records."""
    ec2, autoscaling, elbv2 = client("ec2"), client("autoscaling"), client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    quarantine = ec2.create_security_group(GroupName="firebreak-quarantine", Description="q", VpcId=vpc)["GroupId"]
    # Groups on the interface, not the instance: moto adds an instance's own groups to every interface it reports.
    ec2.create_launch_template(
        LaunchTemplateName="web",
        LaunchTemplateData={
            "ImageId": "ami-04681a1dbd79675a5",
            "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [web], "SubnetId": subnet}],
        },
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=1,
        MaxSize=3,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet,
    )
    instance = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    target_group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=target_group, Targets=[{"Id": instance, "Port": 80}])
    eni = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0][
        "NetworkInterfaceId"
    ]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[web])
    ec2.modify_instance_attribute(InstanceId=instance, Attribute="instanceInitiatedShutdownBehavior", Value="terminate")
    # What isolation does, and what it records.
    ec2.create_tags(Resources=[eni], Tags=[{"Key": "firebreak:original-groups", "Value": web}])
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[quarantine])
    ec2.modify_instance_attribute(InstanceId=instance, DisableApiTermination={"Value": True})
    ec2.modify_instance_attribute(InstanceId=instance, Attribute="instanceInitiatedShutdownBehavior", Value="stop")
    autoscaling.detach_instances(
        InstanceIds=[instance], AutoScalingGroupName="web-asg", ShouldDecrementDesiredCapacity=False
    )
    elbv2.deregister_targets(TargetGroupArn=target_group, Targets=[{"Id": instance, "Port": 80}])
    tags = {"firebreak:incident-id": "fb-incident", "firebreak:contained-at": "2026-03-14T13:27:05Z"}
    ec2.create_tags(Resources=[instance], Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
    asg_before = {"auto_scaling_group": "web-asg", "lifecycle_state": "InService", "desired_capacity": 1}
    actions = (
        step(instance, {}, {"security_group": quarantine, "vpc": vpc}),
        step(
            instance,
            {"network_interface": eni, "security_groups": [web]},
            {"network_interface": eni, "security_groups": [quarantine]},
        ),
        step(instance, {"disable_api_termination": False}, {"disable_api_termination": True}),
        step(instance, {"shutdown_behavior": "terminate"}, {"shutdown_behavior": "stop"}),
        step(instance, asg_before, {"auto_scaling_group": None, "desired_capacity": 1}),
        step(
            instance,
            {"target_group": target_group, "targets": [{"Id": instance, "Port": 80}]},
            {"target_group": target_group, "targets": []},
        ),
        step(instance, {"volume": "vol-1"}, {"volume": "vol-1", "snapshot": "snap-1"}),
        step(instance, {"tags": dict.fromkeys(tags)}, {"tags": tags}),
    )
    return {"actions": actions, "eni": eni, "web": web, "instance": instance, "target_group": target_group}


def instance_state(instance: str, eni: str, target_group: str) -> dict[str, Any]:
    ec2 = client("ec2")
    interface = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return {
        "groups": [g["GroupId"] for g in interface["Groups"]],
        "interface_tags": interface.get("TagSet", []),
        "protection": ec2.describe_instance_attribute(InstanceId=instance, Attribute="disableApiTermination")[
            "DisableApiTermination"
        ]["Value"],
        "shutdown": ec2.describe_instance_attribute(InstanceId=instance, Attribute="instanceInitiatedShutdownBehavior")[
            "InstanceInitiatedShutdownBehavior"
        ]["Value"],
        "asg": [
            i["AutoScalingGroupName"]
            for i in client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance])[
                "AutoScalingInstances"
            ]
        ],
        "targets": [
            d["Target"]["Id"]
            for d in client("elbv2").describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
        ],
        "tags": sorted(
            tag["Key"]
            for tag in ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0].get("Tags", [])
            if tag["Key"].startswith("firebreak:")
        ),
    }


def test_isolation_is_undone_step_by_step_field_by_field(isolated: dict[str, Any]) -> None:
    # GIVEN an isolated instance
    # WHEN its incident is released
    result = release(ReleasePlan("fb-incident", "CONTAINED", isolated["actions"]), context())

    # THEN its interface, protection, shutdown behaviour, Auto Scaling group, target group and tags are as before
    assert result.status == "RELEASED", [e.reason for e in result.entries]
    state = instance_state(isolated["instance"], isolated["eni"], isolated["target_group"])
    assert state == {
        "groups": [isolated["web"]],
        "interface_tags": [],
        "protection": False,
        "shutdown": "terminate",
        "asg": ["web-asg"],
        "targets": [isolated["instance"]],
        "tags": [],
    }
    # AND the network came back first, service last; the snapshot and the shared group were kept, and said so
    reasons = [entry.reason for entry in result.entries]
    assert reasons[0].startswith(f"interface {isolated['eni']} back in")
    assert "desired capacity rose by one" in reasons[-3] and reasons[-2].startswith("registered again")
    assert "kept: Firebreak group" in reasons[-1] and "snapshot snap-1 of vol-1 (evidence)" in reasons[-1]


def test_isolation_changed_since_is_refused_and_the_instance_not_put_back_into_service(
    isolated: dict[str, Any],
) -> None:
    # GIVEN a responder moved the instance to a forensics group after isolation
    ec2 = client("ec2")
    vpc = ec2.describe_network_interfaces(NetworkInterfaceIds=[isolated["eni"]])["NetworkInterfaces"][0]["VpcId"]
    forensics = ec2.create_security_group(GroupName="forensics", Description="f", VpcId=vpc)["GroupId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=isolated["eni"], Groups=[forensics])

    # WHEN the incident is released
    result = release(ReleasePlan("fb-incident", "CONTAINED", isolated["actions"]), context())

    # THEN the interface is refused with what changed, and the instance stays out of its group and target group
    interface, *_ = result.entries
    assert interface.outcome is Outcome.SKIPPED
    assert interface.reason.startswith("conflict:") and "security_groups" in interface.reason
    service = [e for e in result.entries if e.reason.startswith("not put back into service")]
    assert len(service) == 2
    state = instance_state(isolated["instance"], isolated["eni"], isolated["target_group"])
    assert (state["groups"], state["asg"], state["targets"]) == ([forensics], [], [])
    assert result.status == "PARTIALLY_CONTAINED"


def test_released_steps_of_one_instance_are_told_apart(isolated: dict[str, Any]) -> None:
    # GIVEN a release that undid only the termination protection
    protection = isolated["actions"][2]
    entry = release(ReleasePlan("fb-incident", "CONTAINED", (protection,)), context()).entries[0]
    assert entry.outcome is Outcome.RELEASED

    # THEN a later release still has every other step of the same instance to undo, and not that one
    plan = ReleasePlan("fb-incident", "PARTIALLY_CONTAINED", isolated["actions"], (entry,))
    assert protection not in plan.pending
    assert len(plan.pending) == 5


# --- revoke_credentials -------------------------------------------------------------------------------------------

DENY = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


def revocation(
    target: str, before: dict[str, Any], after: dict[str, Any], outcome: Outcome = Outcome.APPLIED
) -> Action:
    return Action(ActionType.REVOKE_CREDENTIALS, target, outcome, "revoked", before, after)


@pytest.fixture
def revoked_key(aws: None) -> tuple[Action, Action]:
    """deploy-bot's key deactivated and FirebreakDenyAll attached, recorded as revoke-credentials records them."""
    iam = client("iam")
    iam.create_user(UserName="deploy-bot")
    key = iam.create_access_key(UserName="deploy-bot")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="deploy-bot", AccessKeyId=key, Status="Inactive")
    iam.put_user_policy(UserName="deploy-bot", PolicyName="FirebreakDenyAll", PolicyDocument=json.dumps(DENY))
    ids = {"user": "deploy-bot", "access_key_id": key}
    policy = {"user": "deploy-bot", "policy_name": "FirebreakDenyAll"}
    return (
        revocation(key, {**ids, "status": "Active"}, {**ids, "status": "Inactive"}),
        revocation(key, {**policy, "document": None}, {**policy, "document": DENY}),
    )


def key_statuses() -> list[str]:
    return [k["Status"] for k in client("iam").list_access_keys(UserName="deploy-bot")["AccessKeyMetadata"]]


def test_revoked_key_is_reactivated_and_the_deny_policy_deleted(revoked_key: tuple[Action, Action]) -> None:
    # WHEN the revocation is released
    result = release(ReleasePlan("fb-incident", "CONTAINED", revoked_key), context())

    # THEN the key is active again and the user has no Firebreak policy
    assert result.status == "RELEASED", [e.reason for e in result.entries]
    assert key_statuses() == ["Active"]
    assert client("iam").list_user_policies(UserName="deploy-bot")["PolicyNames"] == []


def test_key_someone_reactivated_is_refused_and_the_policy_still_released(revoked_key: tuple[Action, Action]) -> None:
    # GIVEN a person re-activated the key by hand
    key_step, policy_step = revoked_key
    client("iam").update_access_key(UserName="deploy-bot", AccessKeyId=key_step.target, Status="Active")

    # WHEN release tries to undo the key
    entry = undo(key_step, context())

    # THEN it refuses and names what changed
    assert entry.outcome is Outcome.SKIPPED
    assert "status is 'Active', not 'Inactive'" in entry.reason


def test_key_found_inactive_is_never_reactivated(aws: None) -> None:
    # GIVEN a key that was already inactive when Firebreak came (already_applied)
    iam = client("iam")
    iam.create_user(UserName="deploy-bot")
    key = iam.create_access_key(UserName="deploy-bot")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="deploy-bot", AccessKeyId=key, Status="Inactive")
    ids = {"user": "deploy-bot", "access_key_id": key}
    found = revocation(key, {**ids, "status": "Inactive"}, {}, Outcome.ALREADY_APPLIED)

    # WHEN its incident is released
    result = release(ReleasePlan("fb-incident", "CONTAINED", (found,)), context())

    # THEN nothing is undone and the key stays inactive
    assert result.entries[-1].reason == "nothing left to undo"
    assert key_statuses() == ["Inactive"]


def test_policy_document_that_was_there_before_is_put_back(revoked_key: tuple[Action, Action]) -> None:
    # GIVEN FirebreakDenyAll replaced an older document of an earlier incident
    older = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    _, policy_step = revoked_key
    replaced = revocation(policy_step.target, {**policy_step.before, "document": older}, policy_step.after)

    # WHEN it is undone
    entry = undo(replaced, context())

    # THEN the older document is back
    assert entry.outcome is Outcome.RELEASED, entry.reason
    document = client("iam").get_user_policy(UserName="deploy-bot", PolicyName="FirebreakDenyAll")["PolicyDocument"]
    assert document == older


def test_role_session_revocation_policy_is_deleted(aws: None) -> None:
    # GIVEN a role whose older sessions Firebreak revoked
    iam = client("iam")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.put_role_policy(RoleName="app", PolicyName="AWSRevokeOlderSessions", PolicyDocument=json.dumps(DENY))
    policy = {"role": "app", "policy_name": "AWSRevokeOlderSessions"}
    action = revocation("app", {**policy, "document": None}, {**policy, "document": DENY})

    # WHEN it is undone
    entry = undo(action, context())

    # THEN the revocation policy is gone, and the reason says what that lets through again
    assert entry.outcome is Outcome.RELEASED, entry.reason
    assert "work again until they expire" in entry.reason
    assert iam.list_role_policies(RoleName="app")["PolicyNames"] == []


def test_deleted_console_password_is_told_as_not_undone(aws: None) -> None:
    # GIVEN Firebreak deleted a user's console password
    client("iam").create_user(UserName="deploy-bot")
    gone = {"user": "deploy-bot", "login_profile": False}
    action = revocation("deploy-bot", {"user": "deploy-bot", "login_profile": True}, gone)

    # WHEN its incident is released
    result = release(ReleasePlan("fb-incident", "CONTAINED", (action,)), context())

    # THEN release says a person must set a new one, and the incident is not called released
    assert result.entries[0].outcome is Outcome.SKIPPED
    assert "create-login-profile" in result.entries[0].reason
    assert result.status == "CONTAINED"


# --- the release as a whole ---------------------------------------------------------------------------------------


def test_plan_undoes_only_recorded_changes_not_yet_released(ipset: dict[str, str]) -> None:
    # GIVEN a record with enrichment, a planned block, a block without state, a released and a pending block
    pending = block(ipset, "203.0.113.7/32")
    released_before = block(ipset, "203.0.113.8/32")
    actions = (
        Action(ActionType.ENRICH_IP, "203.0.113.7", Outcome.APPLIED, "suspicious (60)"),
        Action(ActionType.BLOCK_IP, "203.0.113.9/32", Outcome.PLANNED, "would add"),
        Action(ActionType.BLOCK_IP, "203.0.113.10/32", Outcome.APPLIED, "added by an older version, no state"),
        released_before,
        pending,
    )
    releases = (Action(ActionType.BLOCK_IP, "203.0.113.8/32", Outcome.RELEASED, "removed"),)

    # THEN only the pending block is to be undone
    assert ReleasePlan("fb-incident", "CONTAINED", actions, releases).pending == (pending,)


def test_plan_leaves_an_isolation_the_incident_found_in_place(aws: None) -> None:
    # GIVEN an instance the playbook found already isolated (by an earlier incident or a person)
    state = {"interfaces": {"eni-1": ["sg-quarantine"]}}
    found = Action(ActionType.ISOLATE_INSTANCE, "i-1", Outcome.ALREADY_APPLIED, "already isolated", state, state)

    # THEN releasing this incident does not undo it
    assert ReleasePlan("fb-incident", "CONTAINED", (found,)).pending == ()


def test_full_release_is_released_and_lets_go_of_the_addresses(ipset: dict[str, str]) -> None:
    # GIVEN a contained incident holding one block
    action = block(ipset, "203.0.113.7/32")

    # WHEN it is released
    result = release(ReleasePlan("fb-incident", "CONTAINED", (action,)), context(), ["203.0.113.7/32"])

    # THEN it is RELEASED, holds nothing, and the summary entry says so
    assert result.status == "RELEASED"
    assert result.blocked_addresses == ()
    assert result.entries[-1].type is ActionType.RELEASE
    assert result.entries[-1].reason == "1 of 1 released"


def test_record_without_actions_is_not_released(aws: None) -> None:
    # GIVEN the record of a response that failed before recording its actions
    result = release(ReleasePlan("fb-incident", "FAILED", None), context(), ["203.0.113.7/32"])

    # THEN release refuses to guess and keeps the status and the holdings
    assert result.status == "FAILED"
    assert result.blocked_addresses == ("203.0.113.7/32",)
    assert result.entries[0].outcome is Outcome.SKIPPED


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome.RELEASED, Outcome.RELEASED], IncidentStatus.RELEASED.value),
        ([Outcome.RELEASED, Outcome.SKIPPED], IncidentStatus.PARTIALLY_CONTAINED.value),
        ([Outcome.SKIPPED], "CONTAINED"),
        ([Outcome.FAILED], "CONTAINED"),
        ([], IncidentStatus.RELEASED.value),
    ],
    ids=["all", "some", "refused", "failed", "nothing-to-do"],
)
def test_status_after_release_says_what_is_still_in_place(outcomes: list[Outcome], expected: str) -> None:
    entries = [Action(ActionType.BLOCK_IP, f"203.0.113.{i}/32", outcome) for i, outcome in enumerate(outcomes)]
    assert release_status("CONTAINED", entries) == expected


# --- block_ip with the blocklist table (blocking.blocklist) ----------------------------------------------------------


@pytest.fixture
def blocklist(aws: None) -> Blocklist:
    client("dynamodb").create_table(
        TableName="blocklist",
        AttributeDefinitions=[{"AttributeName": "cidr", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "cidr", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Blocklist(client("dynamodb"), "blocklist")


def test_released_block_leaves_the_blocklist_table_and_the_set(ipset: dict[str, str], blocklist: Blocklist) -> None:
    # GIVEN an incident's block, recorded in the blocklist table as the block step does
    action = block(ipset, "203.0.113.7/32")
    blocklist.record("203.0.113.7/32", 4, "fb-incident", int(time.time()), 3600)

    # WHEN it is undone
    entry = undo_block_ip(action, context(blocklist=blocklist, added_by_firebreak=frozenset({"203.0.113.7/32"})))

    # THEN the table no longer holds it (the sweep would put it back otherwise) and the set lost only it
    assert entry.outcome is Outcome.RELEASED
    assert blocklist.entry("203.0.113.7/32") is None
    assert addresses(ipset) == ["198.51.100.1/32"]


def test_block_lifted_on_expiry_is_released_without_a_conflict(ipset: dict[str, str], blocklist: Blocklist) -> None:
    # GIVEN an incident's block that expired and that the sweep already lifted from the table and the set
    action = block(ipset, "203.0.113.7/32")
    client("wafv2").update_ip_set(
        Name=ipset["name"],
        Scope="REGIONAL",
        Id=ipset["id"],
        Addresses=["198.51.100.1/32"],
        LockToken=client("wafv2").get_ip_set(Name=ipset["name"], Scope="REGIONAL", Id=ipset["id"])["LockToken"],
    )

    # WHEN it is undone
    entry = undo_block_ip(action, context(blocklist=blocklist))

    # THEN there was nothing left to undo: released, saying so, and nothing written
    assert entry.outcome is Outcome.RELEASED
    assert entry.reason.startswith("already lifted from WAF IPSet blocked-ipv4")
    assert addresses(ipset) == ["198.51.100.1/32"]


def test_network_acl_entries_go_with_their_released_cidr_and_foreign_rules_stay(blocklist: Blocklist) -> None:
    # GIVEN a subnet's network ACL with a rule of someone else's and Firebreak's deny entries for an attacker
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    foreign = {"NetworkAclId": acl, "Protocol": "6", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}
    ec2.create_network_acl_entry(**foreign, RuleNumber=100, Egress=False, PortRange={"From": 22, "To": 22})
    rules = RuleRange(71, 80)
    now = time.time()
    blocklist.record("203.0.113.7/32", 4, "fb-incident", int(now), 3600)
    _, placed = deny(ec2, blocklist, acl, ["203.0.113.7/32"], rules, now)
    after = {"network_acl": acl, "rule": placed["203.0.113.7/32"]}
    action = Action(ActionType.BLOCK_IP, "203.0.113.7/32 in network ACL of subnet-1", Outcome.APPLIED, "", {}, after)

    # WHEN the CIDR's block is released (its table item goes first), then its network ACL action
    blocked = context(blocklist=blocklist, network_acl_rules=(71, 80))
    kept = undo_block_ip(action, blocked)
    blocklist.forget("203.0.113.7/32")
    entry = undo_block_ip(action, blocked)

    # THEN the deny entries stayed while the CIDR was blocked and went with it; the foreign rule is untouched
    assert kept.outcome is Outcome.RELEASED and "still blocked" in kept.reason
    assert entry.outcome is Outcome.RELEASED
    assert entry.after == {"network_acl": acl, "rule": None}
    entries = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"]
    assert not [e for e in entries if e["RuleNumber"] in rules]
    assert [e["RuleNumber"] for e in entries if e["RuleNumber"] == 100] == [100]
