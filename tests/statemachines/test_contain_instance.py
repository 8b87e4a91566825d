"""The real contain-instance playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak_local.engine import Engine, Execution
from firebreak_local.world import IMAGE_ID
from tests.support import TEMPLATE, incident_record, load_event, out_of_memory, report_of, start

FINDING_INSTANCE = "i-0a1b2c3d4e5f60002"
ORIGINAL_GROUPS = {
    "eni-0f1e2d3c4b5a60002": ["sg-0a1b2c3d4e5f60001"],
    "eni-0f1e2d3c4b5a60003": ["sg-0a1b2c3d4e5f60002", "sg-0a1b2c3d4e5f60003"],
    "eni-0f1e2d3c4b5a60009": ["sg-0a1b2c3d4e5f60009"],
}
CONTAIN_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    "Run Contain Instance Playbook",
    "Isolate Instance",
    "Is Instance Containable?",
    "Preserve Evidence",
    "Any Addresses To Block?",
    "Containment Complete",
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
    "Response Complete",
]
ISOLATE_FUNCTION = "firebreak-IsolateInstanceFunction"
MUTATING = ("Create", "Modify", "Authorize", "Revoke", "Detach", "Deregister", "Put", "Delete")


def crypto_mining_on_three_interfaces() -> dict[str, Any]:
    """The crypto-mining finding with a third interface, in a third subnet with a group of its own."""
    event = load_event("eventbridge/guardduty_crypto_mining")
    interfaces = event["detail"]["resource"]["instanceDetails"]["networkInterfaces"]
    third = copy.deepcopy(interfaces[1])
    third.update(
        networkInterfaceId="eni-0f1e2d3c4b5a60009",
        subnetId="subnet-0a1b2c3d4e5f60009",
        securityGroups=[{"groupName": "db", "groupId": "sg-0a1b2c3d4e5f60009"}],
    )
    interfaces.append(third)
    return event


@dataclass(frozen=True)
class Fleet:
    """The seeded instance by its emulator id, and the Auto Scaling group and target group it serves in."""

    instance_id: str
    vpc_id: str
    auto_scaling_group: str
    target_group_arn: str
    desired_capacity: int


def seed_fleet(engine: Engine, event: dict[str, Any]) -> Fleet:
    """Seed the finding's instance, give it a second volume, and put it in an Auto Scaling group and a target group."""
    instance_id = emulator_instance(engine, event)
    ec2 = engine.client("ec2")
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    zone = instance["Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(Size=8, AvailabilityZone=zone)["VolumeId"]
    ec2.attach_volume(Device="/dev/sdf", InstanceId=instance_id, VolumeId=volume)
    autoscaling = engine.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="batch-worker", ImageId=IMAGE_ID, InstanceType="t3.medium"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="batch-workers",
        LaunchConfigurationName="batch-worker",
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=0,
        VPCZoneIdentifier=instance["SubnetId"],
    )
    autoscaling.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName="batch-workers")
    desired = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-workers"])["AutoScalingGroups"]
    elbv2 = engine.client("elbv2")
    target_group = elbv2.create_target_group(
        Name="batch-api", Protocol="HTTP", Port=80, VpcId=instance["VpcId"], TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=target_group, Targets=[{"Id": instance_id, "Port": 80}])
    return Fleet(instance_id, instance["VpcId"], "batch-workers", target_group, desired[0]["DesiredCapacity"])


def emulator_instance(engine: Engine, event: dict[str, Any]) -> str:
    """The emulator's id of the finding's instance, seeding it if it is not there yet."""
    instance_id: str = engine.world.seed(event)["detail"]["resource"]["instanceDetails"]["instanceId"]
    return instance_id


def actions(execution: Execution, action_type: str = "isolate_instance") -> list[dict[str, Any]]:
    return [action for action in report_of(execution)["actions"] if action["type"] == action_type]


def interface_groups(engine: Engine, instance_id: str) -> dict[str, list[str]]:
    """Group ids of each interface of the instance, keyed by the finding's interface ids where it names them."""
    interfaces = engine.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    return {
        engine.world.finding_id(eni["NetworkInterfaceId"]): sorted(group["GroupId"] for group in eni["Groups"])
        for eni in interfaces
    }


def firebreak_groups(engine: Engine, prefix: str) -> list[dict[str, Any]]:
    groups = engine.client("ec2").describe_security_groups()["SecurityGroups"]
    return [group for group in groups if group["GroupName"].startswith(prefix)]


