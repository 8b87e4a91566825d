"""Contain, revoke, then release on the local engine: the emulated account after release is the account before it.

The real entry machine, playbooks and release machine run on moto with the real handlers. Each test reads the account
field by field before the finding and after the release (interfaces' groups and tags, instance attributes and tags,
Auto Scaling and target group membership, access keys and inline policies) and compares the two.
"""

from __future__ import annotations

import json
from typing import Any

from firebreak_local.engine import Engine, Execution
from tests.statemachines.test_contain_instance import crypto_mining_on_three_interfaces, seed_fleet
from tests.support import incident_record, load_event, report_of

RELEASE_STATES = ["Release Actions", "Record Release", "Notify Release", "Release Complete"]
CRYPTO_MINING = "CryptoCurrency:EC2/BitcoinTool.B!DNS"
ASSUMED_ROLE = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
# Calls that change the account; the release machine's own record and publish are not the account's.
MUTATING = ("Modify", "Attach", "Register", "Create", "Delete", "Update", "Put")


def run(engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    rule = engine.matching_rule(event)
    assert rule is not None, "the event should trigger a rule"
    return report_of(engine.start(rule, event))


def account_changes(execution: Execution) -> list[str]:
    return [
        call
        for call in execution.api_calls
        if call.split(".")[0] in {"ec2", "iam", "autoscaling", "elasticloadbalancing", "elbv2", "wafv2"}
        and call.split(".")[-1].startswith(MUTATING)
    ]


def instance_world(engine: Engine, instance_id: str, target_groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything contain-instance may change on an instance, read from the account."""
    ec2 = engine.client("ec2")
    interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    members = engine.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    elbv2 = engine.client("elbv2")
    return {
        "interfaces": {
            eni["NetworkInterfaceId"]: {
                "groups": sorted(group["GroupId"] for group in eni["Groups"]),
                "tags": {tag["Key"]: tag["Value"] for tag in eni.get("TagSet", [])},
            }
            for eni in interfaces["NetworkInterfaces"]
        },
        "termination_protection": ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination"
        )["DisableApiTermination"]["Value"],
        "shutdown_behavior": ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
        )["InstanceInitiatedShutdownBehavior"]["Value"],
        "tags": {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])},
        "auto_scaling_groups": [member["AutoScalingGroupName"] for member in members["AutoScalingInstances"]],
        "target_groups": {
            arn: [
                (d["Target"]["Id"], d["Target"].get("Port"))
                for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                if d["Target"]["Id"] == instance_id and d.get("TargetHealth", {}).get("State") != "draining"
            ]
            for arn in target_groups
        },
    }


def user_world(engine: Engine, user: str) -> dict[str, Any]:
    """Every key's status and every inline and managed policy of the user, read from the account."""
    iam = engine.client("iam")
    return {
        "keys": {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]},
        "inline": {
            name: iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
            for name in iam.list_user_policies(UserName=user)["PolicyNames"]
        },
        "managed": [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]],
    }


def role_world(engine: Engine, role: str) -> dict[str, Any]:
    iam = engine.client("iam")
    return {
        "inline": {
            name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        },
        "managed": [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]],
    }


def contained_fleet(engine: Engine) -> tuple[Any, dict[str, Any], str]:
    """Crypto mining on a three-interface instance in an Auto Scaling group and a target group, contained.

    Its shutdown behaviour is terminate, so containment changes that too. Returns the fleet, the world before the
    finding, and the incident id.
    """
    event = crypto_mining_on_three_interfaces()
    fleet = seed_fleet(engine, event)
    engine.client("ec2").modify_instance_attribute(
        InstanceId=fleet.instance_id, Attribute="instanceInitiatedShutdownBehavior", Value="terminate"
    )
    before = instance_world(engine, fleet.instance_id, (fleet.target_group_arn,))
    outcome = run(engine, event)
    assert outcome["status"] == "CONTAINED"
    assert instance_world(engine, fleet.instance_id, (fleet.target_group_arn,)) != before
    return fleet, before, str(outcome["incident_id"])


def desired_capacity(engine: Engine, group: str) -> int:
    groups = engine.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return int(groups["AutoScalingGroups"][0]["DesiredCapacity"])


