"""Normalise GuardDuty (camelCase) and Security Hub ASFF (PascalCase) finding events into Incidents.

Input is an EventBridge envelope or only its `detail` (what a target with `InputPath: $.detail` delivers). Anything
Firebreak cannot read raises FindingRejected naming the field; no other exception escapes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from firebreak.core.errors import FindingRejected
from firebreak.core.models import (
    APPROVAL_TAG,
    EXEMPT_TAG,
    MAX_BUCKETS_NAMED,
    Bucket,
    Incident,
    NetworkInterface,
    RemoteIpDetails,
    Source,
    asks_approval,
    says_exempt,
)

# A real finding is at most 256 KiB, far below this many entries; the cap bounds what a crafted event can make one
# step do and keeps the incident within the Step Functions payload limit.
MAX_PORT_PROBE_ENTRIES = 1000
MAX_THREAT_LISTS = 10
# Where the attacker's addresses sit (org, ASN, country) is evidence for the first addresses only: a thousand of them
# would take most of the 256 KiB state payload that the incident, its actions and the notification must share.
MAX_REMOTE_IP_DETAILS = 50

GUARDDUTY_DETAIL_TYPE = "GuardDuty Finding"
SECURITYHUB_DETAIL_TYPES = frozenset({"Security Hub Findings - Imported", "Security Hub Findings - Custom Action"})

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
# contain-function: Lambda's own limits on a function name, and the ARN of a function (a version or alias at the end).
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:([A-Za-z0-9_-]{1,64})(:[^:]+)?")
# RDS DB instance and cluster identifiers: a letter, then letters, digits and hyphens, 63 at most.
_DB_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")
# GuardDuty RDS Protection resource types and where each keeps its database; a Limitless database is its cluster.
_DATABASE_DETAILS = {"RDSDBInstance": "rdsDbInstanceDetails", "RDSLimitlessDB": "rdsLimitlessDbDetails"}
# contain-task: a task ARN in either format (task/<id> or task/<cluster>/<id>), its account and Region read from it.
_TASK_ARN = re.compile(
    r"arn:aws[a-z-]*:ecs:(?P<region>[a-z]{2}(-[a-z]+)+-[0-9]{1,2}):(?P<account>[0-9]{12}):task/"
    r"((?P<cluster>[A-Za-z0-9_-]{1,255})/)?[A-Za-z0-9_-]{1,64}"
)
_ASFF_RESOURCE_TYPES = {
    "AwsEc2Instance": "Instance",
    "AwsIamAccessKey": "AccessKey",
    "AwsS3Bucket": "S3Bucket",
    "AwsEksCluster": "EKSCluster",
    "AwsS3Object": "S3Object",
    "AwsLambdaFunction": "Lambda",
    "AwsRdsDbInstance": "RDSDBInstance",
}
# contain-task: Security Hub's copy of an ECS Runtime Monitoring finding lists the cluster and the task.
_ASFF_RESOURCE_TYPES |= {"AwsEcsCluster": "ECSCluster", "AwsEcsTask": "ECSCluster"}
_PRINCIPAL_TYPES = {"FederatedUser": "Federated"}
_ASFF_LABEL_SEVERITY = {"INFORMATIONAL": 0.0, "LOW": 3.0, "MEDIUM": 5.0, "HIGH": 8.0, "CRITICAL": 9.5}
_GUARDDUTY_BANDS = ((4.0, "LOW"), (7.0, "MEDIUM"), (9.0, "HIGH"))
_NORMALIZED_BANDS = ((1.0, "INFORMATIONAL"), (40.0, "LOW"), (70.0, "MEDIUM"), (90.0, "HIGH"))
_API_ACTIONS = ("awsApiCallAction", "kubernetesApiCallAction", "rdsLoginAttemptAction")
_GUARDDUTY_FIELD = "aws/guardduty/service/"
_ACCESS_KEY_ID_PREFIX = "AWS::IAM::AccessKey:"
# protect-bucket: S3 bucket names as S3 allows them today, and where an ARN names a bucket or an object in one.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESOURCE_TYPES = frozenset({"S3Bucket", "S3Object"})
_S3_ARN_PREFIX = re.compile(r"arn:aws[a-z-]*:s3:::")
MAX_OBJECT_KEY = 1024
# ASFF flattens GuardDuty's evidence into ProductFields, one key per threat list (".0_", ".1_", ...).
_ASFF_THREAT_LIST = re.compile(r"aws/guardduty/service/evidence/threatIntelligenceDetails\.[0-9]+_/threatListName")


def normalise(event: Mapping[str, Any]) -> Incident:
    """The one finding in a GuardDuty or Security Hub event; events with several findings need normalise_all."""
    incidents = normalise_all(event)
    if len(incidents) != 1:
        raise FindingRejected(f"detail.findings holds {len(incidents)} findings; expected exactly one")
    return incidents[0]


def normalise_all(event: Mapping[str, Any]) -> list[Incident]:
    """Every finding in a GuardDuty or Security Hub event, one Incident each, in event order."""
    detail, detail_type = _unwrap(event)
    if detail_type == GUARDDUTY_DETAIL_TYPE or (detail_type is None and "findings" not in detail.data):
        return [_guardduty(detail)]
    if detail_type is not None and detail_type not in SECURITYHUB_DETAIL_TYPES:
        raise FindingRejected(f"detail-type {detail_type!r} is not a GuardDuty or Security Hub finding event")
    findings = detail.nodes("findings")
    if not findings:
        raise FindingRejected("detail.findings is missing or empty")
    return [_asff(_Node(finding.data, finding.path, pascal=True)) for finding in findings]


@dataclass(frozen=True)
class _Node:
    """One object of the finding with its path, so every rejection names the field; ASFF nodes capitalise keys."""

    data: Mapping[str, Any]
    path: str
    pascal: bool = False

    def key(self, name: str) -> str:
        return name[0].upper() + name[1:] if self.pascal else name

    def where(self, name: str) -> str:
        return f"{self.path}.{self.key(name)}"

    def get(self, name: str) -> Any:
        return self.data.get(self.key(name))

    def at(self, *names: str) -> _Node:
        """The object at names below this one; an empty object when absent."""
        node = self
        for name in names:
            node = _node(node.get(name), node.where(name), pascal=self.pascal)
        return node

    def items(self, name: str) -> list[Any]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise FindingRejected(f"{self.where(name)} is not a list")
        return value

    def nodes(self, name: str, limit: int | None = None) -> list[_Node]:
        items = self.items(name)[:limit]
        return [_node(item, f"{self.where(name)}[{i}]", pascal=self.pascal) for i, item in enumerate(items)]

    def text(self, name: str, limit: int = 256, *, printable: bool = False) -> str | None:
        return _text(self.get(name), self.where(name), limit, printable=printable)

    def required(self, name: str, limit: int = 256, *, printable: bool = False) -> str:
        return _required(self.get(name), self.where(name), limit, printable=printable)

    def matching(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        return _matching(self.get(name), self.where(name), pattern, what)

    def number(self, name: str, top: int) -> float:
        # Compared before float() so that NaN, infinities and huge integers are refused rather than overflowing.
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
            raise FindingRejected(f"{self.where(name)} is missing or not a number from 0 to {top}")
        return float(value)

    def count(self, name: str) -> int:
        value = 1 if self.get(name) is None else self.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise FindingRejected(f"{self.where(name)} is not a non-negative integer")
        return value

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if value is not None and not isinstance(value, bool):
            raise FindingRejected(f"{self.where(name)} is not a boolean")
        return value is True


def _unwrap(event: Any) -> tuple[_Node, str | None]:
    if not isinstance(event, Mapping):
        raise FindingRejected("event is not an object")
    if "detail-type" not in event:
        return _Node(event, "detail"), None
    if not isinstance(event.get("detail"), Mapping):
        raise FindingRejected("detail is missing or not an object")
    return _Node(event["detail"], "detail"), _required(event.get("detail-type"), "detail-type", printable=True)


def _guardduty(finding: _Node) -> Incident:
    finding_id = _finding_id(finding.get("id"), finding.where("id"))
    account_id = finding.matching("accountId", _ACCOUNT, "a 12-digit account id")
    region = finding.matching("region", _REGION, "an AWS region")
    finding_type = finding.required("type", printable=True)
    severity = finding.number("severity", 10)
    resource = finding.at("resource")
    resource_type = resource.required("resourceType", 64)
    service = finding.at("service")
    action = service.at("action")
    # Sample findings put placeholder details on every resource type, so read only what the type has.
    is_instance = resource_type == "Instance"
    instance = _guardduty_instance(resource.at("instanceDetails")) if is_instance else {}
    is_function = resource_type == "Lambda"
    database = _guardduty_database(resource, resource_type)
    principal = {} if is_instance or is_function or database else _guardduty_principal(resource.at("accessKeyDetails"))
    function = _guardduty_function(resource.at("lambdaDetails")) if is_function else {}
    bucket = _guardduty_bucket(resource) if resource_type in _BUCKET_RESOURCE_TYPES else {}
    workload = _guardduty_workload(resource, resource_type, account_id, region)
    return Incident(
        source=Source.GUARDDUTY,
        finding_id=finding_id,
        account_id=account_id,
        region=region,
        finding_type=finding_type,
        severity=severity,
        severity_label=_band(severity, _GUARDDUTY_BANDS),
        title=finding.text("title", 512, printable=True) or "",
        product_name="GuardDuty",
        resource_type=resource_type,
        resource_role=service.text("resourceRole", 32),
        action_type=action.text("actionType", 64),
        direction=action.at("networkConnectionAction").text("connectionDirection", 32),
        sample=service.at("additionalInfo").flag("sample"),
        count=service.count("count"),
        updated_at=finding.text("updatedAt", 64),
        threat_lists=_guardduty_threat_lists(service),
        first_seen_at=service.text("eventFirstSeen", 64) or finding.text("createdAt", 64),
        finding_arn=finding.text("arn", 2048),
        **instance,
        **database,
        **principal,
        **bucket,
        **function,
        **workload,
        **_remotes(action),
    )


def _guardduty_database(resource: _Node, resource_type: str) -> dict[str, Any]:
    """contain-database: the DB instance and its cluster (Aurora), its tags, and the user the login used."""
    details_key = _DATABASE_DETAILS.get(resource_type)
    if details_key is None:
        return {}
    details = resource.at(details_key)
    user = resource.at("rdsDbUserDetails")
    tags = [(tag.get("key"), tag.get("value")) for tag in details.nodes("tags")]
    return {
        "db_instance_id": _db_identifier(details, "dbInstanceIdentifier"),
        "db_cluster_id": _db_identifier(details, "dbClusterIdentifier"),
        "db_engine": details.text("engine", 64, printable=True),
        "db_user": user.text("user", 128, printable=True),
        "db_name": user.text("database", 128, printable=True),
        "resource_tags": _tags(tags, details.where("tags")),
    }


def _db_identifier(details: _Node, name: str) -> str | None:
    return None if details.get(name) in (None, "") else details.matching(name, _DB_IDENTIFIER, "an RDS identifier")


def _guardduty_workload(resource: _Node, resource_type: str, account_id: str, region: str) -> dict[str, Any]:
    """contain-task: the ECS task of an ECSCluster finding; the cluster, pod and node of an EKSCluster finding."""
    if resource_type == "ECSCluster":
        return _guardduty_task(resource.at("ecsClusterDetails"), account_id, region)
    if resource_type != "EKSCluster":
        return {}
    cluster = resource.at("eksClusterDetails")
    kubernetes = resource.at("kubernetesDetails")
    pod = kubernetes.at("kubernetesWorkloadDetails")
    fields: dict[str, Any] = {
        "cluster_name": cluster.text("name", 100, printable=True),
        "cluster_arn": cluster.text("arn", 2048, printable=True),
        "kubernetes_namespace": pod.text("namespace", 253, printable=True),
        "kubernetes_workload": pod.text("name", 253, printable=True),
        "kubernetes_workload_type": pod.text("type", 64, printable=True),
        "kubernetes_user": kubernetes.at("kubernetesUserDetails").text("username", 256, printable=True),
        "vpc_id": cluster.text("vpcId", 64),
    }
    cluster_tags = _tags([(t.get("key"), t.get("value")) for t in cluster.nodes("tags")], cluster.where("tags"))
    node = resource.at("instanceDetails")
    # A Runtime Monitoring finding names the node the pod runs on; an audit-log finding (or a sample's placeholder
    # details) names none that can be contained, so the node is read only when its id is an instance id.
    if _INSTANCE_ID.fullmatch(str(node.get("instanceId") or "")):
        fields.update(_guardduty_instance(node))
        cluster_tags = tuple(sorted({**dict(cluster_tags), **dict(fields["resource_tags"])}.items()))
    fields["resource_tags"] = cluster_tags
    return fields


def _guardduty_task(cluster: _Node, account_id: str, region: str) -> dict[str, Any]:
    task = cluster.at("taskDetails")
    arn = task.text("arn", 2048)
    match = _TASK_ARN.fullmatch(arn or "")
    # Only a task of the finding's own account and Region is ever acted on.
    if match is None or (match["account"], match["region"]) != (account_id, region):
        arn = None
    # The task's own tags win over its cluster's: either may carry firebreak:exempt or firebreak:approval.
    tags = {
        **dict(_tags([(t.get("key"), t.get("value")) for t in cluster.nodes("tags")], cluster.where("tags"))),
        **dict(_tags([(t.get("key"), t.get("value")) for t in task.nodes("tags")], task.where("tags"))),
    }
    return {
        "cluster_name": cluster.text("name", 255, printable=True) or (match["cluster"] if match else None),
        "cluster_arn": cluster.text("arn", 2048, printable=True),
        "task_arn": arn,
        "task_definition_arn": task.text("definitionArn", 2048, printable=True),
        "launch_type": task.text("launchType", 32, printable=True),
        "resource_tags": tuple(sorted(tags.items())),
    }


def _guardduty_instance(details: _Node) -> dict[str, Any]:
    instance_id = details.matching("instanceId", _INSTANCE_ID, "an EC2 instance id")
    enis = tuple(_guardduty_eni(eni) for eni in details.nodes("networkInterfaces"))
    tags = [(tag.get("key"), tag.get("value")) for tag in details.nodes("tags")]
    return {
        "instance_id": instance_id,
        "vpc_id": enis[0].vpc_id if enis else None,
        "network_interfaces": enis,
        "resource_tags": _tags(tags, details.where("tags")),
    }


def _guardduty_bucket(resource: _Node) -> dict[str, Any]:
    """protect-bucket: every bucket the finding names, each with its tags and the object Malware Protection scanned."""
    buckets: list[Bucket] = []
    for details in resource.nodes("s3BucketDetails", MAX_BUCKETS_NAMED):
        objects = details.nodes("s3ObjectDetails", 1)
        tags = [(tag.get("key"), tag.get("value")) for tag in details.nodes("tags")]
        name = details.matching("name", _BUCKET_NAME, "an S3 bucket name")
        key = objects[0].text("key", MAX_OBJECT_KEY) if objects else None
        buckets.append(Bucket(name, _tags(tags, details.where("tags")), key))
    return _bucket_fields(buckets)


def _bucket_fields(found: list[Bucket]) -> dict[str, Any]:
    """The buckets once each (Security Hub may list a bucket and an object in it), the first as bucket_name, and the
    one tag set triage reads: a person is asked when any bucket wants approval, and the incident is exempt only when
    every bucket is; Protect Bucket skips each other exempt bucket by its own tags."""
    merged: dict[str, Bucket] = {}
    for bucket in found:
        seen = merged.get(bucket.name)
        if seen is not None:
            bucket = Bucket(
                bucket.name,
                tuple(sorted({**dict(bucket.tags), **dict(seen.tags)}.items())),
                seen.object_key or bucket.object_key,
            )
        merged[bucket.name] = bucket
    buckets = tuple(merged.values())
    if not buckets:
        return {}
    tags = dict(buckets[0].tags)
    wanting = [b for b in buckets if asks_approval(b.tag(APPROVAL_TAG))]
    if wanting:
        tags[APPROVAL_TAG] = wanting[0].tag(APPROVAL_TAG) or "required"
    if not all(says_exempt(b.tag(EXEMPT_TAG)) for b in buckets):
        tags.pop(EXEMPT_TAG, None)
    return {
        "bucket_name": buckets[0].name,
        "object_key": buckets[0].object_key,
        "buckets": buckets,
        "resource_tags": tuple(sorted(tags.items())),
    }


def _guardduty_function(details: _Node) -> dict[str, Any]:
    """contain-function: the function, by name (or its ARN's name), its execution role, VPC and tags."""
    arn = details.text("functionArn", 2048)
    name = details.text("functionName", 128) or _function_name_of(arn)
    tags = [(tag.get("key"), tag.get("value")) for tag in details.nodes("tags")]
    return {
        "function_name": _function_name(name, details.where("functionName")),
        "function_arn": arn,
        "function_role_arn": details.text("role", 2048),
        "function_version": details.text("functionVersion", 64),
        "vpc_id": details.at("vpcConfig").text("vpcId", 64),
        "resource_tags": _tags(tags, details.where("tags")),
    }


def _asff_function(resource: _Node) -> dict[str, Any]:
    """contain-function: the Security Hub copy names the function by ARN, with its details under AwsLambdaFunction."""
    arn = resource.required("Id", 2048)
    details = resource.at("Details", "AwsLambdaFunction")
    name = details.text("FunctionName", 128) or _function_name_of(arn)
    tags = resource.at("Tags")
    return {
        "function_name": _function_name(name, resource.where("Id")),
        "function_arn": arn if _FUNCTION_ARN.fullmatch(arn) else None,
        "function_role_arn": details.text("Role", 2048),
        "vpc_id": details.at("VpcConfig").text("VpcId", 64),
        "resource_tags": _tags(list(tags.data.items()), tags.path),
    }


def _function_name(name: str | None, where: str) -> str | None:
    # A finding without the function is still escalated (the playbook says it names none); a garbled name is refused.
    return None if name is None else _matching(name, where, _FUNCTION_NAME, "a Lambda function name")


def _function_name_of(arn: str | None) -> str | None:
    match = _FUNCTION_ARN.fullmatch(arn or "")
    return match.group(1) if match else None


def _guardduty_eni(eni: _Node) -> NetworkInterface:
    return NetworkInterface(
        interface_id=eni.required("networkInterfaceId", 64),
        subnet_id=eni.text("subnetId", 64),
        vpc_id=eni.text("vpcId", 64),
        security_group_ids=tuple(group.required("groupId", 64) for group in eni.nodes("securityGroups")),
        private_ip=eni.text("privateIpAddress", 64),
        public_ip=eni.text("publicIp", 64),
    )


def _guardduty_threat_lists(service: _Node) -> tuple[str, ...]:
    """The GuardDuty threat lists that matched: the evidence section, and additionalInfo where older findings put it."""
    evidence = service.at("evidence").nodes("threatIntelligenceDetails", MAX_THREAT_LISTS)
    names = [detail.text("threatListName", 128, printable=True) for detail in evidence]
    names.append(service.at("additionalInfo").text("threatListName", 128, printable=True))
    return _distinct(names)


def _asff_threat_lists(fields: _Node) -> tuple[str, ...]:
    keys = sorted(
        key
        for key in fields.data
        if isinstance(key, str)
        and (_ASFF_THREAT_LIST.fullmatch(key) or key == f"{_GUARDDUTY_FIELD}additionalInfo/threatListName")
    )
    return _distinct(fields.text(key, 128, printable=True) for key in keys[: MAX_THREAT_LISTS + 1])


def _distinct(names: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in names if name))[:MAX_THREAT_LISTS]


