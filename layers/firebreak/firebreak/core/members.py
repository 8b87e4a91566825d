"""Member accounts of an organization: the fixed names of the roles member.yaml deploys, one per acting function."""

from __future__ import annotations

import re

# Function folder -> the member role that function assumes. member.yaml creates exactly these names, and a
# definition test holds the two together, so the security account can compute a role's ARN without asking.
MEMBER_ROLES = {
    "isolate_instance": "firebreak-member-isolate-instance",
    "preserve_evidence": "firebreak-member-preserve-evidence",
    "revoke_credentials": "firebreak-member-revoke-credentials",
    "block_in_network_acl": "firebreak-member-block-in-network-acl",
    "block_ip": "firebreak-member-block-ip",
    "sweep_blocklist": "firebreak-member-sweep-blocklist",
    "release_incident": "firebreak-member-release-incident",
    "notify_responders": "firebreak-member-notify-responders",
}
_SESSION_NAME_LIMIT = 64
_NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]")


def member_role_arn(account_id: str, function: str, partition: str = "aws") -> str:
    """The ARN of the role `function` assumes in `account_id`."""
    return f"arn:{partition}:iam::{account_id}:role/{MEMBER_ROLES[function]}"


def session_name(incident_id: str) -> str:
    """A role session name that names the incident, so the member account's CloudTrail says who acted and why."""
    return _NOT_IN_SESSION_NAME.sub("-", f"firebreak-{incident_id}")[:_SESSION_NAME_LIMIT]
