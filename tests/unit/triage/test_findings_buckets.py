"""Triage for protect-bucket: the bucket, its tags and the scanned object from either source; mode, budget, plan."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import ActionType, Mode, Outcome, Playbook
from firebreak.core.settings import Settings
from firebreak.triage.approvals import planned_actions
from firebreak.triage.breaker import WORKLOADS
from firebreak.triage.decision import charge, triage
from firebreak.triage.findings import normalise
from tests.support import load_event


def asff_copy(resources: list[dict[str, Any]], finding_type: str) -> dict[str, Any]:
    """The Security Hub copy of a GuardDuty finding, with these resources."""
    event = load_event("eventbridge/securityhub_guardduty_copy")
    finding = event["detail"]["findings"][0]
    finding["Types"] = [finding_type]
    finding["Resources"] = resources
    return event


def test_a_guardduty_s3_finding_names_its_bucket_tags_and_caller() -> None:
    incident = normalise(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted"))
    assert (incident.resource_type, incident.bucket_name, incident.object_key) == (
        "S3Bucket",
        "acme-payroll-reports",
        None,
    )
    assert incident.tag("DataClass") == "restricted"
    assert (incident.principal_type, incident.principal_name) == ("IAMUser", "report-exporter")
    assert incident.remote_ips == ("185.100.87.41",)


def test_a_malware_protection_finding_names_the_object_it_scanned() -> None:
    incident = normalise(load_event("eventbridge/guardduty_s3_malicious_file"))
    assert (incident.resource_type, incident.bucket_name) == ("S3Object", "acme-customer-uploads")
    assert incident.object_key == "inbox/2026/03/invoice-4471.pdf.exe"
    assert (incident.principal_type, incident.remote_ips) == (None, ())


def test_an_instance_finding_names_no_bucket_even_with_sample_placeholders() -> None:
    # Sample findings put placeholder details on every resource type; only the type's own are read.
    event = load_event("eventbridge/guardduty_crypto_mining")
    event["detail"]["resource"]["s3BucketDetails"] = [{"name": "placeholder-bucket"}]
    assert normalise(event).bucket_name is None


@pytest.mark.parametrize("name", ["", "UPPER", "a", "bucket/with/slash", "x" * 64])
def test_a_bucket_name_s3_would_not_accept_is_rejected_naming_the_field(name: str) -> None:
    event = load_event("eventbridge/guardduty_s3_malicious_ip_caller")
    event["detail"]["resource"]["s3BucketDetails"][0]["name"] = name
    with pytest.raises(FindingRejected, match=r"s3BucketDetails\[0\]\.name"):
        normalise(event)


def test_the_security_hub_copy_names_the_bucket_from_its_arn_with_its_tags() -> None:
    bucket = {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-payroll-reports", "Tags": {"DataClass": "restricted"}}
    key = {
        "Type": "AwsIamAccessKey",
        "Id": "AWS::IAM::AccessKey:AKIAZ4FQH7XKN2LD3VC7",
        "Details": {"AwsIamAccessKey": {"PrincipalName": "report-exporter", "PrincipalType": "IAMUser"}},
    }
    incident = normalise(asff_copy([bucket, key], "Effects/Data Exposure/Policy:S3-BucketAnonymousAccessGranted"))
    assert (incident.resource_type, incident.bucket_name, incident.object_key) == (
        "S3Bucket",
        "acme-payroll-reports",
        None,
    )
    assert incident.tag("DataClass") == "restricted"
    assert (incident.principal_type, incident.access_key_id) == ("IAMUser", "AKIAZ4FQH7XKN2LD3VC7")


def test_the_security_hub_copy_of_a_malicious_object_names_bucket_and_key() -> None:
    scanned = {"Type": "AwsS3Object", "Id": "arn:aws:s3:::acme-customer-uploads/inbox/a b/invoice.exe"}
    incident = normalise(asff_copy([copy.deepcopy(scanned)], "TTPs/Execution/Object:S3-MaliciousFile"))
    assert (incident.resource_type, incident.bucket_name) == ("S3Object", "acme-customer-uploads")
    assert incident.object_key == "inbox/a b/invoice.exe"


def test_a_security_hub_s3_resource_whose_id_is_no_s3_arn_is_rejected() -> None:
    event = asff_copy([{"Type": "AwsS3Bucket", "Id": "acme-payroll-reports"}], "Policy:S3-BucketPublicAccessGranted")
    with pytest.raises(FindingRejected, match=r"Resources\[0\]\.Id"):
        normalise(event)


# --- the rest of triage ---------------------------------------------------------------------------------------------


def test_protect_bucket_is_deployed_has_its_own_mode_and_counts_in_the_workload_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN protect-bucket set to approval while the stack enforces
    monkeypatch.setenv("RESPONSE_MODE", "enforce")
    monkeypatch.setenv("PROTECT_BUCKET_MODE", "approval")
    settings = Settings.from_env()
    result = triage(normalise(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted")), settings)

    # THEN it runs (no escalation), waits for approval, and takes one unit of the workload budget
    assert (result.playbook, result.escalation, result.mode) == (Playbook.PROTECT_BUCKET, None, Mode.APPROVAL)
    assert charge(result, settings)[0] is WORKLOADS
    assert charge(result, settings)[2] == 1


def test_approvers_are_told_the_bucket_the_caller_revoked_and_the_addresses_blocked() -> None:
    incident = normalise(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted"))
    planned = planned_actions(Playbook.PROTECT_BUCKET, incident, Outcome.AWAITING_APPROVAL)
    assert [(a.type, a.target) for a in planned] == [
        (ActionType.PROTECT_BUCKET, "acme-payroll-reports"),
        (ActionType.REVOKE_CREDENTIALS, "AKIAZ4FQH7XKN2LD3VC7"),
        (ActionType.BLOCK_IP, "185.100.87.41"),
    ]
    assert "Block Public Access" in planned[0].reason
