"""Evidence and blast radius on moto: each step idempotent, its before-state recorded, a refusal a failed action."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.containment.evidence import Clients, EvidenceRequest, preserve, revoke_policy, tag_value
from firebreak.core.models import ActionType, Outcome
from firebreak_local.world import IMAGE_ID

NOW = datetime(2026, 3, 14, 13, 27, 5, tzinfo=UTC)
INCIDENT = "fb-83ec2ed369599e17342d"


@pytest.fixture
def clients(aws: None) -> Clients:
    return Clients(*(boto3.client(name, region_name="us-east-1") for name in ("ec2", "autoscaling", "elbv2", "iam")))


def launch(clients: Clients, profile_arn: str | None = None) -> dict[str, Any]:
    """A running instance with a second volume, in an Auto Scaling group and in two target groups (instance, ip)."""
    ec2 = clients.ec2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    instance = ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    instance_id = instance["InstanceId"]
    if profile_arn:
        ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile_arn}, InstanceId=instance_id)
    volume = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(Device="/dev/sdf", InstanceId=instance_id, VolumeId=volume)
    clients.autoscaling.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId=IMAGE_ID, InstanceType="t3.micro"
    )
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchConfigurationName="lc", MinSize=0, MaxSize=3, VPCZoneIdentifier=subnet
    )
    clients.autoscaling.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName="web")
    by_id = clients.elbv2.create_target_group(Name="by-id", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")
    by_ip = clients.elbv2.create_target_group(Name="by-ip", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
    arns = [by_id["TargetGroups"][0]["TargetGroupArn"], by_ip["TargetGroups"][0]["TargetGroupArn"]]
    clients.elbv2.register_targets(TargetGroupArn=arns[0], Targets=[{"Id": instance_id, "Port": 80}])
    clients.elbv2.register_targets(TargetGroupArn=arns[1], Targets=[{"Id": instance["PrivateIpAddress"], "Port": 8080}])
    return {"instance_id": instance_id, "target_groups": arns, "volume": volume}


def request(instance_id: str, **changes: Any) -> EvidenceRequest:
    fields = {"incident_id": INCIDENT, "finding_type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "now": NOW}
    return EvidenceRequest(instance_id=instance_id, **{**fields, **changes})


def outcomes(actions: list[Any]) -> list[tuple[str, str]]:
    return [(action.outcome.value, action.reason) for action in actions]


def snapshots(clients: Clients) -> list[dict[str, Any]]:
    # Only Firebreak's: moto also lists the snapshots behind its bundled images.
    tagged = clients.ec2.describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["firebreak:incident-id"]}])
    return list(tagged["Snapshots"])


def test_tag_values_keep_only_what_every_service_accepts_and_fit_256_characters() -> None:
    # GIVEN finding types and ids with characters EC2 tags refuse, and an overlong value
    # WHEN they are made tag values
    # THEN the refused characters become "_" and the length is capped
    assert tag_value("CryptoCurrency:EC2/BitcoinTool.B!DNS") == "CryptoCurrency:EC2/BitcoinTool.B_DNS"
    assert tag_value("Backdoor:EC2/C&CActivity.B") == "Backdoor:EC2/C_CActivity.B"
    assert tag_value("a\nb\tc") == "a_b_c"
    assert len(tag_value("x" * 300)) == 256


def test_every_step_applies_once_and_records_its_before_state(clients: Clients) -> None:
    # GIVEN an instance with two volumes, in an Auto Scaling group and in two target groups
    fleet = launch(clients)

    # WHEN its evidence is preserved
    actions = preserve(clients, request(fleet["instance_id"]))

    # THEN protection is on, shutdown stops, it left the group (capacity kept) and both target groups, both volumes
    # have a tagged snapshot and the instance carries the incident
    assert [a.outcome for a in actions] == [
        Outcome.APPLIED,
        Outcome.ALREADY_APPLIED,  # moto, like EC2 for EBS-backed instances, starts with shutdown behaviour stop
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert actions[0].before == {"disable_api_termination": False}
    asg = actions[2]
    assert asg.before == {"auto_scaling_group": "web", "lifecycle_state": "InService", "desired_capacity": 1}
    assert "desired capacity stays 1" in asg.reason
    assert clients.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 1
    assert {a.before["target_group"] for a in actions[3:5]} == set(fleet["target_groups"])
    for arn in fleet["target_groups"]:
        assert clients.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []
    taken = snapshots(clients)
    assert len(taken) == 2
    assert all({t["Key"]: t["Value"] for t in s["Tags"]}["firebreak:incident-id"] == INCIDENT for s in taken)
    tags = clients.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [fleet["instance_id"]]}])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags if t["Key"].startswith("firebreak:")} == {
        "firebreak:incident-id": INCIDENT,
        "firebreak:contained-at": "2026-03-14T13:27:05Z",
        "firebreak:finding-type": "CryptoCurrency:EC2/BitcoinTool.B_DNS",
    }
    assert actions[-1].before == {
        "tags": {"firebreak:incident-id": None, "firebreak:contained-at": None, "firebreak:finding-type": None}
    }


def test_running_again_for_the_same_incident_changes_nothing(clients: Clients) -> None:
    # GIVEN an instance whose evidence was preserved for this incident
    fleet = launch(clients)
    preserve(clients, request(fleet["instance_id"]))

    # WHEN the step runs again (a redrive)
    again = preserve(clients, request(fleet["instance_id"], now=datetime(2026, 3, 14, 14, 0, tzinfo=UTC)))

    # THEN nothing is applied twice: no third snapshot, and the first containment time stays
    assert Outcome.APPLIED not in {a.outcome for a in again}
    assert len(snapshots(clients)) == 2
    tags = clients.ec2.describe_tags(Filters=[{"Name": "key", "Values": ["firebreak:contained-at"]}])["Tags"]
    assert [t["Value"] for t in tags] == ["2026-03-14T13:27:05Z"]


def test_dry_run_plans_every_call_and_changes_nothing(clients: Clients) -> None:
    # GIVEN an instance in an Auto Scaling group and target groups
    fleet = launch(clients)

    # WHEN its evidence is planned
    actions = preserve(clients, request(fleet["instance_id"], dry_run=True))

    # THEN every change is planned with its call, and none happened
    planned = [a.reason for a in actions if a.outcome is Outcome.PLANNED]
    assert len(planned) == 7
    assert all(reason.startswith("would call ") for reason in planned)
    assert snapshots(clients) == []
    members = clients.autoscaling.describe_auto_scaling_instances(InstanceIds=[fleet["instance_id"]])
    assert len(members["AutoScalingInstances"]) == 1
    protection = clients.ec2.describe_instance_attribute(
        InstanceId=fleet["instance_id"], Attribute="disableApiTermination"
    )
    assert protection["DisableApiTermination"]["Value"] is False


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling"])
def test_a_refused_or_throttled_step_is_a_failed_action_and_the_others_still_run(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    # GIVEN snapshots are refused (or still throttled after the SDK's retries)
    fleet = launch(clients)

    def refuse(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "no"}}, "CreateSnapshot")

    monkeypatch.setattr(clients.ec2, "create_snapshot", refuse)

    # WHEN evidence is preserved
    actions = preserve(clients, request(fleet["instance_id"]))

    # THEN each snapshot is a failed action naming the volume and the error, and every other step applied
    failed = [a.reason for a in actions if a.outcome is Outcome.FAILED]
    assert len(failed) == 2
    assert all(reason.startswith("snapshot of vol-") and f"{code}: no" in reason for reason in failed)
    assert "tagged firebreak:incident-id=" + INCIDENT in actions[-1].reason


def test_a_step_whose_read_fails_is_one_failed_action_named_for_the_step(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Auto Scaling refuses to say which group holds the instance
    fleet = launch(clients)

    def refuse(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeAutoScalingInstances")

    monkeypatch.setattr(clients.autoscaling, "describe_auto_scaling_instances", refuse)

    # WHEN evidence is preserved
    actions = preserve(clients, request(fleet["instance_id"]))

    # THEN that step failed, named, and the next ones ran
    assert ("failed", "Auto Scaling: AccessDenied: no") in outcomes(actions)
    assert len(snapshots(clients)) == 2


def test_instance_gone_before_its_evidence_was_kept_is_a_failed_action(clients: Clients) -> None:
    # GIVEN no such instance
    # WHEN evidence is preserved
    actions = preserve(clients, request("i-0123456789abcdef0"))

    # THEN that is one failed action saying why
    assert outcomes(actions) == [
        ("failed", "evidence not preserved: instance i-0123456789abcdef0 does not exist (InvalidInstanceID.NotFound)")
    ]


def test_role_sessions_are_revoked_with_the_blast_radius_in_the_reason(clients: Clients) -> None:
    # GIVEN an instance whose profile's role is also used by another instance
    iam = clients.iam
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    iam.create_role(RoleName="batch-worker", AssumeRolePolicyDocument=json.dumps(trust))
    profile = iam.create_instance_profile(InstanceProfileName="batch-worker")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="batch-worker", RoleName="batch-worker")
    fleet = launch(clients, profile)
    other = clients.ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    clients.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=other)

    # WHEN evidence is preserved with role sessions revoked
    actions = preserve(clients, request(fleet["instance_id"], revoke_role_sessions=True))

    # THEN the role denies sessions issued before now, and the reason names both instances that lose theirs
    [revoked] = [a for a in actions if a.type is ActionType.REVOKE_CREDENTIALS]
    assert (revoked.target, revoked.outcome) == ("batch-worker", Outcome.APPLIED)
    assert "2 instance(s) using profile batch-worker" in revoked.reason
    assert fleet["instance_id"] in revoked.reason and other in revoked.reason
    assert revoked.after["token_issue_time"] == "2026-03-14T13:27:05Z"
    document = iam.get_role_policy(RoleName="batch-worker", PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    document = document if isinstance(document, dict) else json.loads(document)
    assert document == json.loads(revoke_policy("2026-03-14T13:27:05Z"))


def test_instance_without_a_profile_has_no_sessions_to_revoke(clients: Clients) -> None:
    # GIVEN an instance without an instance profile
    fleet = launch(clients)

    # WHEN evidence is preserved with role sessions revoked
    actions = preserve(clients, request(fleet["instance_id"], revoke_role_sessions=True))

    # THEN that step is skipped with the reason
    assert outcomes(actions)[-1] == ("skipped", "no instance profile: no role sessions to revoke")