def _guardduty_principal(details: _Node) -> dict[str, Any]:
    return {
        "access_key_id": details.text("accessKeyId", 128),
        "principal_type": _principal_type(details.text("userType", 64)),
        "principal_name": details.text("userName", printable=True),
        "principal_id": details.text("principalId", 256, printable=True),
    }


def _asff(finding: _Node) -> Incident:
    finding_id = _finding_id(finding.get("Id"), finding.where("Id"))
    account_id = finding.matching("AwsAccountId", _ACCOUNT, "a 12-digit account id")
    product_arn = finding.text("ProductArn", 2048)
    # Older ASFF findings have no Region; their product ARN names it.
    region = finding.get("Region")
    if region is None and product_arn and product_arn.count(":") >= 3:
        region = product_arn.split(":")[3]
    region = _matching(region, finding.where("Region"), _REGION, "an AWS region")
    types = finding.items("Types")
    finding_type = _required(types[0] if types else None, f"{finding.where('Types')}[0]", printable=True)
    severity, label = _asff_severity(finding.at("Severity"))
    resources = finding.nodes("Resources")
    if not resources:
        raise FindingRejected(f"{finding.where('Resources')} is missing or empty")
    resource_type = _ASFF_RESOURCE_TYPES.get(raw := resources[0].required("Type"), raw)
    # ProductFields keys are paths such as aws/securityhub/ProductName, read as given rather than capitalised.
    fields = _Node(finding.at("ProductFields").data, finding.where("ProductFields"))
    action = finding.at("Action")
    instance = _asff_instance(resources[0]) if resource_type == "Instance" else {}
    bucket = _asff_bucket(resources) if resource_type in _BUCKET_RESOURCE_TYPES else {}
    function = _asff_function(resources[0]) if resource_type == "Lambda" else {}
    database = _asff_database(resources[0]) if resource_type == "RDSDBInstance" else {}
    return Incident(
        source=Source.SECURITYHUB,
        finding_id=finding_id,
        account_id=account_id,
        region=region,
        finding_type=finding_type,
        severity=severity,
        severity_label=label,
        title=finding.text("Title", 512, printable=True) or "",
        product_name=(
            finding.text("ProductName", printable=True)
            or fields.text("aws/securityhub/ProductName", printable=True)
            or ""
        ),
        product_arn=product_arn,
        resource_type=resource_type,
        resource_role=fields.text(f"{_GUARDDUTY_FIELD}resourceRole", 32),
        action_type=action.text("ActionType", 64),
        direction=action.at("NetworkConnectionAction").text("ConnectionDirection", 32),
        sample=finding.flag("Sample") or fields.text(f"{_GUARDDUTY_FIELD}additionalInfo/sample", 8) == "true",
        updated_at=finding.text("UpdatedAt", 64),
        threat_lists=_asff_threat_lists(fields),
        first_seen_at=finding.text("FirstObservedAt", 64) or finding.text("CreatedAt", 64),
        **instance,
        **bucket,
        **function,
        **database,
        **_asff_principal(resources),
        **(_asff_task(resources, account_id, region) if resource_type == "ECSCluster" else {}),
        **_remotes(action),
    )


