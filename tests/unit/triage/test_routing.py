"""route / load_routes: the shipped routing table, one case per PRODUCT.md routing row, and invalid tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from firebreak.core.models import Incident, Playbook, Source
from firebreak.triage.findings import normalise
from firebreak.triage.routing import ROUTES_PATH, SCHEMA, Route, RoutingTableInvalid, load_routes, route

REPO_ROOT = Path(__file__).parents[3]


def incident(**fields: Any) -> Incident:
    base: dict[str, Any] = {
        "source": Source.GUARDDUTY,
        "finding_id": "0123456789abcdef0123456789abcdef",
        "account_id": "123456789012",
        "region": "us-east-1",
        "finding_type": "Unknown:Thing/Novel",
        "severity": 8.0,
        "severity_label": "HIGH",
    }
    return Incident(**{**base, **fields})


def instance(finding_type: str, role: str | None) -> dict[str, Any]:
    return {"finding_type": finding_type, "resource_type": "Instance", "resource_role": role, "instance_id": "i-0a"}


def key(finding_type: str, principal: str, resource_type: str = "AccessKey") -> dict[str, Any]:
    return {"finding_type": finding_type, "resource_type": resource_type, "principal_type": principal}


ROWS = {
    "ssh_brute_force_target_blocks_ip": (instance("UnauthorizedAccess:EC2/SSHBruteForce", "TARGET"), Playbook.BLOCK_IP),
    "rdp_brute_force_target_blocks_ip": (instance("UnauthorizedAccess:EC2/RDPBruteForce", "TARGET"), Playbook.BLOCK_IP),
    "port_probe_target_blocks_ip": (instance("Recon:EC2/PortProbeUnprotectedPort", "TARGET"), Playbook.BLOCK_IP),
    "asff_port_probe_target_blocks_ip": (
        instance("TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort", "TARGET"),
        Playbook.BLOCK_IP,
    ),
    "ssh_brute_force_actor_contains_instance": (
        instance("UnauthorizedAccess:EC2/SSHBruteForce", "ACTOR"),
        Playbook.CONTAIN_INSTANCE,
    ),
    "brute_force_without_role_contains_instance": (
        instance("UnauthorizedAccess:EC2/SSHBruteForce", None),
        Playbook.CONTAIN_INSTANCE,
    ),
    "crypto_mining_contains_instance": (
        instance("CryptoCurrency:EC2/BitcoinTool.B!DNS", "ACTOR"),
        Playbook.CONTAIN_INSTANCE,
    ),
    "command_and_control_contains_instance": (
        instance("Backdoor:EC2/C&CActivity.B", "ACTOR"),
        Playbook.CONTAIN_INSTANCE,
    ),
    "runtime_finding_contains_instance": (
        instance("Execution:Runtime/NewBinaryExecuted", "ACTOR"),
        Playbook.CONTAIN_INSTANCE,
    ),
    "iam_user_key_revokes_credentials": (
        key("CredentialAccess:IAMUser/AnomalousBehavior", "IAMUser"),
        Playbook.REVOKE_CREDENTIALS,
    ),
    "assumed_role_revokes_credentials": (
        key("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "AssumedRole"),
        Playbook.REVOKE_CREDENTIALS,
    ),
    "s3_bucket_iam_user_outside_protect_bucket_revokes_credentials": (
        key("PenTest:S3/KaliLinux", "IAMUser", resource_type="S3Bucket"),
        Playbook.REVOKE_CREDENTIALS,
    ),
    "root_notifies_only": (key("Policy:IAMUser/RootCredentialUsage", "Root"), Playbook.NOTIFY_ONLY),
    "aws_service_notifies_only": (key("Discovery:IAMUser/AnomalousBehavior", "AWSService"), Playbook.NOTIFY_ONLY),
    "federated_notifies_only": (key("Discovery:IAMUser/AnomalousBehavior", "Federated"), Playbook.NOTIFY_ONLY),
    "eks_cluster_notifies_only": (
        {"finding_type": "Discovery:Kubernetes/SuccessfulAnonymousAccess", "resource_type": "EKSCluster"},
        Playbook.NOTIFY_ONLY,
    ),
    "rds_successful_login_contains_the_database": (
        {"finding_type": "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin", "resource_type": "RDSDBInstance"},
        Playbook.CONTAIN_DATABASE,
    ),
    "rds_successful_brute_force_contains_the_database": (
        {
            "finding_type": "CredentialAccess:RDS/AnomalousBehavior.SuccessfulBruteForce",
            "resource_type": "RDSDBInstance",
        },
        Playbook.CONTAIN_DATABASE,
    ),
    "rds_limitless_tor_login_contains_the_database": (
        {"finding_type": "CredentialAccess:RDS/TorIPCaller.SuccessfulLogin", "resource_type": "RDSLimitlessDB"},
        Playbook.CONTAIN_DATABASE,
    ),
    "rds_failed_login_blocks_the_address": (
        {"finding_type": "CredentialAccess:RDS/MaliciousIPCaller.FailedLogin", "resource_type": "RDSDBInstance"},
        Playbook.BLOCK_IP,
    ),
    "rds_other_finding_notifies_only": (
        {"finding_type": "CredentialAccess:RDS/ModifyAuthenticationProcess", "resource_type": "RDSDBInstance"},
        Playbook.NOTIFY_ONLY,
    ),
    "malicious_file_run_in_a_task_contains_the_task": (
        {"finding_type": "Execution:Runtime/MaliciousFileExecuted", "resource_type": "ECSCluster"},
        Playbook.CONTAIN_TASK,
    ),
    "malicious_file_run_in_a_pod_contains_its_node": (
        {"finding_type": "Execution:Runtime/MaliciousFileExecuted", "resource_type": "EKSCluster"},
        Playbook.CONTAIN_INSTANCE,
    ),
    "rds_discovery_blocks_the_address": (
        {"finding_type": "Discovery:RDS/TorIPCaller", "resource_type": "RDSDBInstance"},
        Playbook.BLOCK_IP,
    ),
    "lambda_command_and_control_contains_function": (
        {"finding_type": "Backdoor:Lambda/C&CActivity.B", "resource_type": "Lambda"},
        Playbook.CONTAIN_FUNCTION,
    ),
    "lambda_crypto_mining_contains_function": (
        {"finding_type": "CryptoCurrency:Lambda/BitcoinTool.B", "resource_type": "Lambda"},
        Playbook.CONTAIN_FUNCTION,
    ),
    "lambda_drop_point_contains_function": (
        {"finding_type": "Trojan:Lambda/DropPoint", "resource_type": "Lambda"},
        Playbook.CONTAIN_FUNCTION,
    ),
    "lambda_tor_client_contains_function": (
        {"finding_type": "UnauthorizedAccess:Lambda/TorClient", "resource_type": "Lambda"},
        Playbook.CONTAIN_FUNCTION,
    ),
    "asff_lambda_command_and_control_contains_function": (
        {"finding_type": "TTPs/Command and Control/Backdoor:Lambda-C&CActivity.B", "resource_type": "Lambda"},
        Playbook.CONTAIN_FUNCTION,
    ),
    "lambda_type_outside_the_families_notifies_only": (
        {"finding_type": "Discovery:Lambda/SomethingNew", "resource_type": "Lambda"},
        Playbook.NOTIFY_ONLY,
    ),
    "lambda_type_on_another_resource_notifies_only": (
        {"finding_type": "Backdoor:Lambda/C&CActivity.B", "resource_type": "SomethingNew"},
        Playbook.NOTIFY_ONLY,
    ),
    "instance_malware_notifies_only": (instance("Execution:EC2/MaliciousFile", "TARGET"), Playbook.NOTIFY_ONLY),
    "attack_sequence_notifies_only": (
        {"finding_type": "AttackSequence:IAM/CompromisedCredentials", "resource_type": "AttackSequence"},
        Playbook.NOTIFY_ONLY,
    ),
    "instance_vulnerability_notifies_only": (
        instance("Software and Configuration Checks/Vulnerabilities/CVE", None),
        Playbook.NOTIFY_ONLY,
    ),
    "unknown_type_notifies_only": ({"resource_type": "SomethingNew"}, Playbook.NOTIFY_ONLY),
}
# protect-bucket: every S3 Protection family the issue names, either spelling, any principal; the rest as before.
ROWS |= {
    f"s3_{finding_type.split(':')[0].lower()}_{n}_protects_bucket": (
        key(finding_type, principal, resource_type="S3Bucket"),
        Playbook.PROTECT_BUCKET,
    )
    for n, (finding_type, principal) in enumerate(
        [
            ("Policy:S3/BucketBlockPublicAccessDisabled", "IAMUser"),
            ("Policy:S3/BucketAnonymousAccessGranted", "AssumedRole"),
            ("Policy:S3/BucketPublicAccessGranted", "IAMUser"),
            ("Stealth:S3/ServerAccessLoggingDisabled", "AssumedRole"),
            ("Exfiltration:S3/AnomalousBehavior", "IAMUser"),
            ("Exfiltration:S3/MaliciousIPCaller", "Root"),
            ("Impact:S3/PermissionsModification.Unusual", "IAMUser"),
            ("UnauthorizedAccess:S3/TorIPCaller", "AssumedRole"),
            ("Discovery:S3/MaliciousIPCaller.Custom", "IAMUser"),
            ("TTPs/Exfiltration/Exfiltration:S3-MaliciousIPCaller", "IAMUser"),
            ("Effects/Data Exposure/Policy:S3-BucketAnonymousAccessGranted", "IAMUser"),
        ]
    )
}
ROWS |= {
    "s3_malicious_object_protects_bucket": (
        {"finding_type": "Object:S3/MaliciousFile", "resource_type": "S3Object"},
        Playbook.PROTECT_BUCKET,
    ),
    "asff_s3_malicious_object_protects_bucket": (
        {"finding_type": "TTPs/Execution/Object:S3-MaliciousFile", "resource_type": "S3Object"},
        Playbook.PROTECT_BUCKET,
    ),
    "account_block_public_access_stays_notify_only": (
        {"finding_type": "Policy:S3/AccountBlockPublicAccessDisabled", "resource_type": "S3Bucket"},
        Playbook.NOTIFY_ONLY,
    ),
    "s3_malicious_file_on_an_instance_stays_notify_only": (
        instance("Execution:EC2/MaliciousFile", "TARGET"),
        Playbook.NOTIFY_ONLY,
    ),
    "s3_finding_on_an_access_key_stays_revoke_credentials": (
        key("Exfiltration:S3/ObjectRead.Unusual", "IAMUser"),
        Playbook.REVOKE_CREDENTIALS,
    ),
}


@pytest.mark.parametrize(("fields", "playbook"), ROWS.values(), ids=ROWS.keys())
def test_shipped_routing_table_follows_the_product_routing_rows(fields: dict[str, Any], playbook: Playbook) -> None:
    # GIVEN an incident of one routing row
    subject = incident(**fields)

    # WHEN it is routed with the shipped table
    chosen = route(subject)

    # THEN it gets that row's playbook
    assert chosen.playbook is playbook


FIXTURE_PLAYBOOKS = {
    "guardduty_ssh_brute_force": Playbook.BLOCK_IP,
    "guardduty_ssh_brute_force_redelivered": Playbook.BLOCK_IP,
    "guardduty_port_probe_low": Playbook.BLOCK_IP,
    "guardduty_port_probe_high": Playbook.BLOCK_IP,
    "guardduty_sample_rdp_brute_force": Playbook.BLOCK_IP,
    "guardduty_crypto_mining": Playbook.CONTAIN_INSTANCE,
    "guardduty_c2_outbound": Playbook.CONTAIN_INSTANCE,
    "guardduty_access_key_malicious_ip": Playbook.REVOKE_CREDENTIALS,
    "guardduty_iam_user_key_compromised": Playbook.REVOKE_CREDENTIALS,
    "guardduty_root_credential_usage": Playbook.NOTIFY_ONLY,
    "guardduty_lambda_crypto_mining": Playbook.CONTAIN_FUNCTION,
    "guardduty_attack_sequence": Playbook.NOTIFY_ONLY,
    "securityhub_inspector_high": Playbook.NOTIFY_ONLY,
    "securityhub_guardduty_copy": Playbook.BLOCK_IP,
    "securityhub_custom_action": Playbook.BLOCK_IP,
    "guardduty_s3_malicious_ip_caller": Playbook.PROTECT_BUCKET,
    "guardduty_s3_bucket_anonymous_access_granted": Playbook.PROTECT_BUCKET,
    "guardduty_s3_server_access_logging_disabled": Playbook.PROTECT_BUCKET,
    "guardduty_s3_malicious_file": Playbook.PROTECT_BUCKET,
}


@pytest.mark.parametrize(("name", "playbook"), FIXTURE_PLAYBOOKS.items(), ids=FIXTURE_PLAYBOOKS.keys())
def test_sample_events_route_to_their_playbook(name: str, playbook: Playbook) -> None:
    # GIVEN a sample event
    event = json.loads((REPO_ROOT / "events" / "eventbridge" / f"{name}.json").read_text(encoding="utf-8"))

    # WHEN it is normalised and routed
    chosen = route(normalise(event))

    # THEN
    assert chosen.playbook is playbook


def test_shipped_table_ends_with_a_catch_all_and_is_loaded_once() -> None:
    # GIVEN / WHEN the default table is loaded twice
    routes = load_routes()

    # THEN it is the same cached object, and its last rule matches anything
    assert load_routes() is routes
    assert routes[-1] == Route(name="everything-else", playbook=Playbook.NOTIFY_ONLY)
    assert ROUTES_PATH.parent.name == "triage"


def test_schema_is_a_valid_json_schema() -> None:
    # GIVEN / WHEN / THEN
    Draft202012Validator.check_schema(SCHEMA)


def test_routes_passed_in_without_a_match_fall_back_to_notify_only() -> None:
    # GIVEN a caller's table that does not cover the incident
    routes = (Route(name="only-instances", playbook=Playbook.CONTAIN_INSTANCE, resource_type=("Instance",)),)

    # WHEN an access key incident is routed with it
    chosen = route(incident(resource_type="AccessKey"), routes)

    # THEN nothing acts on it
    assert chosen.playbook is Playbook.NOTIFY_ONLY


def write_table(tmp_path: Path, rules: Any) -> Path:
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(rules) if not isinstance(rules, str) else rules, encoding="utf-8")
    return path


CATCH_ALL = {"name": "rest", "match": {}, "playbook": "notify-only"}


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        (
            [{"name": "x", "match": {}, "playbook": "block-everything"}],
            r"data\[0\]\.playbook must be one of",
        ),
        (
            [{"name": "x", "match": {"severity": [">=7"]}, "playbook": "block-ip"}, CATCH_ALL],
            r"data\[0\]\.match must not contain \{'severity'\} properties",
        ),
        (
            [{"name": "x", "match": {"resource_type": "Instance"}, "playbook": "block-ip"}, CATCH_ALL],
            r"data\[0\]\.match\.resource_type must be array",
        ),
        ([{"name": "x", "playbook": "block-ip"}], r"data\[0\] must contain \['match'\] properties"),
        ([{"name": "x", "match": {"resource_type": ["Instance"]}, "playbook": "block-ip"}], "last rule must match"),
        ([CATCH_ALL, CATCH_ALL], "rule name 'rest' is used more than once"),
        ([], r"data must contain at least 1 items"),
        ("[{", "not valid JSON"),
    ],
    ids=[
        "unknown-playbook",
        "unknown-match-key",
        "match-not-a-list",
        "missing-match",
        "no-catch-all",
        "duplicate-name",
        "empty",
        "not-json",
    ],
)
def test_invalid_routing_table_fails_to_load_with_a_clear_error(tmp_path: Path, rules: Any, problem: str) -> None:
    # GIVEN a routing file with a mistake
    path = write_table(tmp_path, rules)

    # WHEN / THEN loading it names the problem
    with pytest.raises(RoutingTableInvalid, match=problem):
        load_routes(path)


def test_custom_routing_table_is_used_in_order(tmp_path: Path) -> None:
    # GIVEN a user's table that sends every instance finding to notify-only first
    path = write_table(
        tmp_path,
        [{"name": "instances-notify", "match": {"resource_type": ["Instance"]}, "playbook": "notify-only"}, CATCH_ALL],
    )

    # WHEN a brute force on an instance is routed with it
    chosen = route(incident(**instance("UnauthorizedAccess:EC2/SSHBruteForce", "TARGET")), load_routes(path))

    # THEN the first matching rule wins
    assert (chosen.name, chosen.playbook) == ("instances-notify", Playbook.NOTIFY_ONLY)
