"""The emulated account's side of a finding: what World seeds, how it rewrites ids both ways, and what it reports."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from firebreak_local import cli
from firebreak_local.world import World
from tests.support import ROOT, load_event

INSTANCE = "i-0a1b2c3d4e5f60002"
ENIS = ["eni-0f1e2d3c4b5a60002", "eni-0f1e2d3c4b5a60003", "eni-0f1e2d3c4b5a60009"]
GROUPS = [["sg-0a1b2c3d4e5f60001"], ["sg-0a1b2c3d4e5f60002", "sg-0a1b2c3d4e5f60003"], ["sg-0a1b2c3d4e5f60009"]]


@pytest.fixture
def world(aws: None) -> World:
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


def three_eni_event() -> dict[str, Any]:
    event = load_event("eventbridge/guardduty_crypto_mining")
    interfaces = event["detail"]["resource"]["instanceDetails"]["networkInterfaces"]
    third = copy.deepcopy(interfaces[1])
    third.update(
        networkInterfaceId=ENIS[2],
        subnetId="subnet-0a1b2c3d4e5f60009",
        securityGroups=[{"groupName": "db", "groupId": GROUPS[2][0]}],
    )
    interfaces.append(third)
    return event


def interfaces_of(world: World, instance_id: str) -> list[Any]:
    interfaces = world.ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    return sorted(interfaces, key=lambda eni: eni["Attachment"]["DeviceIndex"])


def emulator_instance(delivered: Any) -> str:
    instance_id: str = delivered["detail"]["resource"]["instanceDetails"]["instanceId"]
    return instance_id


def test_seeds_one_interface_per_finding_interface_in_device_order_with_its_groups(world: World) -> None:
    # GIVEN a finding naming an instance with three network interfaces
    event = three_eni_event()

    # WHEN the world seeds it
    delivered = world.seed(event)

    # THEN the emulated instance has three interfaces, in the finding's order, each with its interface's groups
    instance_id = emulator_instance(delivered)
    assert instance_id != INSTANCE
    interfaces = interfaces_of(world, instance_id)
    assert [eni["Attachment"]["DeviceIndex"] for eni in interfaces] == [0, 1, 2]
    assert [world.finding_id(eni["NetworkInterfaceId"]) for eni in interfaces] == ENIS
    assert [sorted(world.finding_id(g["GroupId"]) for g in eni["Groups"]) for eni in interfaces] == GROUPS
    assert len({eni["VpcId"] for eni in interfaces}) == 1
    assert len({eni["SubnetId"] for eni in interfaces}) == 3


def test_second_delivery_of_the_same_finding_reuses_the_instance(world: World) -> None:
    # GIVEN a finding already seeded
    first = world.seed(three_eni_event())

    # WHEN it is delivered again
    second = world.seed(three_eni_event())

    # THEN both deliveries name the same emulated instance, and the account holds only that one
    assert emulator_instance(first) == emulator_instance(second)
    reservations = world.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    assert [i["InstanceId"] for r in reservations["Reservations"] for i in r["Instances"]] == [emulator_instance(first)]


def test_rewrite_replaces_ids_in_nested_places_and_inside_arns_and_restore_undoes_it(world: World) -> None:
    # GIVEN a Security Hub finding whose instance is named by an ARN, with its interface, subnet and VPC nested
    event = load_event("eventbridge/securityhub_guardduty_copy")
    original = copy.deepcopy(event)

    # WHEN the world seeds it
    delivered = world.seed(event)

    # THEN every finding id is the emulator's, in the ARN too, and the caller's event is untouched
    resource = delivered["detail"]["findings"][0]["Resources"][0]
    prefix, _, instance_id = resource["Id"].rpartition("/")
    assert prefix == "arn:aws:ec2:us-east-1:123456789012:instance"
    assert instance_id.startswith("i-") and instance_id != "i-0a1b2c3d4e5f60001"
    details = resource["Details"]["AwsEc2Instance"]
    assert world.finding_id(details["VpcId"]) == "vpc-0a1b2c3d4e5f60001" != details["VpcId"]
    assert world.finding_id(details["SubnetId"]) == "subnet-0a1b2c3d4e5f60001" != details["SubnetId"]
    eni_id = details["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert interfaces_of(world, instance_id)[0]["NetworkInterfaceId"] == eni_id
    assert event == original
    assert world.restore(delivered) == original


def test_rewrite_leaves_ids_that_only_share_a_prefix(world: World) -> None:
    # GIVEN a seeded instance
    world.seed(load_event("eventbridge/guardduty_crypto_mining"))

    # WHEN a longer id that starts with the finding's id is rewritten
    longer = f"{INSTANCE}0"

    # THEN it is left alone, while the id itself is replaced wherever it stands in a string
    assert world.restore(world.seed({"detail": longer})) == {"detail": longer}
    rewritten = world.seed(load_event("eventbridge/guardduty_crypto_mining"))
    assert INSTANCE not in json.dumps(rewritten)
    assert rewritten["detail"]["title"].endswith(f"instance {emulator_instance(rewritten)}.")


def test_seeds_iam_user_and_access_key_reported_active_by_the_finding_key_id(world: World) -> None:
    # GIVEN a finding about an IAM user's access key
    event = load_event("eventbridge/guardduty_iam_user_key_compromised")

    # WHEN the world seeds it
    delivered = world.seed(event)

    # THEN the user has a new active key, delivered in the finding's place and mapped back to the finding's id
    key_id = delivered["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
    keys = world.iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
    assert [(key["AccessKeyId"], key["Status"]) for key in keys] == [(key_id, "Active")]
    assert world.finding_id(key_id) == "AKIAZ4FQH7XKN2LD3VB6" != key_id
    assert world.report()["access_keys"] == {"AKIAZ4FQH7XKN2LD3VB6": "Active"}

    # AND a deactivated key is reported Inactive
    world.iam.update_access_key(UserName="ci-deployer", AccessKeyId=key_id, Status="Inactive")
    assert world.report()["access_keys"] == {"AKIAZ4FQH7XKN2LD3VB6": "Inactive"}


def test_seeds_assumed_role_and_reports_it_revoked_once_it_has_the_revoke_policy(world: World) -> None:
    # GIVEN a seeded finding about an assumed role
    world.seed(load_event("eventbridge/guardduty_access_key_malicious_ip"))
    assert world.report()["revoked_roles"] == []

    # WHEN the role gets the policy that revokes older sessions
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    world.iam.put_role_policy(
        RoleName="web-server-role", PolicyName="AWSRevokeOlderSessions", PolicyDocument=json.dumps(deny)
    )

    # THEN the role is reported revoked
    assert world.report()["revoked_roles"] == ["web-server-role"]


def test_malformed_event_seeds_nothing_and_passes_through_unchanged(world: World) -> None:
    # GIVEN an event the normaliser rejects
    event = load_event("eventbridge/guardduty_malformed")
    original = copy.deepcopy(event)

    # WHEN the world seeds it
    delivered = world.seed(event)

    # THEN it comes back as it was, and nothing was created
    assert delivered == original
    assert world.ec2.describe_instances()["Reservations"] == []
    assert world.report() == {
        "instances": {},
        "access_keys": {},
        "revoked_roles": [],
        "buckets": {},
        "functions": {},
        "databases": {},
        "tasks": {},
    }


def test_instance_that_already_exists_is_used_as_it_is(world: World) -> None:
    # GIVEN an instance the account already has, named by a finding
    existing = world.ec2.run_instances(ImageId="ami-04681a1dbd79675a5", MinCount=1, MaxCount=1)["Instances"][0]
    event = load_event("eventbridge/guardduty_crypto_mining")
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = existing["InstanceId"]

    # WHEN the world seeds it
    delivered = world.seed(event)

    # THEN no instance is created and the id stays
    assert emulator_instance(delivered) == existing["InstanceId"]
    assert len(world.ec2.describe_instances()["Reservations"]) == 1


def test_report_keys_instances_by_the_finding_ids_and_reads_their_state(world: World) -> None:
    # GIVEN a seeded instance
    instance_id = emulator_instance(world.seed(three_eni_event()))

    # THEN the report shows it under the finding's id, groups per interface as the finding's ids, where it lives
    report = world.report()["instances"]
    assert list(report) == [INSTANCE]
    assert report[INSTANCE] == {
        "security_groups": GROUPS,
        "quarantined": False,
        "termination_protection": False,
        "snapshots": 0,
        "tags": {"Name": "batch-worker-7", "Environment": "production", "firebreak:finding-id": INSTANCE},
        "account": "123456789012",
        "region": "us-east-1",
    }

    # WHEN every interface is moved to a quarantine group, the instance protected and a snapshot tagged with it
    vpc_id = interfaces_of(world, instance_id)[0]["VpcId"]
    quarantine = world.ec2.create_security_group(
        GroupName="firebreak-quarantine-test", Description="no traffic", VpcId=vpc_id
    )["GroupId"]
    for eni in interfaces_of(world, instance_id):
        world.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[quarantine])
    world.ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": True})
    volume = world.ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    world.ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "firebreak:instance", "Value": instance_id}]}],
    )

    # THEN the report says so, showing the quarantine group by its emulator id (no finding names it)
    after = world.report()["instances"][INSTANCE]
    assert after["security_groups"] == [[quarantine]] * 3
    assert after["quarantined"] is True
    assert after["termination_protection"] is True
    assert after["snapshots"] == 1


@pytest.fixture
def restored_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.usefixtures("restored_environment")
def test_cli_run_reports_the_seeded_instance_by_the_finding_id(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the repository root as the working directory
    monkeypatch.chdir(ROOT)

    # WHEN a finding about an instance with two interfaces runs through the CLI
    code = cli.main(["run", "--json", "events/eventbridge/guardduty_crypto_mining.json"])

    # THEN the world shows the instance under the finding's id, quarantined: one group list per interface, each
    # holding only the quarantine group (no finding names it, so it keeps its emulator id), and a snapshot of it
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    instance = document["world"]["instances"][INSTANCE]
    assert instance["quarantined"] is True
    assert len(instance["security_groups"]) == len(GROUPS[:2])
    assert len({tuple(groups) for groups in instance["security_groups"]}) == 1
    assert not set(instance["security_groups"][0]) & {group for groups in GROUPS for group in groups}
    assert instance["snapshots"] == 1
    assert document["results"][0]["incident"]["instance_id"] == INSTANCE