def _asff_severity(severity: _Node) -> tuple[float, str]:
    label = severity.text("Label", 16)
    normalized = None if severity.get("Normalized") is None else severity.number("Normalized", 100)
    if label is None and normalized is not None:
        label = _band(normalized, _NORMALIZED_BANDS)
    if label not in _ASFF_LABEL_SEVERITY:
        raise FindingRejected(f"{severity.where('Label')} is missing or not one of {', '.join(_ASFF_LABEL_SEVERITY)}")
    return (normalized / 10 if normalized is not None else _ASFF_LABEL_SEVERITY[label]), label


def _asff_instance(resource: _Node) -> dict[str, Any]:
    arn = resource.required("Id", 2048)
    instance_id = _matching(arn.rpartition("/")[2], resource.where("Id"), _INSTANCE_ID, "an EC2 instance ARN")
    details = resource.at("Details", "AwsEc2Instance")
    vpc_id = details.text("VpcId", 64)
    subnet_id = details.text("SubnetId", 64)
    eni_ids = [eni.required("NetworkInterfaceId", 64) for eni in details.nodes("NetworkInterfaces")]
    # The instance's subnet and VPC are its primary interface's; ASFF does not say which of several is primary.
    single = len(eni_ids) == 1
    tags = resource.at("Tags")
    return {
        "instance_id": instance_id,
        "vpc_id": vpc_id,
        "network_interfaces": tuple(
            NetworkInterface(eni_id, subnet_id if single else None, vpc_id if single else None) for eni_id in eni_ids
        ),
        "resource_tags": _tags(list(tags.data.items()), tags.path),
    }