def snapshots_of(engine: Engine, incident_id: str) -> int:
    found = engine.client("ec2").describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:firebreak:incident-id", "Values": [incident_id]}]
    )
    return len(found["Snapshots"])


# --- contain-instance ---------------------------------------------------------------------------------------------


def test_contain_then_release_leaves_the_instance_as_it_was_field_by_field(engine: Engine) -> None:
    # GIVEN a contained instance, and the account as it was before the finding
    fleet, before, incident_id = contained_fleet(engine)
    capacity = desired_capacity(engine, fleet.auto_scaling_group)

    # WHEN the incident is released
    release = engine.release(incident_id)

    # THEN every interface's groups and tags, protection, shutdown behaviour, instance tags, Auto Scaling group and
    # target group are exactly as before the finding
    assert release.status == "SUCCEEDED", release.cause
    assert release.states == RELEASE_STATES
    assert instance_world(engine, fleet.instance_id, (fleet.target_group_arn,)) == before
    # AND the replacement Auto Scaling launched stays: attaching raised the desired capacity by one, as told
    assert desired_capacity(engine, fleet.auto_scaling_group) == capacity + 1
    # AND the evidence stays, and the quarantine group with it
    assert snapshots_of(engine, incident_id) == 2
    groups = engine.client("ec2").describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups if g["GroupName"].startswith("firebreak-quarantine")] == [
        f"firebreak-quarantine-{fleet.vpc_id}"
    ]

    # AND the release says RELEASED with every step released, and the record and its report say so too
    released = report_of(release)
    assert (released["previous_status"], released["status"]) == ("CONTAINED", "RELEASED")
    steps = [a for a in released["actions"] if a["type"] == "isolate_instance"]
    assert [a["outcome"] for a in steps] == ["released"] * 8
    reasons = " | ".join(a["reason"] for a in steps)
    for told in ("back in", "termination protection back off", "shutdown behaviour back to terminate"):
        assert told in reasons
    assert "re-attached to Auto Scaling group batch-workers" in reasons
    assert "registered again with target group batch-api" in reasons
    assert "removed tags firebreak:incident-id" in reasons
    (summary,) = [a for a in released["actions"] if a["type"] == "release"]
    assert summary["outcome"] == "released" and summary["reason"].startswith("8 of 8 released; kept: ")
    stored = incident_record(engine, incident_id)
    assert stored["status"] == "RELEASED"
    assert [h["status"] for h in stored["status_history"]] == ["OPEN", "CONTAINED", "RELEASED"]
    assert [a["outcome"] for a in stored["release_actions"] if a["type"] == "isolate_instance"] == ["released"] * 8
    assert {a["outcome"] for a in stored["actions"] if a["type"] == "isolate_instance"} == {"applied"}, "evidence kept"
    engine.drain_streams()
    assert incident_record(engine, incident_id)["report"].startswith(f"# Firebreak incident {incident_id}: RELEASED")
    assert engine.notifications()[-1]["subject"] == f"Firebreak RELEASED: {CRYPTO_MINING}"


def test_second_release_changes_nothing_and_says_so(engine: Engine) -> None:
    # GIVEN a contained instance, released once
    fleet, before, incident_id = contained_fleet(engine)
    engine.release(incident_id)
    after_first = instance_world(engine, fleet.instance_id, (fleet.target_group_arn,))
    history = incident_record(engine, incident_id)["status_history"]

    # WHEN it is released again
    again = engine.release(incident_id)

    # THEN nothing in the account is changed, the release says there was nothing left, and the history is as it was
    assert again.status == "SUCCEEDED"
    assert account_changes(again) == []
    assert instance_world(engine, fleet.instance_id, (fleet.target_group_arn,)) == after_first == before
    released = report_of(again)
    assert released["status"] == "RELEASED"
    (summary,) = released["actions"][:-2]
    assert summary["type"] == "release" and summary["reason"].startswith("nothing left to undo; kept: ")
    assert incident_record(engine, incident_id)["status_history"] == history


