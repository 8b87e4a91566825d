"""The account's own public addresses, which Firebreak must never block: blocking them cuts the account off itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


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