def group_rules(engine: Engine, group_id: str) -> list[dict[str, Any]]:
    rules = engine.client("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return list(rules["SecurityGroupRules"])


def mutating_calls(execution: Execution) -> list[str]:
    # The incident stream's consumer publishes status events to EventBridge: not a change to the account.
    return [
        call
        for call in execution.api_calls
        if call.split(".")[-1].startswith(MUTATING) and not call.startswith("eventbridge.")
    ]


# --- the whole playbook -----------------------------------------------------------------------------------------


def test_happy_path_quarantines_every_interface_and_keeps_the_instance_as_evidence(engine: Engine) -> None:
    # GIVEN crypto mining on an instance with three interfaces and two volumes, serving in an Auto Scaling group and
    # a load balancer target group
    event = crypto_mining_on_three_interfaces()
    fleet = seed_fleet(engine, event)

    # WHEN the finding runs through the stack
    execution = start(engine, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == CONTAIN_STATES
    outcome = report_of(execution)
    assert outcome["status"] == "CONTAINED"
    assert outcome["playbook"] == "contain-instance"

    # AND every interface holds only the VPC's quarantine group, which has no rules at all
    [quarantine] = firebreak_groups(engine, "firebreak-quarantine")
    assert quarantine["GroupName"] == f"firebreak-quarantine-{fleet.vpc_id}"
    assert {"Key": "firebreak:purpose", "Value": "quarantine"} in quarantine["Tags"]
    assert interface_groups(engine, fleet.instance_id) == dict.fromkeys(ORIGINAL_GROUPS, [quarantine["GroupId"]])
    assert group_rules(engine, quarantine["GroupId"]) == []

    # AND it left its Auto Scaling group, whose desired capacity did not drop, and its target group
    autoscaling = engine.client("autoscaling")
    assert autoscaling.describe_auto_scaling_instances(InstanceIds=[fleet.instance_id])["AutoScalingInstances"] == []
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet.auto_scaling_group])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == fleet.desired_capacity == 1
    targets = engine.client("elbv2").describe_target_health(TargetGroupArn=fleet.target_group_arn)
    assert fleet.instance_id not in [d["Target"]["Id"] for d in targets["TargetHealthDescriptions"]]

    # AND termination protection is on, and both volumes have a snapshot tagged with the incident and the instance
    ec2 = engine.client("ec2")
    protection = ec2.describe_instance_attribute(InstanceId=fleet.instance_id, Attribute="disableApiTermination")
    assert protection["DisableApiTermination"]["Value"] is True
    snapshots = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:firebreak:incident-id", "Values": [outcome["incident_id"]]}]
    )["Snapshots"]
    assert len(snapshots) == 2
    assert all({"Key": "firebreak:instance-id", "Value": fleet.instance_id} in s["Tags"] for s in snapshots)
    world = engine.world.report()["instances"][FINDING_INSTANCE]
    assert world["quarantined"] is True
    assert world["snapshots"] == 2
    assert world["tags"]["firebreak:incident-id"] == outcome["incident_id"]
    assert world["tags"]["firebreak:finding-type"] == "CryptoCurrency:EC2/BitcoinTool.B_DNS"

    # AND the incident record holds every interface's original groups, for the release
    stored = incident_record(engine, outcome["incident_id"])
    assert stored["status"] == "CONTAINED"
    swaps = [a for a in stored["actions"] if "network_interface" in a.get("before", {})]
    originals = {
        engine.world.finding_id(a["before"]["network_interface"]): sorted(
            engine.world.finding_id(g) for g in a["before"]["security_groups"]
        )
        for a in swaps
    }
    assert originals == ORIGINAL_GROUPS
    assert all(a["outcome"] == "applied" for a in swaps)


def test_second_finding_on_an_isolated_instance_changes_nothing_and_says_already_applied(engine: Engine) -> None:
    # GIVEN an instance already contained for one finding
    first = crypto_mining_on_three_interfaces()
    start(engine, first)
    instance_id = emulator_instance(engine, first)
    before = interface_groups(engine, instance_id)

    # WHEN another finding about the same instance arrives
    second = crypto_mining_on_three_interfaces()
    second["detail"]["id"] = "f9c7b1d3e5a68802f4b3d2c1a0f96857"
    second["detail"]["type"] = "Backdoor:EC2/C&CActivity.B!DNS"
    execution = start(engine, second)

    # THEN isolation says already applied for every interface, nothing is changed, no evidence step repeats
    assert execution.states[4:9] == [
        "Isolate Instance",
        "Is Instance Containable?",
        "Any Addresses To Block?",
        "Containment Complete",
        "Notify Responders",
    ]
    assert {a["outcome"] for a in actions(execution)} == {"already_applied"}
    assert len(actions(execution)) == 3
    assert report_of(execution)["status"] == "CONTAINED"
    assert [call for call in mutating_calls(execution) if call.startswith("ec2.")] == []
    assert interface_groups(engine, instance_id) == before
    assert engine.world.report()["instances"][FINDING_INSTANCE]["snapshots"] == 1


