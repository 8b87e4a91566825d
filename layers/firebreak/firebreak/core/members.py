"""Member accounts of an organization: the fixed names of the roles member.yaml deploys, one per acting function,
and the client that acts where a finding's workload lives."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.models import PlaybookRequest

# Function folder -> the member role that function assumes. member.yaml creates exactly these names, and a
# definition test holds the two together, so the security account can compute a role's ARN without asking.
# Security Hub write-back needs none: the administrator account updates its members' findings (BatchUpdateFindings).
MEMBER_ROLES = {
    "isolate_instance": "firebreak-member-isolate-instance",
    "preserve_evidence": "firebreak-member-preserve-evidence",
    "revoke_credentials": "firebreak-member-revoke-credentials",
    "block_in_network_acl": "firebreak-member-block-in-network-acl",
    "block_ip": "firebreak-member-block-ip",
    "sweep_blocklist": "firebreak-member-sweep-blocklist",
    "release_incident": "firebreak-member-release-incident",
    "protect_bucket": "firebreak-member-protect-bucket",
    "contain_function": "firebreak-member-contain-function",
    "snapshot_database": "firebreak-member-snapshot-database",
    "quarantine_database": "firebreak-member-quarantine-database",
    "isolate_task": "firebreak-member-isolate-task",
    "stop_task": "firebreak-member-stop-task",
}
_SESSION_NAME_LIMIT = 64
_NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]")
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"), ("us-isob-", "aws-iso-b"))


@dataclass(frozen=True)
class Organization:
    """Where the stack runs and whose findings it answers, from the environment the template gives every function."""

    stack_account_id: str = ""
    organization_id: str = ""
    allowed_account_ids: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> Organization:
        env = os.environ
        allowed = frozenset(part.strip() for part in env.get("ALLOWED_ACCOUNT_IDS", "").split(",") if part.strip())
        return cls(env.get("STACK_ACCOUNT_ID", ""), env.get("ORGANIZATION_ID", ""), allowed)

    def is_own(self, account_id: str) -> bool:
        """Whether the account is the stack's own (or unknown, as in a test without the template's environment)."""
        return not account_id or not self.stack_account_id or account_id == self.stack_account_id

    def is_home(self, account_id: str, region: str | None) -> bool:
        """Whether a workload lives where the stack runs: its own account and Region (or an unknown Region)."""
        return self.is_own(account_id) and region in ("", None, aws.home_region())


def partition_of(region: str | None) -> str:
    return next((partition for prefix, partition in _PARTITIONS if (region or "").startswith(prefix)), "aws")


def member_role_arn(account_id: str, function: str, partition: str = "aws") -> str:
    """The ARN of the role `function` assumes in `account_id`."""
    return f"arn:{partition}:iam::{account_id}:role/{MEMBER_ROLES[function]}"


def session_name(incident_id: str) -> str:
    """A role session name that names the incident, so the member account's CloudTrail says who acted and why."""
    return _NOT_IN_SESSION_NAME.sub("-", f"firebreak-{incident_id}")[:_SESSION_NAME_LIMIT]


def playbook_client(service: str, request: PlaybookRequest, function: str) -> Any:
    """workload_client for a playbook step: the account and Region of the request's incident."""
    incident = request.incident
    return workload_client(service, incident.account_id, incident.region, function, request.incident_id)


def workload_client(
    service: str,
    account_id: str,
    region: str | None,
    function: str,
    incident_id: str,
    organization: Organization | None = None,
) -> Any:
    """A client acting in the workload's account and Region: directly in the stack's own account, through the
    function's member role elsewhere. MemberRoleUnavailable says which role could not be assumed and why."""
    organization = organization or Organization.from_env()
    if organization.is_own(account_id):
        return aws.client(service, region=region or None)
    role_arn = member_role_arn(account_id, function, partition_of(region))
    try:
        return aws.client(service, region or None, role_arn, session_name(incident_id))
    except ClientError as error:
        if aws.is_transient(error):
            raise
        raise MemberRoleUnavailable(
            f"account {account_id}: cannot assume {role_arn} ({aws.describe_error(error)}); deploy Firebreak's"
            " member stack to this account (the stack's StackSet covers the organizational units it names) or"
            " check that role's trust policy names this function's role"
        ) from error
