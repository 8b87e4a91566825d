"""Every sample event through Parse Finding: the normalised incident, the routing rule, the playbook and the mode."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import Incident
from firebreak.triage.decision import DEPLOYED_PLAYBOOKS
from firebreak.triage.routing import route
from firebreak_local.runtime import LambdaContext
from functions.parse_finding.app import lambda_handler
from tests.support import ROOT

EVENTS = ROOT / "events" / "eventbridge"
SETTINGS_ENV = (
    "RESPONSE_MODE",
    "BLOCK_IP_MODE",
    "CONTAIN_INSTANCE_MODE",
    "REVOKE_CREDENTIALS_MODE",
    "CONTAIN_DATABASE_MODE",
    "TRUSTED_PRODUCT_COMPANIES",
    "APPROVAL_TIMEOUT_MINUTES",
    "APPROVAL_TIMEOUT_ACTION",
)


@dataclass(frozen=True)
class Expected:
    source: str
    resource_type: str
    resource_role: str | None
    action_type: str | None
    principal_type: str | None
    remote_ips: tuple[str, ...]
    rule: str
    mode: str


GD, SH = "guardduty", "securityhub"
ROUTED = {
    "instance-brute-forced": "block-ip",
    "instance-port-probed": "block-ip",
    "instance-compromised": "contain-instance",
    "credentials-compromised": "revoke-credentials",
    "function-compromised": "contain-function",
    "database-login-succeeded": "contain-database",
    "database-login-attempted": "block-ip",
    "posture-finding": "notify-only",
    "bucket-exposed-or-attacked": "protect-bucket",
    "bucket-malicious-object": "protect-bucket",
    "everything-else": "notify-only",
}
FIXTURES = {
    "guardduty_access_key_malicious_ip": Expected(
        GD,
        "AccessKey",
        "TARGET",
        "AWS_API_CALL",
        "AssumedRole",
        ("103.151.103.15",),
        "credentials-compromised",
        "enforce",
    ),
    "guardduty_attack_sequence": Expected(GD, "AttackSequence", "TARGET", None, None, (), "everything-else", "enforce"),
    "guardduty_c2_outbound": Expected(
        GD, "Instance", "ACTOR", "NETWORK_CONNECTION", None, ("193.233.20.15",), "instance-compromised", "enforce"
    ),
    "guardduty_crypto_mining": Expected(
        GD, "Instance", "ACTOR", "DNS_REQUEST", None, (), "instance-compromised", "enforce"
    ),
    "guardduty_dual_stack_outbound": Expected(
        GD,
        "Instance",
        "ACTOR",
        "NETWORK_CONNECTION",
        None,
        ("91.92.109.44", "2a03:94e0:ffff:91:92:109:0:44"),
        "instance-compromised",
        "enforce",
    ),
    "guardduty_eks_kubernetes_api_call": Expected(
        GD, "EKSCluster", "TARGET", "KUBERNETES_API_CALL", None, ("80.94.95.181",), "everything-else", "enforce"
    ),
    "guardduty_iam_user_key_compromised": Expected(
        GD, "AccessKey", "TARGET", "AWS_API_CALL", "IAMUser", ("146.70.119.82",), "credentials-compromised", "enforce"
    ),
    "guardduty_ipv6_only_rdp_brute_force": Expected(
        GD,
        "Instance",
        "TARGET",
        "NETWORK_CONNECTION",
        None,
        ("2001:67c:2e8:22::c100:68b",),
        "instance-brute-forced",
        "enforce",
    ),
    "guardduty_lambda_crypto_mining": Expected(
        GD, "Lambda", "ACTOR", "NETWORK_CONNECTION", None, ("45.9.148.108",), "function-compromised", "enforce"
    ),
    "guardduty_member_lambda_c2_activity": Expected(
        GD, "Lambda", "ACTOR", "NETWORK_CONNECTION", None, ("193.233.20.15",), "function-compromised", "enforce"
    ),
    "guardduty_member_c2_outbound": Expected(
        GD, "Instance", "ACTOR", "NETWORK_CONNECTION", None, ("193.233.20.15",), "instance-compromised", "enforce"
    ),
    "guardduty_member_c2_outbound_same_names": Expected(
        GD, "Instance", "ACTOR", "NETWORK_CONNECTION", None, ("193.233.20.15",), "instance-compromised", "enforce"
    ),
    "guardduty_member_iam_user_key_compromised": Expected(
        GD, "AccessKey", "TARGET", "AWS_API_CALL", "IAMUser", ("146.70.119.82",), "credentials-compromised", "enforce"
    ),
    "guardduty_member_ssh_brute_force": Expected(
        GD, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("45.155.205.233",), "instance-brute-forced", "enforce"
    ),
    "guardduty_port_probe_high": Expected(
        GD,
        "Instance",
        "TARGET",
        "PORT_PROBE",
        None,
        ("194.26.29.102", "10.0.0.9", "2a0e:97c0:3e3:2a2::1"),
        "instance-port-probed",
        "enforce",
    ),
    "guardduty_port_probe_low": Expected(
        GD,
        "Instance",
        "TARGET",
        "PORT_PROBE",
        None,
        ("193.142.146.35", "2a0e:97c0:3e3:2a2::1"),
        "instance-port-probed",
        "enforce",
    ),
    "guardduty_rds_login_attempt": Expected(
        GD,
        "RDSDBInstance",
        "TARGET",
        "RDS_LOGIN_ATTEMPT",
        None,
        ("185.196.8.150",),
        "database-login-succeeded",
        "enforce",
    ),
    "guardduty_rds_successful_brute_force": Expected(
        GD,
        "RDSDBInstance",
        "TARGET",
        "RDS_LOGIN_ATTEMPT",
        None,
        ("45.141.84.120",),
        "database-login-succeeded",
        "enforce",
    ),
    "guardduty_rds_malicious_ip_failed_login": Expected(
        GD,
        "RDSDBInstance",
        "TARGET",
        "RDS_LOGIN_ATTEMPT",
        None,
        ("45.141.84.120",),
        "database-login-attempted",
        "enforce",
    ),
    "guardduty_root_credential_usage": Expected(
        GD, "AccessKey", "TARGET", "AWS_API_CALL", "Root", ("91.92.250.41",), "everything-else", "enforce"
    ),
    "guardduty_runtime_new_binary": Expected(
        GD, "Instance", "ACTOR", None, None, (), "instance-compromised", "enforce"
    ),
    "guardduty_s3_malicious_ip_caller": Expected(
        GD, "S3Bucket", "TARGET", "AWS_API_CALL", "IAMUser", ("193.32.162.95",), "bucket-exposed-or-attacked", "enforce"
    ),
    "guardduty_s3_bucket_anonymous_access_granted": Expected(
        GD, "S3Bucket", "TARGET", "AWS_API_CALL", "IAMUser", ("185.100.87.41",), "bucket-exposed-or-attacked", "enforce"
    ),
    "guardduty_s3_anomalous_exfiltration_two_buckets": Expected(
        GD, "S3Bucket", "TARGET", "AWS_API_CALL", "IAMUser", ("91.219.236.18",), "bucket-exposed-or-attacked", "enforce"
    ),
    "guardduty_s3_server_access_logging_disabled": Expected(
        GD,
        "S3Bucket",
        "TARGET",
        "AWS_API_CALL",
        "AssumedRole",
        ("198.51.100.77",),
        "bucket-exposed-or-attacked",
        "enforce",
    ),
    "guardduty_member_s3_malicious_ip_caller": Expected(
        GD, "S3Bucket", "TARGET", "AWS_API_CALL", "IAMUser", ("193.32.162.96",), "bucket-exposed-or-attacked", "enforce"
    ),
    "guardduty_s3_malicious_file": Expected(
        GD, "S3Object", "TARGET", None, None, (), "bucket-malicious-object", "enforce"
    ),
    "guardduty_sample_rdp_brute_force": Expected(
        GD, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("185.220.101.47",), "instance-brute-forced", "dry-run"
    ),
    "guardduty_ssh_brute_force": Expected(
        GD, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("45.155.205.233",), "instance-brute-forced", "enforce"
    ),
    "guardduty_ssh_brute_force_approval_required": Expected(
        GD, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("103.151.103.15",), "instance-brute-forced", "approval"
    ),
    "guardduty_ssh_brute_force_redelivered": Expected(
        GD, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("45.155.205.233",), "instance-brute-forced", "enforce"
    ),
    "securityhub_custom_action": Expected(
        SH, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("185.220.101.47",), "instance-brute-forced", "enforce"
    ),
    "securityhub_guardduty_copy": Expected(
        SH, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("45.155.205.233",), "instance-brute-forced", "enforce"
    ),
    "securityhub_inspector_high": Expected(SH, "Instance", None, None, None, (), "posture-finding", "enforce"),
    "securityhub_port_probe_custom_action": Expected(
        SH,
        "Instance",
        "TARGET",
        "PORT_PROBE",
        None,
        ("162.142.125.221", "2602:80d:1006::76"),
        "instance-port-probed",
        "enforce",
    ),
    "securityhub_untrusted_product_brute_force": Expected(
        SH, "Instance", "TARGET", "NETWORK_CONNECTION", None, ("92.118.39.12",), "instance-brute-forced", "approval"
    ),
}
# contain-task: Runtime Monitoring on an ECS task and on an EKS pod's node; an audit-log finding stays notify-only.
ROUTED |= {"task-compromised": "contain-task", "kubernetes-node-compromised": "contain-instance"}
FIXTURES |= {
    "guardduty_runtime_ecs_c2_fargate": Expected(
        GD, "ECSCluster", "ACTOR", "NETWORK_CONNECTION", None, ("193.233.20.15",), "task-compromised", "enforce"
    ),
    "guardduty_runtime_eks_node_crypto": Expected(
        GD, "EKSCluster", "ACTOR", "DNS_REQUEST", None, (), "kubernetes-node-compromised", "enforce"
    ),
    "securityhub_guardduty_ecs_runtime_copy": Expected(
        SH, "ECSCluster", "ACTOR", "NETWORK_CONNECTION", None, ("193.233.20.15",), "task-compromised", "enforce"
    ),
    "guardduty_eks_anomalous_privileged_container": Expected(
        GD, "EKSCluster", "TARGET", "KUBERNETES_API_CALL", None, ("10.0.1.40",), "everything-else", "enforce"
    ),
}
REJECTED = {"guardduty_malformed": r"detail\.id"}


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def triage(name: str, context: LambdaContext) -> dict[str, Any]:
    event = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    result: dict[str, Any] = lambda_handler({"input": event["detail"], "executionId": "test"}, context)
    return json.loads(json.dumps(result))  # type: ignore[no-any-return]


def deployed(playbook: str) -> str:
    """Routed playbooks this stack does not run yet are escalated as notify-only."""
    return playbook if playbook in DEPLOYED_PLAYBOOKS else "notify-only"


def test_every_sample_event_has_an_expectation() -> None:
    # GIVEN the events folder  THEN every file is covered below, and there are at least 25 across both sources
    names = {path.stem for path in EVENTS.glob("*.json")}
    assert names == set(FIXTURES) | set(REJECTED)
    assert len(names) >= 25
    assert {e.source for e in FIXTURES.values()} == {GD, SH}


def test_the_fixtures_cover_every_action_and_resource_type() -> None:
    # GIVEN the expectations  THEN every action type and resource type of the issue appears
    actions = {e.action_type for e in FIXTURES.values()}
    assert actions >= {"NETWORK_CONNECTION", "PORT_PROBE", "AWS_API_CALL", "DNS_REQUEST", "KUBERNETES_API_CALL"}
    assert actions >= {"RDS_LOGIN_ATTEMPT", None}
    resources = {e.resource_type for e in FIXTURES.values()}
    assert resources >= {"Instance", "AccessKey", "S3Bucket", "EKSCluster", "AttackSequence", "Lambda", "RDSDBInstance"}
    assert {e.resource_role for e in FIXTURES.values()} >= {"ACTOR", "TARGET"}
    assert {e.principal_type for e in FIXTURES.values()} >= {"IAMUser", "AssumedRole", "Root"}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_sample_event_is_normalised_routed_and_given_its_mode(name: str, lambda_context: LambdaContext) -> None:
    expected = FIXTURES[name]
    # GIVEN a sample event and a stack in its default modes
    # WHEN Parse Finding triages it
    result = triage(name, lambda_context)
    incident = result["incident"]

    # THEN the incident has the source, resource, role, action, principal and addresses of the finding
    got = (incident["source"], incident["resource_type"], incident["resource_role"], incident["action_type"])
    assert got == (expected.source, expected.resource_type, expected.resource_role, expected.action_type)
    assert incident["principal_type"] == expected.principal_type
    assert tuple(incident["remote_ips"]) == expected.remote_ips
    # AND the routing rule, the playbook it runs (or its escalation) and the mode are the expected ones
    rule = route(Incident.from_dict(incident))
    assert (rule.name, rule.playbook.value) == (expected.rule, ROUTED[expected.rule])
    assert (result["playbook"], result["mode"]) == (deployed(ROUTED[expected.rule]), expected.mode)
    assert (result["approval"] is not None) == (expected.mode == "approval")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_in_an_approval_stack_every_acting_playbook_waits_and_samples_still_only_plan(
    name: str, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stack set to approval
    monkeypatch.setenv("RESPONSE_MODE", "approval")
    # WHEN the sample event is triaged
    result = triage(name, lambda_context)
    # THEN samples plan, notify-only notifies at once, and everything that would act waits for a person
    if result["incident"]["sample"]:
        assert result["mode"] == "dry-run"
    elif result["playbook"] == "notify-only":
        assert (result["mode"], result["approval"]) == ("enforce", None)
    else:
        assert result["mode"] == "approval"
        assert result["approval"]["reason"].startswith(f"{result['playbook']} runs in approval mode")


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_malformed_sample_event_is_rejected_naming_the_field(name: str, lambda_context: LambdaContext) -> None:
    with pytest.raises(FindingRejected, match=REJECTED[name]):
        triage(name, lambda_context)