def test_failed_undo_step_is_told_partially_contained_and_a_later_release_finishes(engine: Engine) -> None:
    # GIVEN a contained instance, and EC2 refusing every interface change during the release
    fleet, before, incident_id = contained_fleet(engine)
    with engine.faults.inject("ec2", "ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", times=None) as fault:
        # WHEN the incident is released
        release = engine.release(incident_id)

    # THEN every interface is failed, the instance is not put back into service, and nothing is called RELEASED
    assert fault.hits == 3
    released = report_of(release)
    assert released["status"] == "PARTIALLY_CONTAINED"
    outcomes = {a["reason"].split(":")[0]: a["outcome"] for a in released["actions"] if a["type"] == "isolate_instance"}
    assert outcomes["release failed"] == "failed"
    assert outcomes["not put back into service"] == "skipped"
    world = instance_world(engine, fleet.instance_id, (fleet.target_group_arn,))
    assert world["auto_scaling_groups"] == [] and world["target_groups"] == {fleet.target_group_arn: []}
    assert engine.world.report()["instances"]["i-0a1b2c3d4e5f60002"]["quarantined"] is True
    stored = incident_record(engine, incident_id)
    assert stored["status"] == "PARTIALLY_CONTAINED"
    assert [a["outcome"] for a in stored["release_actions"]].count("failed") == 3
    subject = engine.notifications()[-1]["subject"]
    assert subject == f"Firebreak RELEASE INCOMPLETE (PARTIALLY_CONTAINED): {CRYPTO_MINING}"

    # AND a later release undoes the rest, and the account is as it was before the finding
    later = report_of(engine.release(incident_id))
    assert later["status"] == "RELEASED"
    assert instance_world(engine, fleet.instance_id, (fleet.target_group_arn,)) == before
    assert incident_record(engine, incident_id)["status"] == "RELEASED"


def test_releasing_one_of_two_instances_in_a_shared_quarantine_group_leaves_the_other_contained(
    engine: Engine,
) -> None:
    # GIVEN two instances in one VPC, contained by two incidents into the same quarantine group
    first_event, second_event = (
        load_event("eventbridge/guardduty_crypto_mining"),
        load_event("eventbridge/guardduty_c2_outbound"),
    )
    first_id = engine.world.seed(first_event)["detail"]["resource"]["instanceDetails"]["instanceId"]
    second_id = engine.world.seed(second_event)["detail"]["resource"]["instanceDetails"]["instanceId"]
    first_before = instance_world(engine, first_id)
    first, second = run(engine, first_event), run(engine, second_event)
    contained = instance_world(engine, second_id)
    ec2 = engine.client("ec2")
    (quarantine,) = [
        g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"].startswith("firebreak-quarantine")
    ]

    # WHEN the first incident is released
    assert report_of(engine.release(first["incident_id"]))["status"] == "RELEASED"

    # THEN the first instance is as before, the second still in quarantine, and the group still there with no rules
    assert instance_world(engine, first_id) == first_before
    assert instance_world(engine, second_id) == contained
    assert {g for eni in contained["interfaces"].values() for g in eni["groups"]} == {quarantine["GroupId"]}
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [quarantine["GroupId"]]}])
    assert rules["SecurityGroupRules"] == []
    assert incident_record(engine, second["incident_id"])["status"] == "CONTAINED"


# --- revoke-credentials -------------------------------------------------------------------------------------------