def _asff_bucket(resources: list[_Node]) -> dict[str, Any]:
    """protect-bucket: the bucket (and object) of every S3 resource, from its ARN, with the resource's tags."""
    buckets: list[Bucket] = []
    for resource in resources:
        kind = resource.get("Type")
        if kind not in ("AwsS3Bucket", "AwsS3Object"):
            continue
        if len(buckets) == MAX_BUCKETS_NAMED:
            break
        arn = resource.required("Id", 2048)
        path = _S3_ARN_PREFIX.sub("", arn, count=1) if _S3_ARN_PREFIX.match(arn) else ""
        name, _, key = path.partition("/")
        tags = resource.at("Tags")
        buckets.append(
            Bucket(
                _matching(name, resource.where("Id"), _BUCKET_NAME, "an S3 bucket or object ARN"),
                _tags(list(tags.data.items()), tags.path),
                (key[:MAX_OBJECT_KEY] or None) if kind == "AwsS3Object" else None,
            )
        )
    return _bucket_fields(buckets)


def _asff_database(resource: _Node) -> dict[str, Any]:
    """contain-database: the DB instance (its ARN's last part when the details leave it out) and its cluster."""
    details = resource.at("Details", "AwsRdsDbInstance")
    if details.get("DbInstanceIdentifier") in (None, ""):
        arn = resource.required("Id", 2048)
        details = _Node({**details.data, "DbInstanceIdentifier": arn.rpartition(":")[2]}, details.path, pascal=True)
    tags = resource.at("Tags")
    return {
        "db_instance_id": _db_identifier(details, "dbInstanceIdentifier"),
        "db_cluster_id": _db_identifier(details, "dbClusterIdentifier"),
        "db_engine": details.text("engine", 64, printable=True),
        "resource_tags": _tags(list(tags.data.items()), tags.path),
    }