def test_terminated_instance_is_skipped_with_a_clear_reason_and_never_contained(engine: Engine) -> None:
    # GIVEN the instance was terminated before the finding was handled
    event = load_event("eventbridge/guardduty_crypto_mining")
    instance_id = emulator_instance(engine, event)
    engine.client("ec2").terminate_instances(InstanceIds=[instance_id])

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the playbook stops after the gate, says why, and the incident is only NOTIFIED
    assert execution.status == "SUCCEEDED"
    assert execution.states[4:7] == ["Isolate Instance", "Is Instance Containable?", "Containment Skipped"]
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped"
    assert "terminated" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"
    assert firebreak_groups(engine, "firebreak-") == []


def test_instance_tagged_exempt_now_is_suppressed_and_not_touched(engine: Engine) -> None:
    # GIVEN an instance that was tagged firebreak:exempt=true after GuardDuty described it
    event = load_event("eventbridge/guardduty_crypto_mining")
    instance_id = emulator_instance(engine, event)
    ec2 = engine.client("ec2")
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "firebreak:exempt", "Value": "true"}])
    before = interface_groups(engine, instance_id)

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN nothing is touched and the incident is SUPPRESSED, with the live tag as the reason
    assert execution.states[4:7] == ["Isolate Instance", "Is Instance Containable?", "Containment Skipped"]
    assert [a["outcome"] for a in actions(execution)] == ["skipped"]
    assert "firebreak:exempt=true" in actions(execution)[0]["reason"]
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert incident_record(engine, report_of(execution)["incident_id"])["status"] == "SUPPRESSED"
    assert interface_groups(engine, instance_id) == before
    assert [call for call in mutating_calls(execution) if not call.startswith("dynamodb.")] == []


def test_a_refused_step_makes_the_incident_partially_contained(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN Auto Scaling refuses to detach the instance (forced: the role lacks the permission)
    event = crypto_mining_on_three_interfaces()
    fleet = seed_fleet(engine, event)

    def refuse(**kwargs: Any) -> Any:
        error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: autoscaling:DetachInstances"}}
        raise ClientError(error, "DetachInstances")  # type: ignore[arg-type]

    # The step acts in the finding's Region, so its client is the one for that Region.
    monkeypatch.setattr(aws.client("autoscaling", region="us-east-1"), "detach_instances", refuse)

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the failed step is reported as failed, every other step still ran, and the status says so truthfully
    failed = [a for a in actions(execution) if a["outcome"] == "failed"]
    assert [a["reason"] for a in failed] == [
        "Auto Scaling: AccessDenied: not authorized to perform: autoscaling:DetachInstances"
    ]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert incident_record(engine, report_of(execution)["incident_id"])["status"] == "PARTIALLY_CONTAINED"
    assert (
        engine.notifications()[-1]["subject"] == "Firebreak PARTIALLY_CONTAINED: CryptoCurrency:EC2/BitcoinTool.B!DNS"
    )
    assert engine.world.report()["instances"][FINDING_INSTANCE]["quarantined"] is True
    members = engine.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[fleet.instance_id])
    assert [m["AutoScalingGroupName"] for m in members["AutoScalingInstances"]] == [fleet.auto_scaling_group]


def test_isolation_step_crashing_is_failed_and_the_evidence_is_still_kept(engine: Engine) -> None:
    # GIVEN the isolation function crashes (forced: a rare runtime error)
    engine.dispatcher.override(ISOLATE_FUNCTION, out_of_memory)

    # WHEN crypto mining runs
    execution = start(engine, load_event("eventbridge/guardduty_crypto_mining"))

    # THEN isolation is reported failed, the evidence steps still ran, and the incident is never CONTAINED
    first, *rest = actions(execution)
    assert {key: first[key] for key in ("type", "target", "outcome", "reason")} == {
        "type": "isolate_instance",
        "target": FINDING_INSTANCE,
        "outcome": "failed",
        "reason": "step Isolate Instance failed: RuntimeError",
    }
    assert "termination protection on" in [a["reason"] for a in rest]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert engine.world.report()["instances"][FINDING_INSTANCE]["quarantined"] is False


