"""The emulated accounts' side of a finding: seeds what the finding names, and maps the emulator's ids back to its ids.

moto chooses its own ids (i-…, eni-…, AKIA…), so an event is delivered with the finding's ids rewritten to the seeded
resources' ids, and whatever the run reports is rewritten back to the finding's ids. Each finding's resources are
seeded in the finding's own account and Region, so two accounts may name the same ids without meeting.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import TagTypeDef as RdsTagTypeDef

    from firebreak.core.models import Bucket, Incident, NetworkInterface

# An Amazon Linux 2 image id from moto's bundled list. The engine loads none of that list
# (MOTO_EC2_LOAD_DEFAULT_AMIS=false: a fifth of a second per EC2 backend) and moto accepts any image id while its AMI
# validation is off, as it is by default.
IMAGE_ID = "ami-04681a1dbd79675a5"
QUARANTINE_GROUP_PREFIX = "firebreak-quarantine"
REVOKE_SESSIONS_POLICY = "AWSRevokeOlderSessions"
FINDING_ID_TAG = "firebreak:finding-id"
HOME_ACCOUNT = "123456789012"
HOME_REGION = "us-east-1"
# The rule every network ACL ends with; any other deny entry is someone's block.
_DEFAULT_DENY_RULE = 32767
_IAM_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
# (service, account, region) -> a boto3 client acting in that account and Region.
Clients = Callable[[str, str, str], Any]
# protect-bucket: the Sid of Firebreak's statements, the access-log bucket a deployer creates per account and Region,
# and a harmless stand-in for the malicious object Malware Protection found (the EICAR test file).
DENY_PRINCIPALS_SID = "FirebreakDenyIncidentPrincipals"
DENY_OBJECT_READS_SID = "FirebreakDenyMaliciousObjectReads"
ACCESS_LOG_BUCKET = "firebreak-access-logs-{account}-{region}"
_EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
_BLOCK_ALL = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_EC2_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
# contain-function: a seeded function's execution role, and the smallest package Lambda (and moto) accept.
_LAMBDA_TRUST_POLICY = _EC2_TRUST_POLICY.replace("ec2.amazonaws.com", "lambda.amazonaws.com")
_FUNCTION_ROLE = "seeded-function-role"
EVIDENCE_PREFIX = "Firebreak evidence"


def finding_places(event: Any) -> list[tuple[str, str | None]]:
    """The account and Region each finding of the event is about, each pair once, in order; the Region may be None.

    GuardDuty names them in `detail.accountId` / `detail.region`, Security Hub in each finding's `AwsAccountId` /
    `Region`; the envelope's `account` is the account that received the event, never the one it is about.
    """
    detail = event.get("detail") if isinstance(event, Mapping) else None
    if not isinstance(detail, Mapping):
        return []
    envelope_region = event.get("region")
    findings = detail.get("findings")
    if isinstance(findings, list):
        named = [(f.get("AwsAccountId"), f.get("Region")) for f in findings if isinstance(f, Mapping)]
    else:
        named = [(detail.get("accountId"), detail.get("region"))]
    places: dict[tuple[str, str | None], None] = {}
    for account, region in named:
        if not (isinstance(account, str) and _ACCOUNT.fullmatch(account)):
            continue
        if not _is_region(region):
            region = envelope_region if _is_region(envelope_region) else None
        places[(account, region)] = None
    return list(places)


def _is_region(value: Any) -> bool:
    return isinstance(value, str) and _REGION.fullmatch(value) is not None


@dataclass
class _Place:
    """One account's Region: its EC2 client, the finding ids seeded there and the VPCs and subnets made for them."""

    account: str
    region: str
    ec2: EC2Client
    ids: dict[str, str] = field(default_factory=dict)
    vpcs: dict[str, str] = field(default_factory=dict)
    subnets: dict[str, list[str]] = field(default_factory=dict)
    # The place's clients of the resource playbooks' services (s3, lambda, rds, ecs), made on first use.
    clients: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Account:
    """One account's IAM (global): its client, the access keys and roles findings named there."""

    iam: IAMClient
    ids: dict[str, str] = field(default_factory=dict)
    key_users: dict[str, str] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)