def _asff_task(resources: list[_Node], account_id: str, region: str) -> dict[str, Any]:
    """contain-task: the AwsEcsTask resource of Security Hub's copy (its Id is the task ARN), and the cluster's."""
    tasks = [resource for resource in resources if resource.get("Type") == "AwsEcsTask"]
    if not tasks:
        return {}
    task = tasks[0]
    arn = task.text("Id", 2048)
    match = _TASK_ARN.fullmatch(arn or "")
    if match is None or (match["account"], match["region"]) != (account_id, region):
        arn = None
    details = task.at("Details", "AwsEcsTask")
    clusters = [resource for resource in resources if resource.get("Type") == "AwsEcsCluster"]
    cluster_arn = details.text("ClusterArn", 2048, printable=True) or (
        clusters[0].text("Id", 2048) if clusters else None
    )
    tags = {
        **(dict(_tags(list(clusters[0].at("Tags").data.items()), clusters[0].where("Tags"))) if clusters else {}),
        **dict(_tags(list(task.at("Tags").data.items()), task.where("Tags"))),
    }
    return {
        "cluster_arn": cluster_arn,
        "cluster_name": (cluster_arn or "").rpartition("/")[2] or (match["cluster"] if match else None),
        "task_arn": arn,
        "task_definition_arn": details.text("TaskDefinitionArn", 2048, printable=True),
        "resource_tags": tuple(sorted(tags.items())),
    }