def test_command_and_control_address_is_blocked_after_isolation(engine: Engine) -> None:
    # GIVEN an instance talking to a command-and-control server on the internet
    event = load_event("eventbridge/guardduty_c2_outbound")

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the instance is isolated and the server's address is enriched and blocked
    assert execution.states[6:11] == [
        "Preserve Evidence",
        "Any Addresses To Block?",
        "Enrich Addresses",
        "Block Addresses",
        "Containment Complete",
    ]
    assert {a["target"]: a["outcome"] for a in actions(execution, "block_ip")} == {"193.233.20.15/32": "applied"}
    assert engine.blocked_ips() == ["193.233.20.15/32"]
    assert report_of(execution)["status"] == "CONTAINED"


def test_dry_run_plans_every_call_and_changes_nothing() -> None:
    # GIVEN a stack in dry-run mode and an instance in an Auto Scaling group and a target group
    with Engine(TEMPLATE, {"ResponseMode": "dry-run"}) as engine:
        event = crypto_mining_on_three_interfaces()
        fleet = seed_fleet(engine, event)
        before = interface_groups(engine, fleet.instance_id)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN every action is planned with the exact calls, and nothing changed
        assert report_of(execution)["status"] == "DRY_RUN"
        planned = actions(execution)
        assert {a["outcome"] for a in planned} <= {"planned", "already_applied"}
        reasons = " ".join(a["reason"] for a in planned if a["outcome"] == "planned")
        for call in ("CreateSecurityGroup", "ModifyNetworkInterfaceAttribute", "DetachInstances", "CreateSnapshot"):
            assert call in reasons
        assert "ShouldDecrementDesiredCapacity=false" in reasons
        assert [call for call in mutating_calls(execution) if not call.startswith(("dynamodb.", "sns."))] == []
        assert interface_groups(engine, fleet.instance_id) == before
        assert firebreak_groups(engine, "firebreak-") == []


# --- two incidents at once --------------------------------------------------------------------------------------


@pytest.fixture
def lined_up(engine: Engine) -> Iterator[threading.Barrier]:
    """The real isolation handler, entered by two executions at the same moment."""
    from functions.isolate_instance import app as isolate_instance

    barrier = threading.Barrier(2, timeout=20)

    def together(event: dict[str, Any], context: Any) -> Any:
        barrier.wait()
        return isolate_instance.lambda_handler(event, context)

    engine.dispatcher.override(ISOLATE_FUNCTION, together)
    yield barrier
    engine.dispatcher.override(ISOLATE_FUNCTION, None)


def test_two_incidents_at_once_in_one_vpc_share_one_quarantine_group(
    engine: Engine, lined_up: threading.Barrier
) -> None:
    # GIVEN two findings about two instances in the same VPC, arriving together
    events = [load_event("eventbridge/guardduty_crypto_mining"), load_event("eventbridge/guardduty_c2_outbound")]
    deliveries = []
    for event in events:
        rule = engine.matching_rule(event)
        assert rule is not None
        deliveries.append((rule, event))

    # WHEN both executions isolate their instance at the same moment
    executions = engine.start_many(deliveries)

    # THEN both are contained, the VPC has exactly one quarantine group, with no rules, and it holds both instances
    assert [report_of(execution)["status"] for execution in executions] == ["CONTAINED", "CONTAINED"]
    quarantine = firebreak_groups(engine, "firebreak-quarantine")
    vpc_id = engine.client("ec2").describe_instances(InstanceIds=[emulator_instance(engine, events[0])])
    assert [group["GroupName"] for group in quarantine] == [
        f"firebreak-quarantine-{vpc_id['Reservations'][0]['Instances'][0]['VpcId']}"
    ]
    assert len(firebreak_groups(engine, "firebreak-untrack")) == 1
    assert group_rules(engine, quarantine[0]["GroupId"]) == []
    world = engine.world.report()["instances"]
    assert [world[instance]["quarantined"] for instance in (FINDING_INSTANCE, "i-0a1b2c3d4e5f60003")] == [True, True]
    assert {g for groups in world[FINDING_INSTANCE]["security_groups"] for g in groups} == {quarantine[0]["GroupId"]}
