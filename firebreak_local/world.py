"""The emulated account's side of a finding: seeds what the finding names, and maps the emulator's ids back to its ids.

moto chooses its own ids (i-…, eni-…, AKIA…), so an event is delivered with the finding's ids rewritten to the seeded
resources' ids, and whatever the run reports is rewritten back to the finding's ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef
    from mypy_boto3_iam import IAMClient

    from firebreak.core.models import Incident, NetworkInterface

# An Amazon Linux 2 image moto bundles, so run_instances accepts it even with MOTO_ENABLE_AMI_VALIDATION on;
# describe_images would find one too, but loading moto's image list costs over a second.
IMAGE_ID = "ami-04681a1dbd79675a5"
QUARANTINE_GROUP_PREFIX = "firebreak-quarantine"
REVOKE_SESSIONS_POLICY = "AWSRevokeOlderSessions"
FINDING_ID_TAG = "firebreak:finding-id"
_IAM_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_EC2_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


class World:
    """What the emulated account holds for the findings run so far, and the finding id ↔ emulator id mapping."""

    def __init__(self, ec2: EC2Client, iam: IAMClient) -> None:
        self.ec2 = ec2
        self.iam = iam
        self._to_emulator: dict[str, str] = {}
        self._to_finding: dict[str, str] = {}
        self._vpcs: dict[str, str] = {}
        self._subnets: dict[str, list[str]] = {}
        self._instances: list[str] = []
        self._key_users: dict[str, str] = {}
        self._roles: list[str] = []

    def seed(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """Create what the event's findings name and do not exist yet; the event with their ids made the emulator's."""
        # Imported here: the firebreak package is importable only once the engine has put the layer on sys.path.
        from firebreak.core.errors import FindingRejected
        from firebreak.triage.findings import normalise_all

        try:
            incidents = normalise_all(event)
        except FindingRejected:
            return event
        for incident in incidents:
            if incident.resource_type == "Instance":
                self._seed_instance(incident)
            if incident.principal_type == "IAMUser":
                self._seed_user(incident.principal_name, incident.access_key_id)
            elif incident.principal_type == "AssumedRole":
                self._seed_role(incident.principal_name)
        # _rewrite builds new containers, never mutates: the caller's event stays as read, for rule matching.
        rewritten: Mapping[str, Any] = _rewrite(event, self._to_emulator)
        return rewritten

    def finding_id(self, emulator_id: str) -> str:
        """The finding's identifier for a seeded resource; any other id as given."""
        return self._to_finding.get(emulator_id, emulator_id)

    def restore(self, value: Any) -> Any:
        """value with every emulator id of a seeded resource, alone or inside a longer string, made the finding's."""
        return _rewrite(value, self._to_finding)

    def report(self) -> dict[str, Any]:
        """The seeded instances, access keys and revoked roles as they are now, keyed by the findings' ids."""
        return {
            "instances": {finding: self._instance_report(self._to_emulator[finding]) for finding in self._instances},
            "access_keys": {key: self._key_status(key, user) for key, user in self._key_users.items()},
            "revoked_roles": sorted(
                role
                for role in self._roles
                if REVOKE_SESSIONS_POLICY in self.iam.list_role_policies(RoleName=role)["PolicyNames"]
            ),
        }

    # --- seeding ------------------------------------------------------------------------------------------------

    def _map(self, finding_id: str | None, emulator_id: str) -> None:
        # An empty id would match between any two characters of every string _rewrite reads.
        if not finding_id:
            return
        self._to_emulator[finding_id] = emulator_id
        self._to_finding[emulator_id] = finding_id

    def _seed_instance(self, incident: Incident) -> None:
        from firebreak.core.models import NetworkInterface

        finding_instance = incident.instance_id
        if finding_instance is None or finding_instance in self._to_emulator:
            return
        self._instances.append(finding_instance)
        existing = self.ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [finding_instance]}])
        if existing["Reservations"]:
            self._map(finding_instance, finding_instance)
            return
        first, *others = incident.network_interfaces or (NetworkInterface(""),)
        subnet, groups = self._placement(first, incident.vpc_id)
        pairs = (*incident.resource_tags, (FINDING_ID_TAG, finding_instance))
        tags: TagSpecificationTypeDef = {
            "ResourceType": "instance",
            "Tags": [{"Key": key, "Value": value} for key, value in pairs],
        }
        # Groups on the primary interface rather than the instance: moto adds an instance's own groups to every
        # interface attached to it, which would give each further interface the first one's groups too.
        instance = self.ec2.run_instances(
            ImageId=IMAGE_ID,
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": groups}],
            TagSpecifications=[tags],
        )["Instances"][0]
        self._map(finding_instance, instance["InstanceId"])
        self._map(first.interface_id, instance["NetworkInterfaces"][0]["NetworkInterfaceId"])
        for device_index, interface in enumerate(others, 1):
            subnet, groups = self._placement(interface, incident.vpc_id)
            eni_id = self.ec2.create_network_interface(SubnetId=subnet, Groups=groups)["NetworkInterface"][
                "NetworkInterfaceId"
            ]
            self.ec2.attach_network_interface(
                NetworkInterfaceId=eni_id, InstanceId=instance["InstanceId"], DeviceIndex=device_index
            )
            self._map(interface.interface_id, eni_id)

    def _placement(self, interface: NetworkInterface, instance_vpc: str | None) -> tuple[str, list[str]]:
        """The subnet and security groups to give an interface like the finding's, created on first use."""
        finding_vpc = interface.vpc_id or instance_vpc or ""
        if finding_vpc not in self._vpcs:
            vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            self._vpcs[finding_vpc] = vpc
            self._subnets[vpc] = []
            self._map(finding_vpc, vpc)
        vpc = self._vpcs[finding_vpc]
        subnets = self._subnets[vpc]
        if interface.subnet_id and interface.subnet_id in self._to_emulator:
            subnet = self._to_emulator[interface.subnet_id]
        elif not interface.subnet_id and subnets:
            # ASFF names the subnet only for a single-interface instance; the others share the VPC's first subnet.
            subnet = subnets[0]
        else:
            cidr = f"10.0.{len(subnets)}.0/24"
            subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
            subnets.append(subnet)
            self._map(interface.subnet_id, subnet)
        for group in interface.security_group_ids:
            if group not in self._to_emulator:
                created = self.ec2.create_security_group(
                    GroupName=f"seeded-{group}", Description=f"Seeded for finding group {group}", VpcId=vpc
                )
                self._map(group, created["GroupId"])
        return subnet, [self._to_emulator[group] for group in interface.security_group_ids]

    def _seed_user(self, user: str | None, finding_key: str | None) -> None:
        if user is None or not _IAM_NAME.fullmatch(user):
            return
        try:
            keys = self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        except self.iam.exceptions.NoSuchEntityException:
            self.iam.create_user(UserName=user)
            keys = []
        if finding_key is None or finding_key in self._to_emulator:
            return
        self._key_users[finding_key] = user
        if any(key["AccessKeyId"] == finding_key for key in keys):
            self._map(finding_key, finding_key)
        else:
            self._map(finding_key, self.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])

    def _seed_role(self, role: str | None) -> None:
        if role is None or not _IAM_NAME.fullmatch(role) or role in self._roles:
            return
        self._roles.append(role)
        try:
            self.iam.get_role(RoleName=role)
        except self.iam.exceptions.NoSuchEntityException:
            self.iam.create_role(RoleName=role, AssumeRolePolicyDocument=_EC2_TRUST_POLICY)

    # --- observing ----------------------------------------------------------------------------------------------

    def _instance_report(self, instance_id: str) -> dict[str, Any]:
        interfaces = self.ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["NetworkInterfaces"]
        interfaces.sort(key=lambda eni: eni.get("Attachment", {}).get("DeviceIndex", 0))
        groups = [eni.get("Groups", []) for eni in interfaces]
        instance = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        protection = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
        # One value per call: moto's tag-value filter with two values wants all of a snapshot's tag values among them.
        snapshots = {
            snapshot["SnapshotId"]
            for name in {instance_id, self.finding_id(instance_id)}
            for snapshot in self.ec2.describe_snapshots(Filters=[{"Name": "tag-value", "Values": [name]}])["Snapshots"]
        }
        return {
            "security_groups": [sorted(self.finding_id(group["GroupId"]) for group in eni) for eni in groups],
            "quarantined": bool(groups)
            and all(eni and all(g["GroupName"].startswith(QUARANTINE_GROUP_PREFIX) for g in eni) for eni in groups),
            "termination_protection": protection["DisableApiTermination"]["Value"],
            "snapshots": len(snapshots),
            "tags": {tag["Key"]: self.restore(tag["Value"]) for tag in instance.get("Tags", [])},
        }

    def _key_status(self, finding_key: str, user: str) -> str:
        keys = self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        status = next((key["Status"] for key in keys if key["AccessKeyId"] == self._to_emulator[finding_key]), None)
        # A deleted key can no longer be used, which is what Inactive tells the reader.
        return "Active" if status == "Active" else "Inactive"


def _rewrite(value: Any, mapping: Mapping[str, str]) -> Any:
    """value with every string equal to, or containing as a whole token, a key of mapping given that key's value."""
    if not mapping:
        return value
    # Bounded so that sg-0a1 is not replaced inside sg-0a12; longest first so one id never shadows a longer one.
    alternatives = "|".join(re.escape(key) for key in sorted(mapping, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return _replace(value, lambda text: pattern.sub(lambda match: mapping[match.group(0)], text))


def _replace(value: Any, replace: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, Mapping):
        return {key: _replace(item, replace) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, replace) for item in value]
    return value