class World:
    """What the emulated accounts hold for the findings run so far, and the finding id ↔ emulator id mapping.

    Without `clients`, every finding is seeded with the two clients given (one account, one Region); with it, in
    the finding's own account and Region, through clients(service, account, region).
    """

    def __init__(
        self,
        ec2: EC2Client,
        iam: IAMClient,
        *,
        account: str = HOME_ACCOUNT,
        region: str = HOME_REGION,
        clients: Clients | None = None,
    ) -> None:
        self.ec2 = ec2
        self.iam = iam
        self.account = account
        self.region = region
        self._clients = clients
        self._home = _Place(account, region, ec2)
        self._places: dict[tuple[str, str], _Place] = {(account, region): self._home}
        self._accounts: dict[str, _Account] = {account: _Account(iam)}
        self._to_finding: dict[str, str] = {}
        self._instances: list[tuple[str, _Place]] = []
        self._buckets: list[tuple[str, _Place]] = []
        # contain-function: the functions findings named, by name, in the place they were seeded.
        self._functions: list[tuple[str, _Place]] = []
        # contain-database: the databases findings named (the Aurora cluster, or the DB instance), where they are.
        self._databases: list[tuple[str, bool, _Place]] = []
        # contain-task: the seeded ECS tasks by the finding's task ARN, and each place's ECS client.
        self._tasks: list[tuple[str, _Place]] = []

    def include(self, account: str, region: str | None = None) -> None:
        """Hold account (and its Region) from now on, so the report shows it even if no finding seeds anything there."""
        self._place(account, region or self.region)

    def seed(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """Create what the event's findings name and do not exist yet; the event with their ids made the emulator's."""
        # Imported here: the firebreak package is importable only once the engine has put the layer on sys.path.
        from firebreak.core.errors import FindingRejected
        from firebreak.triage.findings import normalise_all

        try:
            incidents = normalise_all(event)
        except FindingRejected:
            return event
        mapping: dict[str, str] = {}
        for incident in incidents or ():
            place = self._place(incident.account_id, incident.region)
            holder = self._account(place.account)
            if incident.resource_type == "Instance":
                self._seed_instance(place, incident)
            for bucket in incident.buckets or ():
                self._seed_bucket(place, incident, bucket)
            if incident.resource_type == "Lambda":
                self._seed_function(place, holder, incident)
            if incident.db_instance_id or incident.db_cluster_id:
                self._seed_database(place, incident)
            # contain-task: a runtime finding on an EKS pod names its node, which contain-instance isolates.
            if incident.resource_type == "EKSCluster" and incident.instance_id:
                self._seed_instance(place, incident)
            if incident.task_arn:
                self._seed_task(place, incident)
            if incident.principal_type == "IAMUser":
                self._seed_user(holder, incident.principal_name, incident.access_key_id)
            elif incident.principal_type == "AssumedRole":
                self._seed_role(holder, incident.principal_name)
            mapping.update(holder.ids)
            mapping.update(place.ids)
        if not incidents:
            mapping = {**self._accounts[self.account].ids, **self._home.ids}
        # _rewrite builds new containers, never mutates: the caller's event stays as read, for rule matching.
        rewritten: Mapping[str, Any] = _rewrite(event, mapping)
        return rewritten

    def finding_id(self, emulator_id: str) -> str:
        """The finding's identifier for a seeded resource; any other id as given."""
        return self._to_finding.get(emulator_id, emulator_id)

    def restore(self, value: Any) -> Any:
        """value with every emulator id of a seeded resource, alone or inside a longer string, made the finding's."""
        return _rewrite(value, self._to_finding)

    def report(self) -> dict[str, Any]:
        """The seeded instances, access keys and revoked roles of every account as they are now, by the findings' ids.

        An id that findings name in two accounts or Regions is reported as `<account>/<region>/<id>` (instances) or
        `<account>/<id>` (access keys) for each of them, so neither hides the other.
        """
        instance_labels = _labels([(finding, (place.account, place.region)) for finding, place in self._instances])
        database_labels = _labels([(name, (place.account, place.region)) for name, _, place in self._databases])
        key_labels = _labels(
            [(key, (account,)) for account, holder in self._accounts.items() for key in holder.key_users]
        )
        function_labels = _labels([(name, (place.account, place.region)) for name, place in self._functions])
        return {
            "functions": {
                function_labels[(name, (place.account, place.region))]: {
                    **self._function_report(place, name),
                    "account": place.account,
                    "region": place.region,
                }
                for name, place in self._functions
            },
            "instances": {
                instance_labels[(finding, (place.account, place.region))]: {
                    **self._instance_report(place, place.ids[finding]),
                    "account": place.account,
                    "region": place.region,
                }
                for finding, place in self._instances
            },
            "access_keys": {
                key_labels[(key, (account,))]: self._key_status(holder, key, user)
                for account, holder in self._accounts.items()
                for key, user in holder.key_users.items()
            },
            "revoked_roles": sorted(
                {role for holder in self._accounts.values() for role in holder.roles if self._revoked(holder, role)}
            ),
            "buckets": {
                bucket: {**self._bucket_report(place, bucket), "account": place.account, "region": place.region}
                for bucket, place in self._buckets
            },
            "databases": {
                database_labels[(name, (place.account, place.region))]: {
                    **self._database_report(place, name, cluster),
                    "account": place.account,
                    "region": place.region,
                }
                for name, cluster, place in self._databases
            },
            "tasks": {
                finding: {
                    **self._task_report(place, place.ids[finding]),
                    "account": place.account,
                    "region": place.region,
                }
                for finding, place in self._tasks
            },
        }

    def accounts(self) -> list[str]:
        """Every account other than the world's own that it holds, in the order it met them."""
        return [account for account in self._accounts if account != self.account]

    def account_report(self, account: str) -> dict[str, Any]:
        """One account as it is now: its access keys, its roles (revoked or not), and its network ACLs' blocks."""
        holder = self._accounts.get(account)
        if holder is None:
            return {"access_keys": {}, "roles": {}, "network_acl_blocked": []}
        blocked = {
            entry.get("CidrBlock") or entry.get("Ipv6CidrBlock") or ""
            for place in self._places.values()
            if place.account == account
            for acl in place.ec2.describe_network_acls()["NetworkAcls"]
            for entry in acl.get("Entries", [])
            if entry.get("RuleAction") == "deny" and entry.get("RuleNumber") != _DEFAULT_DENY_RULE
        }
        return {
            "access_keys": {key: self._key_status(holder, key, user) for key, user in holder.key_users.items()},
            "roles": {role: {"revoked": self._revoked(holder, role)} for role in holder.roles},
            "network_acl_blocked": sorted(blocked - {""}),
        }

    # --- seeding ------------------------------------------------------------------------------------------------

    def _place(self, account: str, region: str) -> _Place:
        if self._clients is None:
            return self._home
        place = self._places.get((account, region))
        if place is None:
            place = self._places[(account, region)] = _Place(account, region, self._clients("ec2", account, region))
            self._account(account)
        return place

    def _account(self, account: str) -> _Account:
        holder = self._accounts.get(account)
        if holder is None:
            assert self._clients is not None, "only a world with clients holds other accounts"
            holder = self._accounts[account] = _Account(self._clients("iam", account, self.region))
        return holder

    def _map(self, ids: dict[str, str], finding_id: str | None, emulator_id: str) -> None:
        # An empty id would match between any two characters of every string _rewrite reads.
        if not finding_id:
            return
        ids[finding_id] = emulator_id
        self._to_finding[emulator_id] = finding_id

    def _seed_instance(self, place: _Place, incident: Incident) -> None:
        from firebreak.core.models import NetworkInterface

        finding_instance = incident.instance_id
        if finding_instance is None or finding_instance in place.ids:
            return
        self._instances.append((finding_instance, place))
        existing = place.ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [finding_instance]}])
        if existing["Reservations"]:
            self._map(place.ids, finding_instance, finding_instance)
            return
        first, *others = incident.network_interfaces or (NetworkInterface(""),)
        subnet, groups = self._placement(place, first, incident.vpc_id)
        pairs = (*incident.resource_tags, (FINDING_ID_TAG, finding_instance))
        tags: TagSpecificationTypeDef = {
            "ResourceType": "instance",
            "Tags": [{"Key": key, "Value": value} for key, value in pairs],
        }
        # Groups on the primary interface rather than the instance: moto adds an instance's own groups to every
        # interface attached to it, which would give each further interface the first one's groups too.
        instance = place.ec2.run_instances(
            ImageId=IMAGE_ID,
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": groups}],
            TagSpecifications=[tags],
        )["Instances"][0]
        self._map(place.ids, finding_instance, instance["InstanceId"])
        self._map(place.ids, first.interface_id, instance["NetworkInterfaces"][0]["NetworkInterfaceId"])
        for device_index, interface in enumerate(others, 1):
            subnet, groups = self._placement(place, interface, incident.vpc_id)
            eni_id = place.ec2.create_network_interface(SubnetId=subnet, Groups=groups)["NetworkInterface"][
                "NetworkInterfaceId"
            ]
            place.ec2.attach_network_interface(
                NetworkInterfaceId=eni_id, InstanceId=instance["InstanceId"], DeviceIndex=device_index
            )
            self._map(place.ids, interface.interface_id, eni_id)

    def _client(self, place: _Place, service: str) -> Any:
        """The place's client of service, made once: the emulated organization's for its accounts, else boto3's."""
        if service not in place.clients:
            if self._clients is not None:
                place.clients[service] = self._clients(service, place.account, place.region)
            else:
                import boto3

                place.clients[service] = boto3.client(service, region_name=place.region)  # type: ignore[call-overload]
        return place.clients[service]

    def _seed_bucket(self, place: _Place, incident: Incident, found: Bucket) -> None:
        """One bucket of the finding as GuardDuty saw it: public access unblocked for a Policy finding, logging off,
        its own tags, its malicious object; buckets that exist already are left as they are."""
        bucket = found.name
        if any(seeded == bucket for seeded, _ in self._buckets):
            return
        self._buckets.append((bucket, place))
        s3 = self._client(place, "s3")
        placement = (
            {} if place.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": place.region}}
        )
        try:
            s3.create_bucket(Bucket=bucket, **placement)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            return
        if found.tags:
            tags = [{"Key": key, "Value": value} for key, value in found.tags]
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
        # New buckets have Block Public Access on since April 2023; a Policy finding says someone turned it off.
        if not any(kind in incident.finding_type for kind in ("Policy:S3/Bucket", "Policy:S3-Bucket")):
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(_BLOCK_ALL, True))
        if found.object_key:
            s3.put_object(Bucket=bucket, Key=found.object_key, Body=_EICAR)
        if "ServerAccessLoggingDisabled" in incident.finding_type:
            # The deployer's log bucket in the workload's account and Region, which protect-bucket logs into.
            target = ACCESS_LOG_BUCKET.format(account=place.account, region=place.region)
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                s3.create_bucket(Bucket=target, **placement)
                s3.put_bucket_policy(Bucket=target, Policy=json.dumps(_log_delivery_policy(target, place.account)))

    def _seed_task(self, place: _Place, incident: Incident) -> None:
        """The finding's ECS task, running in awsvpc mode with an interface of its own, in a cluster of its name.

        Seeded as a Fargate task whatever the finding's launch type: an EC2 one would need a registered container
        instance, and the interface is the same. The task ARN, its task definition's and its interface map back.
        """
        from firebreak.core.models import NetworkInterface

        finding_task = incident.task_arn
        if finding_task is None or finding_task in place.ids:
            return
        self._tasks.append((finding_task, place))
        ecs = self._client(place, "ecs")
        tail = finding_task.split(":task/", 1)[1].split("/")
        cluster = incident.cluster_name or (tail[0] if len(tail) == 2 else "default")
        ecs.create_cluster(clusterName=cluster)
        definition = incident.task_definition_arn or f"arn:aws:ecs:{place.region}:{place.account}:task-definition/app:1"
        family = definition.rsplit("/", 1)[-1].split(":", 1)[0]
        registered = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "app", "image": f"{family}:seeded", "essential": True, "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        subnet, _ = self._placement(place, NetworkInterface(""), incident.vpc_id)
        vpc = place.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
        group = place.ec2.create_security_group(
            GroupName=f"seeded-task-{family}-{len(self._tasks)}", Description=f"Seeded for task {family}", VpcId=vpc
        )["GroupId"]
        task = ecs.run_task(
            cluster=cluster,
            taskDefinition=registered,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
            tags=[{"key": key, "value": value} for key, value in incident.resource_tags],
        )["tasks"][0]
        self._map(place.ids, finding_task, task["taskArn"])
        self._map(place.ids, incident.task_definition_arn, registered)

    def _placement(self, place: _Place, interface: NetworkInterface, instance_vpc: str | None) -> tuple[str, list[str]]:
        """The subnet and security groups to give an interface like the finding's, created on first use."""
        finding_vpc = interface.vpc_id or instance_vpc or ""
        if finding_vpc not in place.vpcs:
            vpc = place.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            place.vpcs[finding_vpc] = vpc
            place.subnets[vpc] = []
            self._map(place.ids, finding_vpc, vpc)
        vpc = place.vpcs[finding_vpc]
        subnets = place.subnets[vpc]
        if interface.subnet_id and interface.subnet_id in place.ids:
            subnet = place.ids[interface.subnet_id]
        elif not interface.subnet_id and subnets:
            # ASFF names the subnet only for a single-interface instance; the others share the VPC's first subnet.
            subnet = subnets[0]
        else:
            cidr = f"10.0.{len(subnets)}.0/24"
            subnet = place.ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
            subnets.append(subnet)
            self._map(place.ids, interface.subnet_id, subnet)
        for group in interface.security_group_ids:
            if group not in place.ids:
                created = place.ec2.create_security_group(
                    GroupName=f"seeded-{group}", Description=f"Seeded for finding group {group}", VpcId=vpc
                )
                self._map(place.ids, group, created["GroupId"])
        return subnet, [place.ids[group] for group in interface.security_group_ids]

    def _seed_database(self, place: _Place, incident: Incident) -> None:
        """The finding's DB instance, in an Aurora cluster when it names one, in a VPC with a group of its own."""
        from firebreak.core.models import NetworkInterface

        cluster = incident.db_cluster_id
        name = cluster or incident.db_instance_id or ""
        if any(seeded == name and where is place for seeded, _, where in self._databases):
            return
        self._databases.append((name, cluster is not None, place))
        rds: RDSClient = self._client(place, "rds")
        subnet, _ = self._placement(place, NetworkInterface(""), None)
        vpc = place.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
        group = place.ec2.create_security_group(
            GroupName=f"seeded-{name}-clients", Description=f"Seeded for database {name}", VpcId=vpc
        )["GroupId"]
        subnet_group = f"seeded-{vpc}"
        if subnet_group not in {g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]}:
            rds.create_db_subnet_group(
                DBSubnetGroupName=subnet_group, DBSubnetGroupDescription="Seeded for findings", SubnetIds=[subnet]
            )
        tags: list[RdsTagTypeDef] = [{"Key": key, "Value": value} for key, value in incident.resource_tags]
        engine = incident.db_engine or ("aurora-postgresql" if cluster else "postgres")
        if cluster:
            rds.create_db_cluster(
                DBClusterIdentifier=cluster,
                Engine=engine,
                MasterUsername="seeded",
                MasterUserPassword="seeded-password",
                DBSubnetGroupName=subnet_group,
                VpcSecurityGroupIds=[group],
                Tags=tags,
            )
        if incident.db_instance_id:
            rds.create_db_instance(
                DBInstanceIdentifier=incident.db_instance_id,
                DBInstanceClass="db.t3.medium",
                Engine=engine,
                **(
                    {"DBClusterIdentifier": cluster}
                    if cluster
                    else {
                        "AllocatedStorage": 20,
                        "MasterUsername": "seeded",
                        "MasterUserPassword": "seeded-password",
                        "DBSubnetGroupName": subnet_group,
                        "VpcSecurityGroupIds": [group],
                    }
                ),
                Tags=tags,
            )

    def _seed_user(self, holder: _Account, user: str | None, finding_key: str | None) -> None:
        if user is None or not _IAM_NAME.fullmatch(user):
            return
        try:
            keys = holder.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        except holder.iam.exceptions.NoSuchEntityException:
            holder.iam.create_user(UserName=user)
            keys = []
        if finding_key is None or finding_key in holder.ids:
            return
        holder.key_users[finding_key] = user
        if any(key["AccessKeyId"] == finding_key for key in keys):
            self._map(holder.ids, finding_key, finding_key)
        else:
            self._map(holder.ids, finding_key, holder.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])

    def _seed_role(self, holder: _Account, role: str | None, trust: str = _EC2_TRUST_POLICY) -> None:
        if role is None or not _IAM_NAME.fullmatch(role) or role in holder.roles:
            return
        holder.roles.append(role)
        try:
            holder.iam.get_role(RoleName=role)
        except holder.iam.exceptions.NoSuchEntityException:
            holder.iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)

    def _seed_function(self, place: _Place, holder: _Account, incident: Incident) -> None:
        """contain-function: the finding's function with its tags and execution role, unless it exists already."""
        name = incident.function_name
        if name is None or any(seeded == name and where is place for seeded, where in self._functions):
            return
        self._functions.append((name, place))
        client = self._client(place, "lambda")
        try:
            client.get_function(FunctionName=name)
            return
        except client.exceptions.ResourceNotFoundException:
            pass
        role = (incident.function_role_arn or "").rpartition("/")[2] or _FUNCTION_ROLE
        self._seed_role(holder, role, _LAMBDA_TRUST_POLICY)
        arn = holder.iam.get_role(RoleName=role)["Role"]["Arn"]
        client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=arn,
            Handler="app.handler",
            Code={"ZipFile": _function_package()},
            Tags=dict(incident.resource_tags),
        )

    # --- observing ----------------------------------------------------------------------------------------------

    def _instance_report(self, place: _Place, instance_id: str) -> dict[str, Any]:
        ec2 = place.ec2
        interfaces = ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["NetworkInterfaces"]
        interfaces.sort(key=lambda eni: eni.get("Attachment", {}).get("DeviceIndex", 0))
        groups = [eni.get("Groups", []) for eni in interfaces]
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        protection = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
        # One value per call: moto's tag-value filter with two values wants all of a snapshot's tag values among them.
        snapshots = {
            snapshot["SnapshotId"]
            for name in {instance_id, self.finding_id(instance_id)}
            for snapshot in ec2.describe_snapshots(Filters=[{"Name": "tag-value", "Values": [name]}])["Snapshots"]
        }
        return {
            "security_groups": [sorted(self.finding_id(group["GroupId"]) for group in eni) for eni in groups],
            "quarantined": bool(groups)
            and all(eni and all(g["GroupName"].startswith(QUARANTINE_GROUP_PREFIX) for g in eni) for eni in groups),
            "termination_protection": protection["DisableApiTermination"]["Value"],
            "snapshots": len(snapshots),
            "tags": {tag["Key"]: self.restore(tag["Value"]) for tag in instance.get("Tags", [])},
        }

    def _bucket_report(self, place: _Place, bucket: str) -> dict[str, Any]:
        s3 = self._client(place, "s3")
        try:
            config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError:
            config = {}
        try:
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except s3.exceptions.ClientError:
            policy = {}
        found = policy.get("Statement", [])
        statements = {s.get("Sid"): s for s in ([found] if isinstance(found, dict) else found)}
        principals = (statements.get(DENY_PRINCIPALS_SID) or {}).get("Principal", {}).get("AWS", [])
        objects = (statements.get(DENY_OBJECT_READS_SID) or {}).get("Resource", [])
        try:
            logging = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
        except s3.exceptions.ClientError:
            # A bucket deleted since its finding is reported as nothing protects it.
            logging = None
        return {
            "public_access_blocked": all(config.get(key) is True for key in _BLOCK_ALL),
            "denied_principals": sorted(self.restore([principals] if isinstance(principals, str) else principals)),
            "denied_object_reads": sorted([objects] if isinstance(objects, str) else objects),
            "server_access_logging": None
            if not logging
            else f"{logging['TargetBucket']}/{logging.get('TargetPrefix', '')}",
            "policy_statements": len(statements),
        }

    def _function_report(self, place: _Place, name: str) -> dict[str, Any]:
        """contain-function: its reserved concurrency (None: none reserved) and the latest evidence version."""
        client = self._client(place, "lambda")
        try:
            reserved = client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        except client.exceptions.ResourceNotFoundException:
            return {"reserved_concurrency": None, "evidence_version": None}
        versions = client.list_versions_by_function(FunctionName=name)["Versions"]
        evidence = [v["Version"] for v in versions if (v.get("Description") or "").startswith(EVIDENCE_PREFIX)]
        reserved = None if reserved is None else int(reserved)
        return {"reserved_concurrency": reserved, "evidence_version": evidence[-1] if evidence else None}

    def _database_report(self, place: _Place, name: str, cluster: bool) -> dict[str, Any]:
        rds: RDSClient = self._client(place, "rds")
        found: Sequence[Mapping[str, Any]]
        snapshots: Sequence[Mapping[str, Any]]
        if cluster:
            found = rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [name]}])["DBClusters"]
            snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier=name)["DBClusterSnapshots"]
        else:
            found = rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [name]}])["DBInstances"]
            snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=name)["DBSnapshots"]
        ids = [group["VpcSecurityGroupId"] for database in found for group in database.get("VpcSecurityGroups", [])]
        groups = place.ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"] if ids else []
        return {
            "security_groups": sorted(self.finding_id(group_id) for group_id in ids),
            "quarantined": bool(groups) and all(g["GroupName"].startswith(QUARANTINE_GROUP_PREFIX) for g in groups),
            "snapshots": len([s for s in snapshots if s.get("SnapshotType", "manual") == "manual"]),
        }

    def _task_report(self, place: _Place, task_arn: str) -> dict[str, Any]:
        task = self._client(place, "ecs").describe_tasks(
            cluster=task_arn.split(":task/", 1)[1].split("/")[0], tasks=[task_arn]
        )
        found = task["tasks"][0] if task["tasks"] else {}
        interfaces = [
            detail["value"]
            for attachment in found.get("attachments", [])
            for detail in attachment.get("details", [])
            if detail.get("name") == "networkInterfaceId"
        ]
        described = (
            place.ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": interfaces}])[
                "NetworkInterfaces"
            ]
            if interfaces
            else []
        )
        groups = [group for eni in described for group in eni.get("Groups", [])]
        return {
            "security_groups": sorted(self.finding_id(group["GroupId"]) for group in groups),
            "quarantined": bool(groups) and all(g["GroupName"].startswith(QUARANTINE_GROUP_PREFIX) for g in groups),
            "stopped": found.get("lastStatus", "STOPPED") == "STOPPED",
        }

    def _key_status(self, holder: _Account, finding_key: str, user: str) -> str:
        keys = holder.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        status = next((key["Status"] for key in keys if key["AccessKeyId"] == holder.ids[finding_key]), None)
        # A deleted key can no longer be used, which is what Inactive tells the reader.
        return "Active" if status == "Active" else "Inactive"

    def _revoked(self, holder: _Account, role: str) -> bool:
        return REVOKE_SESSIONS_POLICY in holder.iam.list_role_policies(RoleName=role)["PolicyNames"]


def _log_delivery_policy(bucket: str, account: str) -> dict[str, Any]:
    """The S3 User Guide's grant to the logging service, for the access logs of the account's own buckets."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3ServerAccessLogsPolicy",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["s3:PutObject"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def _function_package() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _labels(entries: list[tuple[str, tuple[str, ...]]]) -> dict[tuple[str, tuple[str, ...]], str]:
    """Each (finding id, scope) its report key: the id alone, or qualified by its scope when two scopes share it."""
    scopes: dict[str, set[tuple[str, ...]]] = {}
    for finding, scope in entries:
        scopes.setdefault(finding, set()).add(scope)
    return {
        (finding, scope): finding if len(scopes[finding]) == 1 else "/".join((*scope, finding))
        for finding, scope in entries
    }


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
