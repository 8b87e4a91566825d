"""normalise / normalise_all: every sample event, both casings, and hostile input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import Incident, NetworkInterface, RemoteIpDetails, Source
from firebreak.triage.findings import MAX_PORT_PROBE_ENTRIES, normalise, normalise_all

REPO_ROOT = Path(__file__).parents[3]
ACCOUNT = "123456789012"
DETECTOR_ARN = f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/4ec8f0a1b2c3d4e5f6a7b8c9d0e1f2a3"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((REPO_ROOT / "events" / "eventbridge" / f"{name}.json").read_text("utf-8"))
    return event


def ssh_event() -> dict[str, Any]:
    return load_event("guardduty_ssh_brute_force")


def set_remote_ip(event: dict[str, Any], **address: str) -> dict[str, Any]:
    event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"] = address
    return event


# --- GuardDuty sample events -------------------------------------------------------------------------------------


def test_inbound_ssh_brute_force_names_the_target_instance_and_the_attacker() -> None:
    # GIVEN the GuardDuty event for an SSH brute force against one of our instances
    event = ssh_event()

    # WHEN it is normalised
    incident = normalise(event)

    # THEN every routing and acting field is read from the camelCase detail
    assert incident.source is Source.GUARDDUTY
    assert incident.finding_id == "62c8f1a3b5d94e7f8a2b6c0d1e3f4a5b"
    assert (incident.account_id, incident.region) == (ACCOUNT, "us-east-1")
    assert incident.finding_type == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert (incident.severity, incident.severity_label) == (2.0, "LOW")
    assert (incident.resource_type, incident.resource_role) == ("Instance", "TARGET")
    assert (incident.action_type, incident.direction) == ("NETWORK_CONNECTION", "INBOUND")
    assert incident.instance_id == "i-0a1b2c3d4e5f60001"
    assert incident.vpc_id == "vpc-0a1b2c3d4e5f60001"
    assert incident.network_interfaces == (
        NetworkInterface(
            interface_id="eni-0f1e2d3c4b5a60001",
            subnet_id="subnet-0a1b2c3d4e5f60001",
            vpc_id="vpc-0a1b2c3d4e5f60001",
            security_group_ids=("sg-0a1b2c3d4e5f60001",),
            private_ip="10.0.1.25",
            public_ip="54.210.33.17",
        ),
    )
    assert incident.resource_tags == (("Environment", "production"), ("Name", "web-1"), ("Team", "storefront"))
    assert incident.remote_ips == ("45.155.205.233",)
    assert incident.remote_ip_details == (
        RemoteIpDetails(
            address="45.155.205.233",
            organization="Example Bulletproof Hosting Ltd",
            asn="206728",
            isp="Example Bulletproof Hosting Ltd",
            country="Netherlands",
            city="Amsterdam",
        ),
    )
    assert incident.invalid_remote_ips == ()
    assert (incident.access_key_id, incident.principal_type, incident.principal_name) == (None, None, None)
    assert (incident.sample, incident.count) == (False, 1)
    assert incident.updated_at == "2026-03-14T09:14:02.147Z"
    assert incident.title.startswith("45.155.205.233 is performing SSH brute force attacks")
    assert (incident.product_name, incident.product_arn) == ("GuardDuty", None)


def test_redelivered_finding_keeps_its_id_with_a_higher_count_and_later_update() -> None:
    # GIVEN the first delivery and a re-publication of the same finding
    first = normalise(ssh_event())

    # WHEN the re-publication is normalised
    again = normalise(load_event("guardduty_ssh_brute_force_redelivered"))

    # THEN it is the same finding, seen more often and later
    assert again.finding_id == first.finding_id
    assert (again.count, first.count) == (5, 1)
    assert again.updated_at == "2026-03-14T09:29:40.512Z"
    assert again.remote_ips == first.remote_ips


def test_low_port_probe_reads_every_probe_entry_v4_and_v6() -> None:
    # GIVEN a Low port probe with one IPv4 and one IPv6 prober
    event = load_event("guardduty_port_probe_low")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN both addresses are remote IPs, in the finding's order
    assert incident.finding_type == "Recon:EC2/PortProbeUnprotectedPort"
    assert (incident.severity, incident.severity_label) == (2.0, "LOW")
    assert incident.action_type == "PORT_PROBE"
    assert incident.direction is None
    assert incident.remote_ips == ("193.142.146.35", "2a0e:97c0:3e3:2a2::1")
    assert [d.country for d in incident.remote_ip_details] == ["Romania", "Netherlands"]


def test_high_port_probe_keeps_a_private_prober_as_a_valid_address_for_the_block_step_to_refuse() -> None:
    # GIVEN a High port probe from a public v4, a private v4 and a public v6 address
    event = load_event("guardduty_port_probe_high")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN all three are valid single addresses; refusing the private one is the block step's job
    assert (incident.severity, incident.severity_label) == (7.5, "HIGH")
    assert incident.remote_ips == ("194.26.29.102", "10.0.0.9", "2a0e:97c0:3e3:2a2::1")
    assert incident.invalid_remote_ips == ()
    assert incident.remote_ip_details[1] == RemoteIpDetails(address="10.0.0.9", organization="", asn="-1", isp="")


def test_sample_finding_is_flagged_and_keeps_its_placeholder_ids() -> None:
    # GIVEN a GuardDuty sample finding (CreateSampleFindings) for RDP brute force
    event = load_event("guardduty_sample_rdp_brute_force")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN it is marked as a sample, with the placeholders as given
    assert incident.sample is True
    assert incident.finding_type == "UnauthorizedAccess:EC2/RDPBruteForce"
    assert incident.instance_id == "i-99999999"
    assert incident.network_interfaces[0].subnet_id == "GeneratedFindingSubnetId"
    assert incident.remote_ips == ("185.220.101.47",)
    assert incident.resource_role == "TARGET"
    assert incident.count == 4


def test_malformed_finding_is_rejected_naming_the_missing_id() -> None:
    # GIVEN a High finding without an id whose resource is a string
    event = load_event("guardduty_malformed")

    # WHEN / THEN it is rejected, not crashed on
    with pytest.raises(FindingRejected, match=r"detail\.id"):
        normalise(event)


def test_crypto_mining_dns_finding_has_every_interface_and_no_remote_ip() -> None:
    # GIVEN an instance with two ENIs querying a mining pool domain
    event = load_event("guardduty_crypto_mining")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN both interfaces are kept and there is no address to block
    assert incident.finding_type == "CryptoCurrency:EC2/BitcoinTool.B!DNS"
    assert (incident.resource_role, incident.action_type) == ("ACTOR", "DNS_REQUEST")
    assert incident.instance_id == "i-0a1b2c3d4e5f60002"
    assert [eni.interface_id for eni in incident.network_interfaces] == [
        "eni-0f1e2d3c4b5a60002",
        "eni-0f1e2d3c4b5a60003",
    ]
    assert incident.network_interfaces[1].security_group_ids == ("sg-0a1b2c3d4e5f60002", "sg-0a1b2c3d4e5f60003")
    assert incident.network_interfaces[1].public_ip is None
    assert incident.vpc_id == "vpc-0a1b2c3d4e5f60001"
    assert (incident.remote_ips, incident.invalid_remote_ips) == ((), ())
    assert incident.count == 12


def test_command_and_control_finding_reads_the_outbound_destination() -> None:
    # GIVEN an instance talking to a C&C server
    event = load_event("guardduty_c2_outbound")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the C&C address is the remote IP and the direction is outbound
    assert incident.finding_type == "Backdoor:EC2/C&CActivity.B"
    assert (incident.severity_label, incident.direction, incident.resource_role) == ("HIGH", "OUTBOUND", "ACTOR")
    assert incident.instance_id == "i-0a1b2c3d4e5f60003"
    assert incident.remote_ips == ("193.233.20.15",)


def test_exfiltrated_instance_credentials_name_the_assumed_role_and_its_temporary_key() -> None:
    # GIVEN instance-role credentials used from outside AWS
    event = load_event("guardduty_access_key_malicious_ip")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the principal and the ASIA key are read, and the caller's address
    assert incident.finding_type == "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    assert incident.resource_type == "AccessKey"
    assert incident.access_key_id == "ASIAZ4FQH7XKN2LD3VB5"
    assert (incident.principal_type, incident.principal_name) == ("AssumedRole", "web-server-role")
    assert incident.action_type == "AWS_API_CALL"
    assert incident.remote_ips == ("103.151.103.15",)
    assert incident.instance_id is None


def test_compromised_iam_user_key_names_the_user_and_the_long_term_key() -> None:
    # GIVEN anomalous API calls with an IAM user's access key
    event = load_event("guardduty_iam_user_key_compromised")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the exact key and user are known
    assert incident.finding_type == "CredentialAccess:IAMUser/AnomalousBehavior"
    assert incident.access_key_id == "AKIAZ4FQH7XKN2LD3VB6"
    assert (incident.principal_type, incident.principal_name) == ("IAMUser", "ci-deployer")
    assert incident.remote_ips == ("146.70.119.82",)


def test_root_credential_usage_names_the_root_principal() -> None:
    # GIVEN API calls made with root credentials
    event = load_event("guardduty_root_credential_usage")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the principal type is Root
    assert incident.finding_type == "Policy:IAMUser/RootCredentialUsage"
    assert (incident.resource_type, incident.principal_type, incident.principal_name) == ("AccessKey", "Root", "Root")
    assert incident.remote_ips == ("91.92.250.41",)


def test_attack_sequence_is_critical_with_no_action() -> None:
    # GIVEN an Extended Threat Detection attack sequence
    event = load_event("guardduty_attack_sequence")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN it is Critical, of resource type AttackSequence, and has no action fields
    assert incident.finding_type == "AttackSequence:IAM/CompromisedCredentials"
    assert (incident.severity, incident.severity_label) == (9.5, "CRITICAL")
    assert incident.resource_type == "AttackSequence"
    assert (incident.action_type, incident.direction, incident.remote_ips) == (None, None, ())
    assert (incident.instance_id, incident.access_key_id) == (None, None)


# --- Security Hub sample events ----------------------------------------------------------------------------------


def test_inspector_finding_from_security_hub_reads_the_instance_from_its_arn() -> None:
    # GIVEN a Security Hub Imported event with an Inspector HIGH finding on an instance
    event = load_event("securityhub_inspector_high")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the PascalCase ASFF fields land in the same model
    assert incident.source is Source.SECURITYHUB
    assert incident.finding_id == f"arn:aws:inspector2:us-east-1:{ACCOUNT}:finding/6f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert (incident.account_id, incident.region) == (ACCOUNT, "us-east-1")
    assert incident.finding_type == "Software and Configuration Checks/Vulnerabilities/CVE"
    assert (incident.severity, incident.severity_label) == (7.0, "HIGH")
    assert (incident.resource_type, incident.resource_role) == ("Instance", None)
    assert incident.instance_id == "i-0a1b2c3d4e5f60005"
    assert incident.vpc_id == "vpc-0a1b2c3d4e5f60001"
    assert incident.network_interfaces == ()
    assert incident.resource_tags == (("Environment", "production"), ("Name", "bastion"))
    assert incident.product_name == "Inspector"
    assert incident.product_arn == "arn:aws:securityhub:us-east-1::product/aws/inspector"
    assert (incident.remote_ips, incident.sample, incident.count) == ((), False, 1)
    assert incident.updated_at == "2026-03-14T20:05:37.000Z"


def test_security_hub_copy_of_a_guardduty_finding_reads_the_asff_action() -> None:
    # GIVEN the ASFF copy of the SSH brute force finding
    event = load_event("securityhub_guardduty_copy")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the attacker, role and interface match the native finding; the numeric ASN becomes a string
    assert incident.finding_id == f"{DETECTOR_ARN}/finding/62c8f1a3b5d94e7f8a2b6c0d1e3f4a5b"
    assert incident.finding_type == "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"
    assert (incident.severity, incident.severity_label) == (4.0, "LOW")
    assert (incident.product_name, incident.resource_role) == ("GuardDuty", "TARGET")
    assert (incident.action_type, incident.direction) == ("NETWORK_CONNECTION", "INBOUND")
    assert incident.network_interfaces == (
        NetworkInterface("eni-0f1e2d3c4b5a60001", "subnet-0a1b2c3d4e5f60001", "vpc-0a1b2c3d4e5f60001"),
    )
    assert incident.remote_ips == ("45.155.205.233",)
    assert incident.remote_ip_details[0].asn == "206728"
    assert incident.remote_ip_details[0].city == "Amsterdam"


def test_custom_action_event_normalises_its_one_finding() -> None:
    # GIVEN a person ran the "Respond with Firebreak" custom action on a finding
    event = load_event("securityhub_custom_action")

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the finding inside is read like an imported one
    assert incident.source is Source.SECURITYHUB
    assert "SSHBruteForce" in incident.finding_type
    assert incident.instance_id == "i-0a1b2c3d4e5f60006"
    assert incident.resource_role == "TARGET"
    assert incident.remote_ips == ("185.220.101.47",)


@pytest.mark.parametrize("name", ["guardduty_ssh_brute_force", "securityhub_custom_action"])
def test_detail_alone_normalises_like_the_full_envelope(name: str) -> None:
    # GIVEN an event and what a target with InputPath $.detail delivers
    event = load_event(name)

    # WHEN / THEN both give the same incident
    assert normalise(event["detail"]) == normalise(event)


def test_several_security_hub_findings_need_normalise_all() -> None:
    # GIVEN one Security Hub event carrying two findings
    event = load_event("securityhub_guardduty_copy")
    event["detail"]["findings"].append(load_event("securityhub_inspector_high")["detail"]["findings"][0])

    # WHEN / THEN normalise_all returns one incident per finding, normalise refuses to pick one
    assert [i.product_name for i in normalise_all(event)] == ["GuardDuty", "Inspector"]
    with pytest.raises(FindingRejected, match="2 findings"):
        normalise(event)


# --- Hostile and unusual input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [None, "a string", [], 42], ids=["none", "string", "list", "number"])
def test_event_that_is_not_an_object_is_rejected(event: Any) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(FindingRejected, match="event is not an object"):
        normalise(event)


def test_missing_id_is_rejected() -> None:
    # GIVEN a finding without id
    event = ssh_event()
    del event["detail"]["id"]

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=r"detail\.id"):
        normalise(event)


@pytest.mark.parametrize(
    "severity",
    ["8", True, math.nan, math.inf, -1, 10.5, 10**400, None],
    ids=["string", "bool", "nan", "inf", "negative", "above-ten", "huge-int", "missing"],
)
def test_severity_that_is_not_a_number_from_0_to_10_is_rejected(severity: Any) -> None:
    # GIVEN a finding with an unreadable severity
    event = ssh_event()
    event["detail"]["severity"] = severity

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=r"detail\.severity"):
        normalise(event)


@pytest.mark.parametrize(("severity", "label"), [(0, "LOW"), (3.9, "LOW"), (4, "MEDIUM"), (7, "HIGH"), (9, "CRITICAL")])
def test_guardduty_severity_label_follows_the_documented_bands(severity: float, label: str) -> None:
    # GIVEN a finding with a boundary severity
    event = ssh_event()
    event["detail"]["severity"] = severity

    # WHEN / THEN
    assert normalise(event).severity_label == label


def test_resource_that_is_not_an_object_is_rejected() -> None:
    # GIVEN a finding whose resource is a string
    event = ssh_event()
    event["detail"]["resource"] = "i-0a1b2c3d4e5f60001"

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=r"detail\.resource is not an object"):
        normalise(event)


@pytest.mark.parametrize(
    ("field", "value"),
    [("accountId", "12345"), ("accountId", 123456789012), ("region", "not a region"), ("id", "x" * 513)],
)
def test_unreadable_identity_fields_are_rejected(field: str, value: Any) -> None:
    # GIVEN a finding with a malformed account, region or id
    event = ssh_event()
    event["detail"][field] = value

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=rf"detail\.{field}"):
        normalise(event)


@pytest.mark.parametrize("raw", ["0.0.0.0/0", "1337.1337.1337.1337", "GeneratedFindingIp", "", "fe80::1%eth0"])
def test_remote_ip_that_is_not_one_address_goes_to_invalid_remote_ips(raw: str) -> None:
    # GIVEN a finding whose remote "IP" is a CIDR, garbage or a placeholder
    event = set_remote_ip(ssh_event(), ipAddressV4=raw)

    # WHEN it is normalised
    incident = normalise(event)

    # THEN it is kept apart, never as an address to block
    assert incident.remote_ips == ()
    assert incident.remote_ip_details == ()
    assert incident.invalid_remote_ips == (raw,)


def test_long_invalid_remote_ip_is_cut_to_64_characters() -> None:
    # GIVEN a very long garbage address
    event = set_remote_ip(ssh_event(), ipAddressV4="9" * 500)

    # WHEN / THEN
    assert normalise(event).invalid_remote_ips == ("9" * 64,)


def test_ipv4_mapped_ipv6_address_normalises_to_ipv4() -> None:
    # GIVEN an IPv4-mapped IPv6 remote address
    event = set_remote_ip(ssh_event(), ipAddressV6="::ffff:45.155.205.233")

    # WHEN / THEN
    assert normalise(event).remote_ips == ("45.155.205.233",)


def test_remote_addresses_are_compressed_and_deduplicated_in_order() -> None:
    # GIVEN a v4 and an uncompressed v6 address, and port probes repeating them
    event = set_remote_ip(
        ssh_event(), ipAddressV4="45.155.205.233", ipAddressV6="2A0E:97C0:03E3:02A2:0000:0000:0000:0001"
    )
    event["detail"]["service"]["action"]["portProbeAction"] = {
        "portProbeDetails": [
            {"remoteIpDetails": {"ipAddressV6": "2a0e:97c0:3e3:2a2::1"}},
            {"remoteIpDetails": {"ipAddressV4": "185.220.101.47"}},
            {"remoteIpDetails": {"ipAddressV4": "45.155.205.233"}},
        ]
    }

    # WHEN / THEN
    assert normalise(event).remote_ips == ("45.155.205.233", "2a0e:97c0:3e3:2a2::1", "185.220.101.47")


def test_remote_ip_that_is_not_a_string_is_rejected() -> None:
    # GIVEN a numeric remote address
    event = set_remote_ip(ssh_event(), ipAddressV4=757935337)  # type: ignore[arg-type]

    # WHEN / THEN
    with pytest.raises(FindingRejected, match="ipAddressV4 is not a string"):
        normalise(event)


def test_control_characters_are_stripped_from_text_people_read() -> None:
    # GIVEN control characters (terminal escapes, newlines, bells) in the title, type and user name
    event = load_event("guardduty_iam_user_key_compromised")
    event["detail"]["title"] = "\x1b[31mKey\x07 abused\r\nby\x00 attacker"
    event["detail"]["type"] = "CredentialAccess:IAMUser/Anomalous\nBehavior"
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = "ci-\u202edeployer\x1b"

    # WHEN it is normalised
    incident = normalise(event)

    # THEN only printable characters remain
    assert incident.title == "[31mKey abusedby attacker"
    assert incident.finding_type == "CredentialAccess:IAMUser/AnomalousBehavior"
    assert incident.principal_name == "ci-deployer"


def test_long_strings_are_cut() -> None:
    # GIVEN an oversized title and type
    event = ssh_event()
    event["detail"]["title"] = "t" * 10_000
    event["detail"]["type"] = "x" * 10_000

    # WHEN it is normalised
    incident = normalise(event)

    # THEN they are cut to their limits
    assert (len(incident.title), len(incident.finding_type)) == (512, 256)


def test_port_probe_entries_are_capped() -> None:
    # GIVEN a crafted port probe with 5000 distinct probers
    event = load_event("guardduty_port_probe_low")
    event["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"] = [
        {"remoteIpDetails": {"ipAddressV4": f"45.{n // 65536}.{n // 256 % 256}.{n % 256}"}} for n in range(5000)
    ]

    # WHEN it is normalised
    incident = normalise(event)

    # THEN only the first MAX_PORT_PROBE_ENTRIES are read
    assert len(incident.remote_ips) == MAX_PORT_PROBE_ENTRIES == 1000
    assert incident.remote_ips[-1] == "45.0.3.231"


def test_placeholder_instance_details_on_an_access_key_finding_are_ignored() -> None:
    # GIVEN an AccessKey finding carrying sample-style instanceDetails
    event = load_event("guardduty_iam_user_key_compromised")
    event["detail"]["resource"]["instanceDetails"] = {"instanceId": "i-99999999", "networkInterfaces": "junk"}

    # WHEN it is normalised
    incident = normalise(event)

    # THEN routing-relevant instance fields stay empty
    assert (incident.instance_id, incident.network_interfaces) == (None, ())


def test_instance_finding_without_an_instance_id_is_rejected() -> None:
    # GIVEN an Instance finding whose instance id is missing
    event = ssh_event()
    del event["detail"]["resource"]["instanceDetails"]["instanceId"]

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=r"instanceDetails\.instanceId"):
        normalise(event)


def test_federated_user_principal_is_called_federated() -> None:
    # GIVEN an access key finding for a federated user
    event = load_event("guardduty_iam_user_key_compromised")
    event["detail"]["resource"]["accessKeyDetails"]["userType"] = "FederatedUser"

    # WHEN / THEN
    assert normalise(event).principal_type == "Federated"


@pytest.mark.parametrize(("label", "normalized", "severity", "expected_label"), [
    ("HIGH", None, 8.0, "HIGH"),
    ("CRITICAL", None, 9.5, "CRITICAL"),
    (None, 95, 9.5, "CRITICAL"),
    (None, 0, 0.0, "INFORMATIONAL"),
    (None, 45, 4.5, "MEDIUM"),
])  # fmt: skip
def test_asff_severity_comes_from_label_or_normalized(
    label: str | None, normalized: int | None, severity: float, expected_label: str
) -> None:
    # GIVEN an ASFF finding with only a label or only a normalized score
    event = load_event("securityhub_inspector_high")
    event["detail"]["findings"][0]["Severity"] = {
        key: value for key, value in (("Label", label), ("Normalized", normalized)) if value is not None
    }

    # WHEN it is normalised
    incident = normalise(event)

    # THEN
    assert (incident.severity, incident.severity_label) == (severity, expected_label)


@pytest.mark.parametrize("severity", [{}, {"Label": "SEVERE"}, {"Normalized": 101}, {"Normalized": "70"}])
def test_asff_without_a_readable_severity_is_rejected(severity: dict[str, Any]) -> None:
    # GIVEN an ASFF finding with no usable severity
    event = load_event("securityhub_inspector_high")
    event["detail"]["findings"][0]["Severity"] = severity

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=r"findings\[0\]\.Severity"):
        normalise(event)


def test_asff_access_key_resource_gives_the_principal_and_the_key_from_its_id() -> None:
    # GIVEN an ASFF finding on an access key, the key id only in the resource Id
    event = load_event("securityhub_inspector_high")
    event["detail"]["findings"][0]["Resources"] = [
        {
            "Type": "AwsIamAccessKey",
            "Id": "AWS::IAM::AccessKey:ASIAZ4FQH7XKN2LD3VB5",
            "Details": {"AwsIamAccessKey": {"PrincipalName": "web-server-role", "PrincipalType": "AssumedRole"}},
        }
    ]

    # WHEN it is normalised
    incident = normalise(event)

    # THEN
    assert incident.resource_type == "AccessKey"
    assert incident.access_key_id == "ASIAZ4FQH7XKN2LD3VB5"
    assert (incident.principal_type, incident.principal_name) == ("AssumedRole", "web-server-role")


def test_asff_port_probe_and_api_call_addresses_are_read() -> None:
    # GIVEN an ASFF finding with port-probe and API-call remote addresses
    event = load_event("securityhub_guardduty_copy")
    event["detail"]["findings"][0]["Action"] = {
        "ActionType": "PORT_PROBE",
        "PortProbeAction": {"PortProbeDetails": [{"RemoteIpDetails": {"IpAddressV4": "193.142.146.35"}}]},
        "AwsApiCallAction": {"RemoteIpDetails": {"IpAddressV4": "0.0.0.0/0"}},
    }

    # WHEN it is normalised
    incident = normalise(event)

    # THEN
    assert incident.remote_ips == ("193.142.146.35",)
    assert incident.invalid_remote_ips == ("0.0.0.0/0",)
    assert incident.direction is None


def test_asff_sample_is_recognised_from_the_guardduty_product_field() -> None:
    # GIVEN the Security Hub copy of a GuardDuty sample finding
    event = load_event("securityhub_guardduty_copy")
    event["detail"]["findings"][0]["ProductFields"]["aws/guardduty/service/additionalInfo/sample"] = "true"

    # WHEN / THEN
    assert normalise(event).sample is True


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(findings=[]), "detail.findings is missing or empty"),
        (lambda d: d.update(findings={"Id": "x"}), "detail.findings is not a list"),
        (lambda d: d["findings"][0].update(Resources=[]), r"findings\[0\]\.Resources is missing or empty"),
        (lambda d: d["findings"][0].update(Types="TTPs"), r"findings\[0\]\.Types is not a list"),
    ],
    ids=["no-findings", "findings-not-a-list", "no-resources", "types-not-a-list"],
)
def test_unreadable_security_hub_events_are_rejected(mutate: Any, reason: str) -> None:
    # GIVEN a Security Hub event broken in one place
    event = load_event("securityhub_inspector_high")
    mutate(event["detail"])

    # WHEN / THEN
    with pytest.raises(FindingRejected, match=reason):
        normalise(event)


def test_other_event_types_are_rejected() -> None:
    # GIVEN a GuardDuty event that is not a finding
    event = copy.deepcopy(ssh_event())
    event["detail-type"] = "GuardDuty Runtime Protection Unhealthy"

    # WHEN / THEN
    with pytest.raises(FindingRejected, match="is not a GuardDuty or Security Hub finding event"):
        normalise(event)


def test_incident_round_trips_through_json() -> None:
    # GIVEN a normalised incident
    incident = normalise(load_event("guardduty_port_probe_high"))

    # WHEN it crosses a state boundary as JSON
    restored = Incident.from_dict(json.loads(json.dumps(incident.to_dict())))

    # THEN nothing is lost
    assert restored == incident


# --- RDS Protection (contain-database) --------------------------------------------------------------------------


def test_rds_login_names_the_instance_its_cluster_the_user_and_the_tags() -> None:
    incident = normalise(load_event("guardduty_rds_login_attempt"))
    assert (incident.db_instance_id, incident.db_cluster_id, incident.db_engine) == (
        "orders-db",
        "orders",
        "aurora-postgresql",
    )
    assert (incident.db_user, incident.db_name) == ("postgres", "orders")
    assert incident.resource_tags == (("Team", "orders"),)
    assert incident.remote_ips == ("185.196.8.150",)


def test_rds_finding_carries_no_principal_even_when_a_sample_puts_key_details_on_it() -> None:
    event = load_event("guardduty_rds_successful_brute_force")
    event["detail"]["resource"]["accessKeyDetails"] = {
        "accessKeyId": "GeneratedFindingAccessKeyId",
        "userType": "IAMUser",
    }
    incident = normalise(event)
    assert (incident.db_instance_id, incident.db_cluster_id) == ("billing-db", None)
    assert (incident.access_key_id, incident.principal_type) == (None, None)


def test_aurora_limitless_finding_names_its_cluster() -> None:
    event = load_event("guardduty_rds_login_attempt")
    resource = event["detail"]["resource"]
    resource["resourceType"] = "RDSLimitlessDB"
    resource["rdsLimitlessDbDetails"] = {
        "dbShardGroupIdentifier": "orders-shards",
        "dbClusterIdentifier": "orders-limitless",
        "engine": "aurora-postgresql",
    }
    del resource["rdsDbInstanceDetails"]
    incident = normalise(event)
    assert (incident.db_instance_id, incident.db_cluster_id) == (None, "orders-limitless")


@pytest.mark.parametrize("identifier", ["1db", "db_with_underscore", "x" * 64, "db;drop"])
def test_a_database_identifier_rds_would_refuse_rejects_the_finding(identifier: str) -> None:
    event = load_event("guardduty_rds_login_attempt")
    event["detail"]["resource"]["rdsDbInstanceDetails"]["dbInstanceIdentifier"] = identifier
    with pytest.raises(FindingRejected, match=r"rdsDbInstanceDetails\.dbInstanceIdentifier"):
        normalise(event)


def test_security_hub_copy_of_an_rds_finding_names_the_instance_and_its_cluster() -> None:
    # GIVEN the Security Hub copy of a GuardDuty RDS login finding, its DB instance as an AwsRdsDbInstance resource
    event = load_event("securityhub_guardduty_copy")
    finding = event["detail"]["findings"][0]
    finding["Types"] = ["TTPs/Credential Access/CredentialAccess:RDS-MaliciousIPCaller.SuccessfulLogin"]
    finding["Resources"] = [
        {
            "Type": "AwsRdsDbInstance",
            "Id": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-db",
            "Tags": {"Team": "orders"},
            "Details": {"AwsRdsDbInstance": {"DbClusterIdentifier": "orders", "Engine": "aurora-postgresql"}},
        }
    ]
    # WHEN it is normalised
    incident = normalise(event)
    # THEN the instance comes from the ARN, the cluster and engine from the details
    assert incident.resource_type == "RDSDBInstance"
    assert (incident.db_instance_id, incident.db_cluster_id, incident.db_engine) == (
        "orders-db",
        "orders",
        "aurora-postgresql",
    )
    assert incident.resource_tags == (("Team", "orders"),)