def test_revoke_then_release_leaves_the_user_as_it_was_field_by_field(engine: Engine) -> None:
    # GIVEN the finding's user with its key, a second key that was already inactive, and an inline policy of its own
    event = load_event("eventbridge/guardduty_iam_user_key_compromised")
    engine.world.seed(event)
    user = event["detail"]["resource"]["accessKeyDetails"]["userName"]
    iam = engine.client("iam")
    spare = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName=user, AccessKeyId=spare, Status="Inactive")
    own = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="deploy-artifacts", PolicyDocument=json.dumps(own))
    before = user_world(engine, user)
    blocked_before = engine.blocked_ips()

    # WHEN the finding is contained, then released
    contained = run(engine, event)
    assert contained["status"] == "CONTAINED"
    revoked = user_world(engine, user)
    release = engine.release(contained["incident_id"])

    # THEN containment had deactivated the key and attached the deny policy, and release undid exactly that
    assert sorted(revoked["keys"].values()) == ["Inactive", "Inactive"]
    assert set(revoked["inline"]) == {"deploy-artifacts", "FirebreakDenyAll"}
    assert user_world(engine, user) == before
    assert before["keys"][spare] == "Inactive", "the key that was inactive before stays inactive"
    assert engine.blocked_ips() == blocked_before
    released = report_of(release)
    assert released["status"] == "RELEASED"
    assert [(a["type"], a["outcome"]) for a in released["actions"] if a["type"] != "release"][:3] == [
        ("revoke_credentials", "released"),
        ("revoke_credentials", "released"),
        ("block_ip", "released"),
    ]
    stored = incident_record(engine, contained["incident_id"])
    assert stored["status"] == "RELEASED"
    assert [a["outcome"] for a in stored["release_actions"] if a["type"] == "revoke_credentials"] == ["released"] * 2


def test_key_that_was_inactive_before_the_finding_is_never_reactivated(engine: Engine) -> None:
    # GIVEN the finding's key was already deactivated by a person before Firebreak came
    event = load_event("eventbridge/guardduty_iam_user_key_compromised")
    engine.world.seed(event)
    user = event["detail"]["resource"]["accessKeyDetails"]["userName"]
    iam = engine.client("iam")
    (key,) = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    before = user_world(engine, user)

    # WHEN the finding is contained, then released
    incident_id = run(engine, event)["incident_id"]
    assert report_of(engine.release(incident_id))["status"] == "RELEASED"

    # THEN the key is still inactive and only Firebreak's deny policy is gone
    assert user_world(engine, user) == before
    assert before["keys"] == {key["AccessKeyId"]: "Inactive"}


def test_revoked_role_sessions_are_released_and_the_role_is_as_it_was(engine: Engine) -> None:
    # GIVEN a role whose credentials were used from outside AWS
    event = load_event("eventbridge/guardduty_access_key_malicious_ip")
    engine.world.seed(event)
    role = event["detail"]["resource"]["accessKeyDetails"]["userName"]
    before = role_world(engine, role)

    # WHEN the finding is contained, then released
    contained = run(engine, event)
    assert "AWSRevokeOlderSessions" in role_world(engine, role)["inline"]
    released = report_of(engine.release(contained["incident_id"]))

    # THEN the TokenIssueTime deny is gone and the role is as it was; the reason says what that lets through again
    assert role_world(engine, role) == before
    assert released["status"] == "RELEASED"
    (entry,) = [a for a in released["actions"] if a["type"] == "revoke_credentials"]
    assert entry["outcome"] == "released" and "work again until they expire" in entry["reason"]
    assert engine.notifications()[-1]["subject"] == f"Firebreak RELEASED: {ASSUMED_ROLE}"


def test_failed_key_reactivation_is_not_called_released_and_is_told(engine: Engine) -> None:
    # GIVEN a revoked user, and IAM refusing to change access keys during the release
    event = load_event("eventbridge/guardduty_iam_user_key_compromised")
    incident_id = run(engine, event)["incident_id"]
    user = event["detail"]["resource"]["accessKeyDetails"]["userName"]
    with engine.faults.inject("iam", "UpdateAccessKey", "AccessDenied", times=None):
        # WHEN the incident is released
        released = report_of(engine.release(incident_id))

    # THEN the key stays inactive, the failure is named, and the incident is PARTIALLY_CONTAINED, recorded and told
    assert released["status"] == "PARTIALLY_CONTAINED"
    (failed,) = [a for a in released["actions"] if a["outcome"] == "failed"]
    assert failed["type"] == "revoke_credentials" and failed["reason"].startswith("release failed: AccessDenied")
    assert set(user_world(engine, user)["keys"].values()) == {"Inactive"}
    assert incident_record(engine, incident_id)["status"] == "PARTIALLY_CONTAINED"
    assert engine.notifications()[-1]["subject"].startswith("Firebreak RELEASE INCOMPLETE (PARTIALLY_CONTAINED):")
