"""protect-bucket's domain module on moto: the policy merge, who may be denied, each step's before/after, the gate."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.containment import bucket
from firebreak.containment.bucket import (
    DENY_OBJECT_READS_SID,
    DENY_PRINCIPALS_SID,
    ProtectionStatus,
    admins,
    block_public_access,
    denied_principals,
    deny_in_policy,
    object_arn,
    principal_denial,
    principals_statement,
    protect,
    with_statement,
    without,
)
from firebreak.containment.credentials import RevocationSettings
from firebreak.core import aws
from firebreak.core.models import (
    Action,
    ActionType,
    Bucket,
    Incident,
    IncidentStatus,
    Mode,
    Outcome,
    Playbook,
    PlaybookRequest,
    Source,
    Triage,
)
from firebreak.incident.notifications import summary

BUCKET = "acme-payroll-reports"
ACCOUNT = "123456789012"
SETTINGS = RevocationSettings("firebreak", frozenset({"breakglass"}), False, False)
OWNERS = {"Sid": "Owners", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "x"}


def incident(**fields: Any) -> Incident:
    base: dict[str, Any] = {
        "source": Source.GUARDDUTY,
        "finding_id": "0123456789abcdef0123456789abcdef",
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "finding_type": "Exfiltration:S3/MaliciousIPCaller",
        "severity": 8.0,
        "severity_label": "HIGH",
        "resource_type": "S3Bucket",
        "bucket_name": BUCKET,
        "principal_type": "IAMUser",
        "principal_name": "report-exporter",
    }
    return Incident(**{**base, **fields})


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def iam(aws: None) -> Any:
    client = boto3.client("iam", region_name="us-east-1")
    client.create_user(UserName="report-exporter", Path="/exporters/")
    return client


def add(s3: Any, arn: str, dry_run: bool = False) -> Any:
    build = lambda values: principals_statement("aws", BUCKET, values)  # noqa: E731
    return deny_in_policy(s3, BUCKET, DENY_PRINCIPALS_SID, [arn], build, denied_principals, dry_run)


# --- the policy document ------------------------------------------------------------------------------------------


def test_firebreaks_statement_is_merged_in_place_and_the_owners_statements_are_kept() -> None:
    # GIVEN a policy holding the owners' statement before and after Firebreak's
    mine = principals_statement("aws", BUCKET, ["arn:aws:iam::1:user/a"])
    policy = {"Version": "2012-10-17", "Id": "keep-me", "Statement": [OWNERS, mine, {**OWNERS, "Sid": "Later"}]}

    # WHEN Firebreak's statement is replaced with one naming a second principal
    merged = with_statement(policy, DENY_PRINCIPALS_SID, principals_statement("aws", BUCKET, ["b", "a"]))

    # THEN it stays in its place, sorted, and every other statement and key is as it was
    assert [s["Sid"] for s in merged["Statement"]] == ["Owners", DENY_PRINCIPALS_SID, "Later"]
    assert merged["Statement"][1]["Principal"] == {"AWS": ["a", "b"]}
    assert merged["Id"] == "keep-me"


def test_a_policy_with_a_single_statement_object_is_read_as_a_list() -> None:
    merged = with_statement({"Statement": OWNERS}, DENY_PRINCIPALS_SID, principals_statement("aws", BUCKET, ["a"]))
    assert [s["Sid"] for s in merged["Statement"]] == ["Owners", DENY_PRINCIPALS_SID]


def test_taking_out_the_last_principal_removes_the_statement_and_nothing_else() -> None:
    policy = {"Statement": [OWNERS, principals_statement("aws", BUCKET, ["a", "b"])]}
    assert denied_principals(without(policy, DENY_PRINCIPALS_SID, ["a"])) == ["b"]
    assert without(policy, DENY_PRINCIPALS_SID, ["a", "b"])["Statement"] == [OWNERS]


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("inbox/a.exe", "arn:aws:s3:::b/inbox/a.exe"),
        ("inbox/*", "arn:aws:s3:::b/inbox/${*}"),
        ("what?.exe", "arn:aws:s3:::b/what${?}.exe"),
        ("$HOME/x", "arn:aws:s3:::b/${$}HOME/x"),
    ],
)
def test_an_object_key_never_becomes_a_wildcard_in_the_policy(key: str, resource: str) -> None:
    # A key with * or ? must deny that one object, not every object it would match as a pattern.
    assert object_arn("aws", "b", key) == resource


def test_the_object_read_deny_keeps_the_root_user_break_glass_and_firebreaks_roles_in() -> None:
    keep = admins("aws", ACCOUNT, SETTINGS, ["BreakGlass"])
    assert f"arn:aws:iam::{ACCOUNT}:root" in keep
    assert f"arn:aws:iam::{ACCOUNT}:role/firebreak-*" in keep
    # AND break-glass names keep the case they were given in: an ARN pattern is matched case-sensitively
    assert f"arn:aws:iam::{ACCOUNT}:role/*/BreakGlass" in keep
    assert f"arn:aws:iam::{ACCOUNT}:user/BreakGlass" in keep


def test_the_break_glass_names_come_from_the_stacks_parameter_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTECTED_PRINCIPALS", " BreakGlass, ops-admin ,")
    assert bucket.break_glass_names() == ("BreakGlass", "ops-admin")


# --- who may be denied ----------------------------------------------------------------------------------------------


def test_a_user_is_denied_by_its_real_arn_path_included(iam: Any) -> None:
    denial = principal_denial(iam, incident(), SETTINGS)
    assert denial.arn == f"arn:aws:iam::{ACCOUNT}:user/exporters/report-exporter"


def test_a_role_is_denied_by_its_session_never_as_a_whole() -> None:
    # GIVEN an assumed role's session, and the same role without a session name
    session = incident(principal_type="AssumedRole", principal_name="etl", principal_id="AROAEXAMPLE:i-0abc")
    whole = incident(principal_type="AssumedRole", principal_name="etl", principal_id="AROAEXAMPLE")
    # THEN the session is denied by its ARN; the whole role would lock its other users out, so it is not
    assert principal_denial(None, session, SETTINGS).arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/etl/i-0abc"
    refused = principal_denial(None, whole, SETTINGS)
    assert refused.arn is None
    assert "lock every user" in refused.reason


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"principal_type": "Root", "principal_name": "root"}, "no IAM user or role session"),
        ({"principal_type": "AWSService", "principal_name": "s3.amazonaws.com"}, "no IAM user or role session"),
        ({"principal_name": "BreakGlass"}, "break-glass"),
        ({"principal_type": "AssumedRole", "principal_name": "firebreak-ProtectBucketFunctionRole-1"}, "Firebreak"),
        ({"principal_type": "AssumedRole", "principal_name": "firebreak-member-protect-bucket"}, "member role"),
    ],
)
def test_root_services_break_glass_and_firebreaks_own_roles_are_never_denied(fields: dict[str, Any], why: str) -> None:
    denial = principal_denial(None, incident(**fields), SETTINGS)
    assert denial.arn is None
    assert why in denial.reason


def test_a_user_gone_since_is_not_denied(aws: None) -> None:
    denial = principal_denial(boto3.client("iam", region_name="us-east-1"), incident(), SETTINGS)
    assert (denial.arn, denial.reason) == (None, "user report-exporter no longer exists: nobody left to deny")


# --- the steps -----------------------------------------------------------------------------------------------------


def test_block_public_access_records_the_earlier_settings_and_is_idempotent(s3: Any) -> None:
    # GIVEN a bucket that blocked public ACLs only
    half = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=half)

    # WHEN Block Public Access is turned on, twice
    first = block_public_access(s3, BUCKET, dry_run=False)
    second = block_public_access(s3, BUCKET, dry_run=False)

    # THEN the first records the earlier settings and applies; the second changes nothing
    assert (first.outcome, first.before["public_access_block"]) == (Outcome.APPLIED, half)
    assert second.outcome is Outcome.ALREADY_APPLIED
    config = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(config.values())


def test_a_concurrent_writer_is_merged_again_not_overwritten(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN another writer puts the owners' policy right after Firebreak's first write
    real = s3.put_bucket_policy
    writes: list[str] = []

    def racing(**kwargs: Any) -> Any:
        result = real(**kwargs)
        writes.append(kwargs["Policy"])
        if len(writes) == 1:
            real(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [OWNERS]}))
        return result

    monkeypatch.setattr(s3, "put_bucket_policy", racing)

    # WHEN Firebreak adds its statement
    action = add(s3, "arn:aws:iam::1:user/a")

    # THEN it re-read and merged: both the owners' statement and Firebreak's are in the policy
    assert action.outcome is Outcome.APPLIED
    assert len(writes) == 2
    document = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert [s["Sid"] for s in document["Statement"]] == ["Owners", DENY_PRINCIPALS_SID]


def test_dry_run_plans_the_policy_write_and_writes_nothing(s3: Any) -> None:
    action = add(s3, "arn:aws:iam::1:user/a", dry_run=True)
    assert action.outcome is Outcome.PLANNED
    assert "s3:PutBucketPolicy(Bucket=acme-payroll-reports" in action.reason
    assert action.after["principals"] == ["arn:aws:iam::1:user/a"]
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=BUCKET)


def test_a_missing_bucket_is_not_found_and_the_credentials_are_still_revoked(aws: None) -> None:
    request = PlaybookRequest("fb-1", incident(bucket_name="gone-bucket-123"), Mode.ENFORCE)
    protection = protect(request, SETTINGS)
    assert protection.status is ProtectionStatus.NOT_FOUND
    assert protection.revoke is True
    assert protection.actions[0].reason == "bucket gone-bucket-123 does not exist: nothing to protect"


def test_firebreaks_own_bucket_is_never_touched(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the bucket carries CloudFormation's tag naming the Firebreak stack (only CloudFormation can set it)
    stack_tags = {"TagSet": [{"Key": "aws:cloudformation:stack-name", "Value": "firebreak"}]}
    monkeypatch.setattr(aws.client("s3", region="us-east-1"), "get_bucket_tagging", lambda **kwargs: stack_tags)

    # WHEN it is protected THEN nothing of the incident is touched
    protection = protect(PlaybookRequest("fb-1", incident(), Mode.ENFORCE), SETTINGS)
    assert protection.status is ProtectionStatus.EXEMPT
    assert (protection.revoke, protection.block_addresses) == (False, ())
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket=BUCKET)


def test_logging_is_left_off_with_the_reason_when_the_accounts_log_bucket_is_missing(s3: Any) -> None:
    request = PlaybookRequest(
        "fb-1", incident(finding_type="Stealth:S3/ServerAccessLoggingDisabled", principal_type=None), Mode.ENFORCE
    )
    protection = protect(request, SETTINGS)
    [logging] = [a for a in protection.actions if "log bucket" in a.reason]
    assert logging.outcome is Outcome.SKIPPED
    assert "firebreak-access-logs-123456789012-us-east-1" in logging.reason
    assert DENY_OBJECT_READS_SID not in json.dumps([a.to_dict() for a in protection.actions])
    assert bucket.read_logging(s3, BUCKET) is None


def test_the_responders_summary_names_the_bucket_the_object_and_how_to_undo_each_step_by_hand() -> None:
    # GIVEN a malicious-object incident whose Block Public Access and object-read deny were applied
    found = incident(object_key="inbox/a.exe", principal_type=None, principal_name=None)
    triage = Triage("fb-1", found, Playbook.PROTECT_BUCKET, Mode.ENFORCE)
    steps = [
        block_public_access_action(),
        Action(
            ActionType.PROTECT_BUCKET,
            BUCKET,
            Outcome.APPLIED,
            "denied",
            {"bucket": BUCKET, "policy_statement": DENY_OBJECT_READS_SID, "objects": []},
            {"bucket": BUCKET, "policy_statement": DENY_OBJECT_READS_SID, "objects": ["arn:aws:s3:::b/inbox/a.exe"]},
        ),
    ]

    # WHEN the email text is written
    text = summary(IncidentStatus.CONTAINED, triage, steps, "arn:aws:states:us-east-1:1:execution:x:y")

    # THEN it names the bucket and the object kept as evidence, and the by-hand undo of both steps
    assert f"Bucket:    {BUCKET}" in text
    assert "Object:    inbox/a.exe (kept as evidence; reads denied)" in text
    assert f"aws s3api delete-public-access-block --bucket {BUCKET}" in text
    assert f"take arn:aws:s3:::b/inbox/a.exe out of statement {DENY_OBJECT_READS_SID}" in text


def block_public_access_action() -> Action:
    before = {"bucket": BUCKET, "public_access_block": None}
    return Action(
        ActionType.PROTECT_BUCKET, BUCKET, Outcome.APPLIED, "on", before, {**before, "public_access_block": {}}
    )


@pytest.mark.parametrize("role", ["firebreak-ReleaseIncidentFunctionRole-1A2B", "firebreak-member-release-incident"])
def test_a_change_by_firebreaks_own_role_is_not_protected_again(s3: Any, role: str) -> None:
    # GIVEN the finding reports Block Public Access turned off by Firebreak's release (its own role)
    found = incident(
        finding_type="Policy:S3/BucketBlockPublicAccessDisabled",
        principal_type="AssumedRole",
        principal_name=role,
        principal_id="AROAEXAMPLE:fb-1",
    )
    # WHEN the bucket is protected THEN nothing is done again, so the release a person asked for stands
    protection = protect(PlaybookRequest("fb-2", found, Mode.ENFORCE), SETTINGS)
    assert protection.status is ProtectionStatus.EXEMPT
    assert protection.suppressed_reason == "change made by Firebreak's own role"
    assert (protection.revoke, protection.block_addresses) == (False, ())
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket=BUCKET)


def test_without_the_stack_name_only_the_member_roles_count_as_firebreaks() -> None:
    unnamed = RevocationSettings("", frozenset(), False, False)
    assert bucket._firebreaks_role("firebreak-member-protect-bucket", unnamed)
    assert not bucket._firebreaks_role("batch-etl", unnamed)


def throttled(**kwargs: Any) -> Any:
    raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutBucketPolicy")


def test_throttling_before_any_change_propagates_for_the_state_machines_retry(
    s3: Any, iam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Block Public Access already on, and S3 throttling the policy write
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=dict.fromkeys(bucket.ALL_BLOCKED, True))
    monkeypatch.setattr(aws.client("s3", region="us-east-1"), "put_bucket_policy", throttled)
    # WHEN / THEN nothing changed yet, so a retry of the whole step is safe: it propagates
    with pytest.raises(ClientError):
        protect(PlaybookRequest("fb-1", incident(), Mode.ENFORCE), SETTINGS)


def test_throttling_after_a_change_is_a_failed_action_so_the_change_stays_on_the_record(
    s3: Any, iam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Block Public Access is turned on by this run, then S3 throttles the policy write
    monkeypatch.setattr(aws.client("s3", region="us-east-1"), "put_bucket_policy", throttled)
    # WHEN the bucket is protected
    protection = protect(PlaybookRequest("fb-1", incident(), Mode.ENFORCE), SETTINGS)
    # THEN the change is recorded applied (with its before-state) and the throttled write failed, not retried
    assert [a.outcome for a in protection.actions] == [Outcome.APPLIED, Outcome.FAILED]
    assert protection.actions[0].before["public_access_block"] is None
    assert protection.actions[1].reason.startswith("SlowDown")
    assert protection.status is ProtectionStatus.FAILED


# --- several buckets ------------------------------------------------------------------------------------------------

OTHER = "acme-hr-records"


def two_buckets(**fields: Any) -> Incident:
    return incident(buckets=(Bucket(BUCKET), Bucket(OTHER)), **fields)


def test_throttling_on_the_second_bucket_after_the_first_changed_is_a_failed_action_not_a_retry(
    s3: Any, iam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two buckets, the first changed by this run, and S3 throttling every read of the second's tags
    s3.create_bucket(Bucket=OTHER)
    client = aws.client("s3", region="us-east-1")
    original = client.get_bucket_tagging

    def throttling_other(**kwargs: Any) -> Any:
        if kwargs["Bucket"] == OTHER:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce"}}, "GetBucketTagging")
        return original(**kwargs)

    monkeypatch.setattr(client, "get_bucket_tagging", throttling_other)

    # WHEN the buckets are protected
    protection = protect(PlaybookRequest("fb-1", two_buckets(), Mode.ENFORCE), SETTINGS)

    # THEN the first bucket's changes stay on the record and the second is failed, rather than the whole step retried
    # (a retry would record the first bucket's changed state as its before-state)
    first = [a for a in protection.actions if a.target == BUCKET]
    assert [a.outcome for a in first] == [Outcome.APPLIED, Outcome.APPLIED]
    [other] = [a for a in protection.actions if a.target == OTHER]
    assert (other.outcome, other.reason.split(":")[0]) == (Outcome.FAILED, "bucket not protected")
    assert protection.status is ProtectionStatus.FAILED


def test_the_callers_arn_is_looked_up_once_for_every_bucket(s3: Any, iam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two buckets and a count of IAM look-ups of the caller
    s3.create_bucket(Bucket=OTHER)
    client = aws.client("iam", region="us-east-1")
    original, calls = client.get_user, []
    monkeypatch.setattr(client, "get_user", lambda **kwargs: calls.append(kwargs) or original(**kwargs))

    # WHEN the buckets are protected
    protection = protect(PlaybookRequest("fb-1", two_buckets(), Mode.ENFORCE), SETTINGS)

    # THEN the caller is denied on both by its real ARN, looked up once
    denied = [a.after["principals"] for a in protection.actions if "principals" in a.after]
    assert denied == [["arn:aws:iam::123456789012:user/exporters/report-exporter"]] * 2
    assert len(calls) == 1


def test_a_missing_and_an_exempt_bucket_stop_the_incident_without_suppressing_it(s3: Any) -> None:
    # GIVEN the first bucket tagged exempt and the second gone
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "firebreak:exempt", "Value": "true"}]})

    # WHEN the buckets are protected
    protection = protect(PlaybookRequest("fb-1", two_buckets(), Mode.ENFORCE), SETTINGS)

    # THEN no bucket may be changed, so nothing of the incident is touched; but only one bucket was exempted by its
    # owner, so the incident is not SUPPRESSED as if every one were
    assert protection.status is ProtectionStatus.EXEMPT
    assert (protection.revoke, protection.block_addresses, protection.suppressed_reason) == (False, (), None)
    assert [a.outcome for a in protection.actions] == [Outcome.SKIPPED, Outcome.SKIPPED]


def test_the_responders_summary_names_every_bucket_of_the_finding() -> None:
    # GIVEN an incident about two buckets
    triage = Triage("fb-1", two_buckets(), Playbook.PROTECT_BUCKET, Mode.ENFORCE)

    # WHEN the email text is written
    text = summary(IncidentStatus.CONTAINED, triage, [], "arn:aws:states:us-east-1:1:execution:x:y")

    # THEN both buckets are named, not only the first
    assert f"Buckets:   {BUCKET}, {OTHER}" in text
