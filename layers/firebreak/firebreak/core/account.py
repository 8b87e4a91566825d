"""The account's own public addresses, which Firebreak must never block: blocking them cuts the account off itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from firebreak.core import aws
from firebreak.core.errors import MemberRoleUnavailable
from firebreak.core.members import Organization, workload_client

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


logger = Logger(child=True)


def guarded_addresses(account_id: str, region: str, incident_id: str) -> dict[str, str]:
    """The public addresses no block may take: the security account's (the block lists protect its web ACLs) and
    those of the finding's account and Region, read through block-ip's member role in a member account.

    A member role that cannot be assumed leaves that account's addresses unknown; the block still goes ahead (it
    needs no member role), as the account's own address attacking it is the rare case.
    """
    owned = own_public_addresses(aws.client("ec2"))
    if Organization.from_env().is_home(account_id, region):
        return owned
    try:
        where: EC2Client = workload_client("ec2", account_id, region, "block_ip", incident_id)
    except MemberRoleUnavailable as error:
        logger.warning("Member addresses unknown", extra={"account": account_id, "reason": str(error)})
        return owned
    return {**own_public_addresses(where), **owned}


def own_public_addresses(ec2: EC2Client) -> dict[str, str]:
    """Public address -> what it is, for every Elastic IP and NAT gateway of the region. Two calls (plus pages).

    Read once per invocation: a finding storm must not multiply these calls, and an address allocated a minute ago
    must still be seen, so nothing is kept between invocations.
    """
    owned = {
        address["PublicIp"]: f"Elastic IP {address.get('AllocationId', '')}".rstrip()
        for address in ec2.describe_addresses()["Addresses"]
        if address.get("PublicIp")
    }
    for page in ec2.get_paginator("describe_nat_gateways").paginate():
        for gateway in page["NatGateways"]:
            if gateway.get("State") in ("deleted", "failed"):
                continue
            for address in gateway.get("NatGatewayAddresses", ()):
                if address.get("PublicIp"):
                    owned[address["PublicIp"]] = f"NAT gateway {gateway['NatGatewayId']} public address"
    return owned
