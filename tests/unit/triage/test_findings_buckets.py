"""Triage for protect-bucket: the bucket, its tags and the scanned object from either source; mode, budget, plan."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import (
    MAX_BUCKETS_NAMED,
    MAX_BUCKETS_PER_INCIDENT,
    ActionType,
    Incident,
    Mode,
    Outcome,
    Playbook,
)
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


# --- findings about several buckets ---------------------------------------------------------------------------------

TWO_BUCKETS = "eventbridge/guardduty_s3_anomalous_exfiltration_two_buckets"


def test_a_guardduty_finding_about_two_buckets_names_both_each_with_its_own_tags() -> None:
    # GIVEN GuardDuty's finding about a caller reading from two buckets
    # WHEN it is normalised
    incident = normalise(load_event(TWO_BUCKETS))

    # THEN both buckets are named in the finding's order, the first also as bucket_name, each with its own tags
    assert incident.bucket_names == ("acme-finance-archive", "acme-hr-records")
    assert incident.bucket_name == "acme-finance-archive"
    assert [dict(b.tags) for b in incident.buckets] == [
        {"DataClass": "confidential"},
        {"DataClass": "restricted", "Team": "people"},
    ]


def test_the_buckets_survive_the_incidents_round_trip_between_states() -> None:
    # GIVEN the two-bucket incident
    incident = normalise(load_event(TWO_BUCKETS))

    # WHEN it is passed on as JSON and read back
    again = Incident.from_dict(json.loads(json.dumps(incident.to_dict())))

    # THEN it is the same incident, buckets and their tags included
    assert again == incident


def test_an_incident_recorded_before_the_buckets_field_still_names_its_bucket() -> None:
    # GIVEN an incident as recorded before every bucket was kept: bucket_name only
    data = normalise(load_event(TWO_BUCKETS)).to_dict()
    del data["buckets"]

    # WHEN it is read back
    # THEN its one bucket is what protect-bucket answers
    assert Incident.from_dict(data).bucket_names == ("acme-finance-archive",)


def test_the_security_hub_copy_with_two_bucket_resources_names_both() -> None:
    # GIVEN Security Hub's copy of a finding about two buckets: one AwsS3Bucket resource each, and the caller's key
    first = {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-finance-archive", "Tags": {"DataClass": "confidential"}}
    second = {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-hr-records", "Tags": {"Team": "people"}}
    key = {
        "Type": "AwsIamAccessKey",
        "Id": "AWS::IAM::AccessKey:AKIAZ4FQH7XKN2LD3VD2",
        "Details": {"AwsIamAccessKey": {"PrincipalName": "ledger-export", "PrincipalType": "IAMUser"}},
    }

    # WHEN it is normalised
    incident = normalise(asff_copy([first, second, key], "TTPs/Exfiltration:S3-AnomalousBehavior"))

    # THEN both buckets are named, with their own tags, and the caller is read as before
    assert incident.bucket_names == ("acme-finance-archive", "acme-hr-records")
    assert [dict(b.tags) for b in incident.buckets] == [{"DataClass": "confidential"}, {"Team": "people"}]
    assert (incident.principal_type, incident.access_key_id) == ("IAMUser", "AKIAZ4FQH7XKN2LD3VD2")


def test_a_bucket_listed_twice_is_one_bucket_keeping_the_scanned_object() -> None:
    # GIVEN a Security Hub copy naming a bucket and then an object in that same bucket
    bucket = {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-customer-uploads", "Tags": {"DataClass": "customer"}}
    scanned = {"Type": "AwsS3Object", "Id": "arn:aws:s3:::acme-customer-uploads/inbox/invoice.exe"}

    # WHEN it is normalised
    incident = normalise(asff_copy([bucket, scanned], "TTPs/Execution/Object:S3-MaliciousFile"))

    # THEN the bucket is answered once, for its object too
    assert [(b.name, b.object_key, dict(b.tags)) for b in incident.buckets] == [
        ("acme-customer-uploads", "inbox/invoice.exe", {"DataClass": "customer"})
    ]


def tagged(event: dict[str, Any], index: int, key: str, value: str) -> dict[str, Any]:
    event["detail"]["resource"]["s3BucketDetails"][index]["tags"].append({"key": key, "value": value})
    return event


def test_one_exempt_bucket_of_two_does_not_exempt_the_incident() -> None:
    # GIVEN the second of two buckets tagged firebreak:exempt=true in the finding
    event = tagged(load_event(TWO_BUCKETS), 1, "firebreak:exempt", "true")

    # WHEN it is normalised and triaged
    incident = normalise(event)
    result = triage(incident, Settings.from_env())

    # THEN the incident is not suppressed (the other bucket is still answered), and the bucket keeps its own tag
    assert incident.tag("firebreak:exempt") is None
    assert result.suppressed_reason is None
    assert incident.buckets[1].tag("firebreak:exempt") == "true"


def test_every_bucket_exempt_exempts_the_incident() -> None:
    # GIVEN both buckets tagged firebreak:exempt=true
    event = tagged(tagged(load_event(TWO_BUCKETS), 0, "firebreak:exempt", "true"), 1, "firebreak:exempt", "TRUE")

    # WHEN it is triaged
    result = triage(normalise(event), Settings.from_env())

    # THEN nothing of the incident is touched
    assert result.suppressed_reason == "resource tagged firebreak:exempt=true"


def test_one_bucket_wanting_approval_makes_the_incident_wait_for_a_person(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a stack that enforces, and the second bucket tagged firebreak:approval=required in the finding
    monkeypatch.setenv("RESPONSE_MODE", "enforce")
    event = tagged(load_event(TWO_BUCKETS), 1, "firebreak:approval", "required")

    # WHEN it is triaged
    result = triage(normalise(event), Settings.from_env())

    # THEN a person is asked before any bucket is changed
    assert result.mode is Mode.APPROVAL


def test_a_finding_naming_thousands_of_buckets_keeps_only_the_first_hundred() -> None:
    # GIVEN a (crafted) finding listing far more buckets than a real one could
    event = load_event(TWO_BUCKETS)
    details = event["detail"]["resource"]["s3BucketDetails"]
    details[:] = [{"name": f"bucket-{i:04d}", "tags": []} for i in range(2000)]

    # WHEN it is normalised
    incident = normalise(event)

    # THEN the first MAX_BUCKETS_NAMED are kept, in order, and no more
    assert incident.bucket_names == tuple(f"bucket-{i:04d}" for i in range(MAX_BUCKETS_NAMED))


def test_approvers_are_told_every_bucket_and_which_stay_as_they_are_over_the_cap() -> None:
    # GIVEN a finding about more buckets than one incident protects
    event = load_event(TWO_BUCKETS)
    template = event["detail"]["resource"]["s3BucketDetails"][0]
    names = [f"acme-data-{i:02d}" for i in range(MAX_BUCKETS_PER_INCIDENT + 2)]
    event["detail"]["resource"]["s3BucketDetails"] = [{**template, "name": name} for name in names]

    # WHEN the approval request is drawn up
    planned = planned_actions(Playbook.PROTECT_BUCKET, normalise(event), Outcome.AWAITING_APPROVAL)

    # THEN each bucket up to the cap will be protected, and the rest are named as not protected, with the reason
    buckets = [(a.target, a.outcome) for a in planned if a.type is ActionType.PROTECT_BUCKET]
    assert buckets == [(name, Outcome.AWAITING_APPROVAL) for name in names[:MAX_BUCKETS_PER_INCIDENT]] + [
        (name, Outcome.SKIPPED) for name in names[MAX_BUCKETS_PER_INCIDENT:]
    ]
    skipped = [a.reason for a in planned if a.outcome is Outcome.SKIPPED]
    assert all(f"first {MAX_BUCKETS_PER_INCIDENT} buckets" in reason for reason in skipped)


def test_each_bucket_protect_bucket_will_change_takes_a_unit_of_the_workload_budget() -> None:
    # GIVEN a finding about two buckets, and one about more buckets than one incident protects
    settings = Settings.from_env()
    two = triage(normalise(load_event(TWO_BUCKETS)), settings)
    event = load_event(TWO_BUCKETS)
    template = event["detail"]["resource"]["s3BucketDetails"][0]
    event["detail"]["resource"]["s3BucketDetails"] = [{**template, "name": f"acme-data-{i:02d}"} for i in range(40)]
    many = triage(normalise(event), settings)

    # WHEN each is charged to the circuit breaker
    # THEN each bucket it will change counts as a workload, up to the cap
    assert charge(two, settings)[::2] == (WORKLOADS, 2)
    assert charge(many, settings)[::2] == (WORKLOADS, MAX_BUCKETS_PER_INCIDENT)