def _asff_principal(resources: list[_Node]) -> dict[str, Any]:
    for resource in resources:
        if resource.get("Type") != "AwsIamAccessKey":
            continue
        resource_id = resource.text("Id", 2048) or ""
        details = resource.at("Details", "AwsIamAccessKey")
        key_id = details.text("AccessKeyId", 128)
        if key_id is None and resource_id.startswith(_ACCESS_KEY_ID_PREFIX):
            key_id = resource_id.removeprefix(_ACCESS_KEY_ID_PREFIX)[:128] or None
        return {
            "access_key_id": key_id,
            "principal_type": _principal_type(details.text("PrincipalType", 64)),
            "principal_name": details.text("PrincipalName", printable=True) or details.text("UserName", printable=True),
            "principal_id": details.text("PrincipalId", 256, printable=True),
        }
    return {}


def _remotes(action: _Node) -> dict[str, Any]:
    """Every remote address in the action (either casing), valid ones normalised and de-duplicated, the rest apart."""
    sources = [action.at("networkConnectionAction", "remoteIpDetails")]
    probes = action.at("portProbeAction").nodes("portProbeDetails", MAX_PORT_PROBE_ENTRIES)
    sources += [probe.at("remoteIpDetails") for probe in probes]
    sources += [action.at(name, "remoteIpDetails") for name in _API_ACTIONS]
    valid: dict[str, RemoteIpDetails | None] = {}
    invalid: dict[str, None] = {}
    for details in sources:
        for version in ("ipAddressV4", "ipAddressV6"):
            raw = details.text(version, 1024)
            address = None if raw is None else _address(raw)
            if raw is not None and address is None:
                invalid.setdefault("".join(ch for ch in raw if ch.isprintable())[:64])
            elif address is not None and address not in valid:
                valid[address] = _remote_details(address, details) if len(valid) < MAX_REMOTE_IP_DETAILS else None
    return {
        "remote_ips": tuple(valid),
        "remote_ip_details": tuple(detail for detail in valid.values() if detail is not None),
        "invalid_remote_ips": tuple(invalid),
    }


