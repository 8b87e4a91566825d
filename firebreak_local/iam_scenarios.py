"""What the IAM coverage run sets up around its findings (`EVENTS` in firebreak_local.iam_coverage): the accounts'
fleets, passwords and keys before a finding, and what follows it (an answer, a second finding, a schedule's run)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from firebreak_local import runtime
from firebreak_local.engine import Engine, Execution
from firebreak_local.events import read_event
from firebreak_local.feeds import read_feed_file
from firebreak_local.iam_check import REGION, ROOT, SECURITY_ACCOUNT

FINDING_MEMBER_ACCOUNT = "111122223333"  # the member account the events/ member findings name


def _place(event: Mapping[str, Any]) -> tuple[str, str]:
    detail = event["detail"]
    return str(detail["accountId"]), str(detail["region"])


def _seeded(engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    """The event as the engine will deliver it, its account prepared and its resources seeded (ids the emulator's)."""
    engine.prepare(event)
    return dict(engine.world.seed(event))


def in_fleet(engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    """The finding's instance also serves in an Auto Scaling group and a target group of its account."""
    instance_id = _seeded(engine, event)["detail"]["resource"]["instanceDetails"]["instanceId"]
    account, region = _place(event)
    ec2 = engine.client("ec2", account, region)
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    autoscaling = engine.client("autoscaling", account, region)
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="workers", ImageId=instance["ImageId"], InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="workers",
        LaunchConfigurationName="workers",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        VPCZoneIdentifier=instance["SubnetId"],
    )
    autoscaling.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName="workers")
    elbv2 = engine.client("elbv2", account, region)
    group = elbv2.create_target_group(Name="api", Protocol="HTTP", Port=80, VpcId=instance["VpcId"])
    elbv2.register_targets(TargetGroupArn=group["TargetGroups"][0]["TargetGroupArn"], Targets=[{"Id": instance_id}])
    # ... and runs with an instance profile, whose role's sessions RevokeInstanceRoleSessions revokes.
    iam = engine.client("iam", account)
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    iam.create_role(RoleName="api-server", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="api-server")
    iam.add_role_to_instance_profile(InstanceProfileName="api-server", RoleName="api-server")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "api-server"}, InstanceId=instance_id)
    return event


def in_member_account(engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    """The same finding, in the member account and Region the member events name."""
    text = json.dumps(event).replace(SECURITY_ACCOUNT, FINDING_MEMBER_ACCOUNT)
    text = text.replace(f'"{REGION}"', '"eu-west-1"').replace(f":{REGION}:", ":eu-west-1:")
    moved: dict[str, Any] = json.loads(text)
    moved["detail"]["id"] += "-member"
    return moved


def with_console_password(engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    """The finding's IAM user also has a console password (the login profile DeleteLoginProfile removes)."""
    user = _seeded(engine, event)["detail"]["resource"]["accessKeyDetails"]["userName"]
    account, _ = _place(event)
    engine.client("iam", account).create_login_profile(UserName=user, Password="Correct-Horse-9")
    return event


def with_provider_keys(engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    """Both providers have keys; their address refuses connections (the run contacts nobody)."""
    keys = {name: {"key": "local", "base_url": "http://127.0.0.1:9"} for name in ("abuseipdb", "virustotal")}
    secret = engine.resources["ProviderKeysSecret"].ref
    engine.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps(keys))
    return event


def then_deny(engine: Engine, execution: Execution | None) -> None:
    """A responder denies the waiting approval: the answer function fails the task (SendTaskFailure)."""
    assert execution is not None
    for request in engine.approval_requests(execution.arn):
        engine.answer_approval(str(request["approval"]["request"]["token"]), "deny")
    engine.wait(execution.arn)


def other_attacker(event: dict[str, Any]) -> None:
    remote = event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]
    remote["ipAddressV4"] = "194.26.29.102"


def again(
    event_name: str, *changes: Callable[[dict[str, Any]], None], release: bool = True
) -> Callable[[Engine, Execution | None], None]:
    """A second finding like the event (its own id, changed as given) runs, and its incident is released before the
    first one: what the second changed is put back to what the first left."""

    def then(engine: Engine, execution: Execution | None) -> None:
        event = copy.deepcopy(read_event(str(ROOT / "events" / f"{event_name}.json")))
        event["detail"]["id"] += "-again"
        for change in changes:
            change(event)
        rule = engine.matching_rule(event)
        assert rule is not None
        second = engine.start(rule, event)
        report = second.output if isinstance(second.output, dict) else {}
        if release and report.get("incident_id"):
            engine.release(report["incident_id"])

    return then


def then_sweep_expired(engine: Engine, execution: Execution | None) -> None:
    """The attacker is blocked in the member account's network ACL too, every block has expired (moved, not waited
    for), and the scheduled sweep lifts them from WAF and both accounts' network ACLs."""
    event = read_event(str(ROOT / "events" / "eventbridge" / "guardduty_member_ssh_brute_force.json"))
    rule = engine.matching_rule(event)
    assert rule is not None
    engine.start(rule, event)
    dynamodb, table = engine.client("dynamodb"), engine.resources["BlocklistTable"].ref
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.update_item(
            TableName=table,
            Key={"cidr": item["cidr"]},
            UpdateExpression="SET expires_at = :at",
            ExpressionAttributeValues={":at": {"N": "1"}},
        )
    engine.invoke("SweepBlocklistFunction", {})


class ThreatIntelSets:
    """GuardDuty's ThreatIntelSet API, which moto does not implement, answered as GuardDuty documents it."""

    def __init__(self) -> None:
        self.sets: dict[str, str] = {}

    def __call__(self, event_name: str, request: Any) -> AWSResponse | None:
        operation = event_name.split(".")[-1]
        if not event_name.startswith("before-send.guardduty.") or "ThreatIntelSet" not in operation:
            return None
        answer: dict[str, Any] = {}
        if operation == "ListThreatIntelSets":
            answer = {"threatIntelSetIds": sorted(self.sets)}
        elif operation == "CreateThreatIntelSet":
            set_id = f"fb{len(self.sets)}"
            self.sets[set_id] = str(json.loads(request.body or b"{}").get("name"))
            answer = {"threatIntelSetId": set_id}
        elif operation == "GetThreatIntelSet":
            name = self.sets.get(str(request.url).rstrip("/").rsplit("/", 1)[-1], "")
            answer = {"name": name, "format": "TXT", "status": "ACTIVE"}
        raw = MockRawResponse(json.dumps(answer))
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, raw)  # type: ignore[arg-type]


def then_sync_feeds(engine: Engine, execution: Execution | None) -> None:
    """The bundled local feeds, uploaded to the feed bucket and synced as the schedule would, twice: GuardDuty's
    ThreatIntelSet is created, then updated once the published list is gone."""
    document = read_feed_file(str(ROOT / "events" / "sync_threat_feeds" / "local_feeds.json"), engine)
    parameter = engine.resources["FeedConfigParameter"].ref
    engine.client("ssm").put_parameter(Name=parameter, Value=document, Type="String", Overwrite=True)
    guardduty = ThreatIntelSets()
    runtime.add_guard(guardduty)
    try:
        engine.run_machine("SyncThreatFeedsStateMachine", {})
        bucket = engine.resources["FeedBucket"].ref
        for listed in engine.client("s3").list_objects_v2(Bucket=bucket, Prefix="published/").get("Contents", []):
            engine.client("s3").delete_object(Bucket=bucket, Key=listed["Key"])
        engine.run_machine("SyncThreatFeedsStateMachine", {})
    finally:
        runtime.remove_guard(guardduty)