def _remote_details(address: str, details: _Node) -> RemoteIpDetails:
    organization = details.at("organization")
    asn = organization.get("asn")
    # ASFF types the ASN as an integer, GuardDuty as a string.
    if isinstance(asn, int) and not isinstance(asn, bool) and 0 <= asn < 2**32:
        asn = str(asn)
    return RemoteIpDetails(
        address=address,
        organization=organization.text("org", printable=True),
        asn=_text(asn, organization.where("asn"), 16),
        isp=organization.text("isp", printable=True),
        country=details.at("country").text("countryName", printable=True),
        city=details.at("city").text("cityName", printable=True),
    )


def _address(raw: str) -> str | None:
    """raw as one normalised IP address, or None when it is anything else (placeholder, CIDR, garbage)."""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return None if isinstance(address, ipaddress.IPv6Address) and address.scope_id else address.compressed


def _band(value: float, bands: tuple[tuple[float, str], ...]) -> str:
    return next((label for below, label in bands if value < below), "CRITICAL")


def _principal_type(value: str | None) -> str | None:
    return None if value is None else _PRINCIPAL_TYPES.get(value, value)


def _tags(pairs: list[tuple[Any, Any]], where: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((_required(k, f"{where} key", 128), _text(v, f"{where} value", 256) or "") for k, v in pairs))


def _finding_id(value: Any, where: str) -> str:
    # Refused rather than cut: two ids that share a prefix must not become one incident.
    if not isinstance(value, str) or not value or len(value) > 512 or not value.isprintable():
        raise FindingRejected(f"{where} is missing or not a printable string of 1 to 512 characters")
    return value


def _matching(value: Any, where: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise FindingRejected(f"{where} is missing or not {what}")
    return value


def _node(value: Any, where: str, *, pascal: bool = False) -> _Node:
    if value is None:
        return _Node({}, where, pascal)
    if not isinstance(value, Mapping):
        raise FindingRejected(f"{where} is not an object")
    return _Node(value, where, pascal)


def _required(value: Any, where: str, limit: int = 256, *, printable: bool = False) -> str:
    text = _text(value, where, limit, printable=printable)
    if not text:
        raise FindingRejected(f"{where} is missing or empty")
    return text


def _text(value: Any, where: str, limit: int = 256, *, printable: bool = False) -> str | None:
    """value cut to limit characters, printable ones only when people will read it; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FindingRejected(f"{where} is not a string")
    text: str = "".join(ch for ch in value if ch.isprintable()) if printable else value
    return text[:limit]
