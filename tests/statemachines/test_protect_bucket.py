"""The real protect-bucket playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firebreak.core import aws
from firebreak.core.models import MAX_BUCKETS_PER_INCIDENT
from firebreak_local.engine import Approvals, Engine, Execution
from tests.support import TEMPLATE, incident_record, load_event, out_of_memory, report_of, start

PUBLIC = "guardduty_s3_bucket_anonymous_access_granted"
EXFILTRATION = "guardduty_s3_malicious_ip_caller"
LOGGING = "guardduty_s3_server_access_logging_disabled"
MALWARE = "guardduty_s3_malicious_file"
PUBLIC_BUCKET = "acme-payroll-reports"
USER_ARN = "arn:aws:iam::123456789012:user/report-exporter"
SID = "FirebreakDenyIncidentPrincipals"
OBJECT_SID = "FirebreakDenyMaliciousObjectReads"
PROTECT_FUNCTION = "firebreak-ProtectBucketFunction"
REVOKE_FUNCTION = "firebreak-RevokeCredentialsFunction"
BLOCK_FUNCTION = "firebreak-BlockIpFunction"
# A statement the bucket's owners wrote, which Firebreak must keep exactly as it is.
OWNERS_STATEMENT = {
    "Sid": "AllowPayrollApp",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{PUBLIC_BUCKET}/*",
}
PLAYBOOK_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    "Run Protect Bucket Playbook",
    "Protect Bucket",
    "Is Bucket Protectable?",
    "Any Principal To Revoke?",
    "Revoke Credentials",
    "Any Addresses To Block?",
    "Enrich Addresses",
    "Block Addresses",
    "Protection Complete",
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
    "Response Complete",
]


def run(engine: Engine, name: str, event: dict[str, Any] | None = None) -> Execution:
    return start(engine, event or load_event(f"eventbridge/{name}"))


def actions(execution: Execution, action_type: str = "protect_bucket") -> list[dict[str, Any]]:
    return [action for action in report_of(execution)["actions"] if action["type"] == action_type]


def policy(engine: Engine, bucket: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(engine.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    return document


def statement(engine: Engine, bucket: str, sid: str) -> dict[str, Any] | None:
    return next((s for s in policy(engine, bucket)["Statement"] if s.get("Sid") == sid), None)


def seed_with_owners_policy(engine: Engine, name: str = PUBLIC) -> dict[str, Any]:
    """The finding's bucket seeded, with a policy statement of its owners' own."""
    event = load_event(f"eventbridge/{name}")
    engine.world.seed(event)
    document = {"Version": "2012-10-17", "Statement": [OWNERS_STATEMENT]}
    engine.client("s3").put_bucket_policy(Bucket=PUBLIC_BUCKET, Policy=json.dumps(document))
    return event


# --- the whole playbook -----------------------------------------------------------------------------------------


def test_happy_path_blocks_public_access_denies_the_caller_revokes_its_key_and_blocks_its_address(
    engine: Engine,
) -> None:
    # GIVEN a bucket made public by an IAM user from the internet, whose policy holds its owners' statement
    event = seed_with_owners_policy(engine)

    # WHEN the finding runs through the stack
    execution = run(engine, PUBLIC, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == PLAYBOOK_STATES
    outcome = report_of(execution)
    assert (outcome["status"], outcome["playbook"]) == ("CONTAINED", "protect-bucket")

    # AND Block Public Access is on, with the bucket's earlier (absent) settings on the record
    world = engine.world.report()["buckets"][PUBLIC_BUCKET]
    assert world["public_access_blocked"] is True
    [blocked, denied] = actions(execution)
    assert (blocked["outcome"], blocked["before"]["public_access_block"]) == ("applied", None)

    # AND one Firebreak statement denies the user by ARN; the owners' statement is kept exactly as it was
    assert world["denied_principals"] == [USER_ARN]
    assert policy(engine, PUBLIC_BUCKET)["Statement"][0] == OWNERS_STATEMENT
    assert statement(engine, PUBLIC_BUCKET, SID) == {
        "Sid": SID,
        "Effect": "Deny",
        "Principal": {"AWS": [USER_ARN]},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{PUBLIC_BUCKET}", f"arn:aws:s3:::{PUBLIC_BUCKET}/*"],
    }
    assert (denied["before"]["principals"], denied["after"]["principals"]) == ([], [USER_ARN])

    # AND the user's key is deactivated as revoke-credentials does, and the caller's address is blocked
    assert {a["outcome"] for a in actions(execution, "revoke_credentials")} == {"applied"}
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VC7"] == "Inactive"
    assert engine.blocked_ips() == ["185.100.87.41/32"]
    assert incident_record(engine, outcome["incident_id"])["status"] == "CONTAINED"
    # AND the responders are told the bucket and what was done to it
    told = json.loads(engine.notifications()[-1]["message"])
    assert told["finding"]["bucket_name"] == PUBLIC_BUCKET
    assert "Block Public Access turned on (it had none of its own)" in [a["reason"] for a in told["actions"]]


def test_second_finding_on_a_protected_bucket_changes_nothing_and_says_already_applied(engine: Engine) -> None:
    # GIVEN a bucket protected for one finding
    event = seed_with_owners_policy(engine)
    run(engine, PUBLIC, event)
    before = policy(engine, PUBLIC_BUCKET)

    # WHEN the same caller is found again on it
    again = load_event(f"eventbridge/{PUBLIC}")
    again["detail"]["id"] = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    execution = run(engine, PUBLIC, again)

    # THEN every bucket step is already applied and the policy is unchanged
    assert [a["outcome"] for a in actions(execution)] == ["already_applied", "already_applied"]
    assert policy(engine, PUBLIC_BUCKET) == before
    assert report_of(execution)["status"] == "CONTAINED"


def test_malicious_object_reads_are_denied_to_all_but_the_admins_and_the_object_stays(engine: Engine) -> None:
    # GIVEN Malware Protection for S3 found a malicious object
    execution = run(engine, MALWARE)

    # THEN reads of that key are denied to everyone but the root user, break-glass and Firebreak's own roles
    bucket = "acme-customer-uploads"
    key = "inbox/2026/03/invoice-4471.pdf.exe"
    found = statement(engine, bucket, OBJECT_SID)
    assert found is not None
    assert found["Principal"] == "*"
    assert found["Action"] == "s3:GetObject*"
    assert found["Resource"] == [f"arn:aws:s3:::{bucket}/{key}"]
    assert "arn:aws:iam::123456789012:root" in found["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    # AND the object is still there, as evidence, and the incident is CONTAINED
    assert engine.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert report_of(execution)["status"] == "CONTAINED"
    assert engine.world.report()["buckets"][bucket]["denied_object_reads"] == [f"arn:aws:s3:::{bucket}/{key}"]


def test_logging_turned_off_is_turned_on_again_into_the_accounts_log_bucket() -> None:
    # GIVEN a stack that answers the (Low) logging finding, and a bucket whose logging a role session turned off
    with Engine(TEMPLATE, {"AlwaysRespondTypes": "Stealth:S3/ServerAccessLoggingDisabled"}) as engine:
        # WHEN the finding runs
        execution = run(engine, LOGGING)

        # THEN logging is on again into the account and Region's log bucket, under the bucket's name
        bucket = "acme-audit-evidence"
        target = "firebreak-access-logs-123456789012-us-east-1"
        logging = engine.client("s3").get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
        assert (logging["TargetBucket"], logging["TargetPrefix"]) == (target, f"{bucket}/")
        restored = [a for a in actions(execution) if "logging" in a["before"]]
        assert [(a["outcome"], a["before"]["logging"]) for a in restored] == [("applied", None)]
        # AND the role session (not the whole role) is denied, and the role's older sessions are revoked
        session = "arn:aws:sts::123456789012:assumed-role/batch-etl/i-0a1b2c3d4e5f60011"
        assert engine.world.report()["buckets"][bucket]["denied_principals"] == [session]
        assert engine.world.report()["revoked_roles"] == ["batch-etl"]
        assert report_of(execution)["status"] == "CONTAINED"


# --- failures, modes and guards ---------------------------------------------------------------------------------


def refuse(operation: str) -> Any:
    def refused(**kwargs: Any) -> Any:
        error = {"Error": {"Code": "AccessDenied", "Message": f"not authorized to perform: s3:{operation}"}}
        raise ClientError(error, operation)  # type: ignore[arg-type]

    return refused


def test_a_refused_policy_write_makes_the_incident_partially_contained(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 refuses the bucket-policy write (forced: an SCP denies it)
    monkeypatch.setattr(aws.client("s3", region="us-east-1"), "put_bucket_policy", refuse("PutBucketPolicy"))

    # WHEN the public-bucket finding runs
    execution = run(engine, PUBLIC)

    # THEN the refusal is a failed action naming S3's answer, the other steps still ran, and the status is truthful
    failed = [a["reason"] for a in actions(execution) if a["outcome"] == "failed"]
    assert failed == [f"writing statement {SID} failed: AccessDenied: not authorized to perform: s3:PutBucketPolicy"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is True
    assert engine.blocked_ips() == ["185.100.87.41/32"]


def test_a_refused_block_public_access_is_failed_and_never_contained(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 refuses Block Public Access
    monkeypatch.setattr(
        aws.client("s3", region="us-east-1"), "put_public_access_block", refuse("PutBucketPublicAccessBlock")
    )

    # WHEN the public-bucket finding runs
    execution = run(engine, PUBLIC)

    # THEN it is failed, the bucket stays public, and the incident is never CONTAINED
    assert [a["outcome"] for a in actions(execution)] == ["failed", "applied"]
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is False
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_the_protect_step_crashing_is_failed_and_the_credentials_are_still_revoked(engine: Engine) -> None:
    # GIVEN the protect function crashes (forced: a rare runtime error)
    engine.dispatcher.override(PROTECT_FUNCTION, out_of_memory)

    # WHEN the public-bucket finding runs
    execution = run(engine, PUBLIC)

    # THEN the bucket step is failed, the key is still revoked and the address blocked: partially contained
    [failed] = actions(execution)
    assert (failed["target"], failed["outcome"]) == (PUBLIC_BUCKET, "failed")
    assert failed["reason"] == "step Protect Bucket failed: RuntimeError"
    assert {a["outcome"] for a in actions(execution, "revoke_credentials")} == {"applied"}
    assert engine.blocked_ips() == ["185.100.87.41/32"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_the_revoke_step_crashing_is_failed_and_the_bucket_is_still_protected(engine: Engine) -> None:
    # GIVEN the revoke function crashes
    engine.dispatcher.override(REVOKE_FUNCTION, out_of_memory)

    # WHEN the public-bucket finding runs
    execution = run(engine, PUBLIC)

    # THEN the revocation is failed, the bucket protected, the address blocked: partially contained
    assert [a["outcome"] for a in actions(execution, "revoke_credentials")] == ["failed"]
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["denied_principals"] == [USER_ARN]
    assert engine.blocked_ips() == ["185.100.87.41/32"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_the_block_step_crashing_is_failed_and_the_bucket_and_credentials_are_still_protected(engine: Engine) -> None:
    # GIVEN the block function crashes
    engine.dispatcher.override(BLOCK_FUNCTION, out_of_memory)

    # WHEN the public-bucket finding runs
    execution = run(engine, PUBLIC)

    # THEN the address is reported failed, never dropped, and the incident is partially contained
    [failed] = actions(execution, "block_ip")
    assert (failed["target"], failed["outcome"]) == ("185.100.87.41", "failed")
    assert failed["reason"] == "step Block Addresses failed: RuntimeError"
    assert {a["outcome"] for a in actions(execution)} == {"applied"}
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_a_refused_logging_write_is_failed_and_the_rest_still_protects(monkeypatch: pytest.MonkeyPatch) -> None:
    with Engine(TEMPLATE, {"AlwaysRespondTypes": "Stealth:S3/ServerAccessLoggingDisabled"}) as engine:
        # GIVEN S3 refuses to turn logging on
        monkeypatch.setattr(aws.client("s3", region="us-east-1"), "put_bucket_logging", refuse("PutBucketLogging"))

        # WHEN the logging finding runs
        execution = run(engine, LOGGING)

        # THEN the logging step is failed with S3's answer, the caller's session is still denied and revoked
        outcomes = [(a["outcome"], a["reason"].split(":")[0]) for a in actions(execution)]
        assert outcomes[1] == ("failed", "turning logging on failed")
        assert outcomes[2][0] == "applied"
        assert engine.world.report()["revoked_roles"] == ["batch-etl"]
        assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_dry_run_plans_every_call_and_changes_nothing() -> None:
    # GIVEN a stack in dry-run mode
    with Engine(TEMPLATE, {"ResponseMode": "dry-run"}) as engine:
        event = seed_with_owners_policy(engine)
        before = policy(engine, PUBLIC_BUCKET)

        # WHEN the public-bucket finding runs
        execution = run(engine, PUBLIC, event)

        # THEN every bucket step is planned with its exact call, and the bucket is as it was
        assert report_of(execution)["status"] == "DRY_RUN"
        planned = actions(execution)
        assert [a["outcome"] for a in planned] == ["planned", "planned"]
        reasons = " ".join(a["reason"] for a in planned)
        for call in ("s3:PutPublicAccessBlock(Bucket=acme-payroll-reports", "s3:PutBucketPolicy(Bucket=", USER_ARN):
            assert call in reasons
        assert policy(engine, PUBLIC_BUCKET) == before
        assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is False
        assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VC7"] == "Active"


def test_approval_mode_waits_and_then_protects_once_approved() -> None:
    # GIVEN protect-bucket in approval mode
    with Engine(TEMPLATE, {"ProtectBucketMode": "approval"}) as engine:
        event = load_event(f"eventbridge/{PUBLIC}")
        rule = engine.matching_rule(event)
        assert rule is not None

        # WHEN it runs and nobody answers yet
        waiting = engine.start(rule, event, Approvals.REPORT)

        # THEN it waits with the bucket named in what it will do, and nothing changed
        assert waiting.status == "RUNNING"
        assert isinstance(waiting.output, dict)
        assert waiting.output["status"] == "AWAITING_APPROVAL"
        planned = {a["target"]: a["outcome"] for a in waiting.output["actions"] if a["type"] == "protect_bucket"}
        assert planned == {PUBLIC_BUCKET: "awaiting_approval"}
        assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is False

    with Engine(TEMPLATE, {"ProtectBucketMode": "approval"}) as engine:
        # WHEN the request is approved as soon as it is made
        approved = engine.start(rule, load_event(f"eventbridge/{PUBLIC}"), Approvals.APPROVE)

        # THEN the playbook ran in enforce mode
        assert (report_of(approved)["status"], report_of(approved)["mode"]) == ("CONTAINED", "enforce")
        assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is True


def test_bucket_tagged_exempt_now_is_suppressed_and_nothing_of_the_incident_is_touched(engine: Engine) -> None:
    # GIVEN the bucket was tagged firebreak:exempt=true after GuardDuty described it
    event = load_event(f"eventbridge/{PUBLIC}")
    engine.world.seed(event)
    engine.client("s3").put_bucket_tagging(
        Bucket=PUBLIC_BUCKET, Tagging={"TagSet": [{"Key": "firebreak:exempt", "Value": "true"}]}
    )

    # WHEN the finding runs
    execution = run(engine, PUBLIC, event)

    # THEN the playbook stops at the gate: SUPPRESSED, no credentials revoked, no address blocked
    assert execution.states[4:7] == ["Protect Bucket", "Is Bucket Protectable?", "Protection Skipped"]
    assert [a["outcome"] for a in actions(execution)] == ["skipped"]
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is False
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VC7"] == "Active"
    assert engine.blocked_ips() == []


def test_bucket_tagged_for_approval_since_the_finding_is_not_changed(engine: Engine) -> None:
    # GIVEN the bucket was tagged firebreak:approval=required after GuardDuty described it
    event = load_event(f"eventbridge/{PUBLIC}")
    engine.world.seed(event)
    engine.client("s3").put_bucket_tagging(
        Bucket=PUBLIC_BUCKET, Tagging={"TagSet": [{"Key": "firebreak:approval", "Value": "required"}]}
    )

    # WHEN the finding runs
    execution = run(engine, PUBLIC, event)

    # THEN nothing is changed without a person, and the reason says how to get one
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped"
    assert "firebreak:approval=required" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is False


def test_a_bucket_tagged_for_approval_since_the_finding_is_protected_once_a_person_approves() -> None:
    # GIVEN protect-bucket in approval mode, and a bucket tagged firebreak:approval=required since the finding
    with Engine(TEMPLATE, {"ProtectBucketMode": "approval"}) as engine:
        event = load_event(f"eventbridge/{PUBLIC}")
        engine.world.seed(event)
        engine.client("s3").put_bucket_tagging(
            Bucket=PUBLIC_BUCKET, Tagging={"TagSet": [{"Key": "firebreak:approval", "Value": "required"}]}
        )
        rule = engine.matching_rule(event)
        assert rule is not None

        # WHEN a person approves the run
        execution = engine.start(rule, event, Approvals.APPROVE)

        # THEN the approval counts: the bucket is protected
        assert report_of(execution)["status"] == "CONTAINED"
        assert engine.world.report()["buckets"][PUBLIC_BUCKET]["public_access_blocked"] is True


def test_a_protected_principal_is_never_denied_on_the_bucket() -> None:
    # GIVEN report-exporter is on the break-glass list
    with Engine(TEMPLATE, {"ProtectedPrincipals": "report-exporter"}) as engine:
        # WHEN the public-bucket finding runs
        execution = run(engine, PUBLIC)

        # THEN Block Public Access is on, but no statement denies the principal and its key is left alone
        assert [a["outcome"] for a in actions(execution)] == ["applied", "skipped"]
        assert "ProtectedPrincipals" in actions(execution)[1]["reason"]
        assert engine.world.report()["buckets"][PUBLIC_BUCKET]["denied_principals"] == []
        assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VC7"] == "Active"


# --- release ------------------------------------------------------------------------------------------------------


def test_protect_then_release_leaves_the_bucket_as_it_was(engine: Engine) -> None:
    # GIVEN a bucket with its owners' policy, protected for a finding
    event = seed_with_owners_policy(engine)
    before = policy(engine, PUBLIC_BUCKET)
    incident_id = report_of(run(engine, PUBLIC, event))["incident_id"]

    # WHEN the incident is released
    released = report_of(engine.release(incident_id))

    # THEN every change is undone: no Block Public Access of its own again, the owners' policy exactly as it was
    assert released["status"] == "RELEASED", released
    assert policy(engine, PUBLIC_BUCKET) == before
    world = engine.world.report()["buckets"][PUBLIC_BUCKET]
    assert (world["public_access_blocked"], world["denied_principals"]) == (False, [])
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VC7"] == "Active"
    assert engine.blocked_ips() == []


def test_release_after_a_person_changed_the_bucket_leaves_their_change(engine: Engine) -> None:
    # GIVEN a protected bucket whose Block Public Access a person then loosened
    incident_id = report_of(run(engine, PUBLIC))["incident_id"]
    loosened = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True,
    }
    engine.client("s3").put_public_access_block(Bucket=PUBLIC_BUCKET, PublicAccessBlockConfiguration=loosened)

    # WHEN the incident is released
    released = report_of(engine.release(incident_id))

    # THEN the person's setting is kept, with a conflict reason, and the rest is released
    entries = [a for a in released["actions"] if a["type"] == "protect_bucket"]
    assert [a["outcome"] for a in entries] == ["skipped", "released"]
    assert entries[0]["reason"].startswith("conflict:")
    config = engine.client("s3").get_public_access_block(Bucket=PUBLIC_BUCKET)["PublicAccessBlockConfiguration"]
    assert config == loosened
    assert released["status"] == "PARTIALLY_CONTAINED"


def test_release_of_one_incident_leaves_the_principal_another_incident_denied(engine: Engine) -> None:
    # GIVEN two incidents on one bucket: the public-bucket caller, and another caller added to the same statement
    first = report_of(run(engine, PUBLIC))["incident_id"]
    other = load_event(f"eventbridge/{PUBLIC}")
    other["detail"]["id"] = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
    other["detail"]["resource"]["accessKeyDetails"].update(
        accessKeyId="AKIAZ4FQH7XKN2LD3VC8", principalId="AIDAZ4FQH7XKN2LD3VC8Y", userName="ledger-sync"
    )
    report_of(run(engine, PUBLIC, other))
    assert len(engine.world.report()["buckets"][PUBLIC_BUCKET]["denied_principals"]) == 2

    # WHEN the first incident is released
    released = report_of(engine.release(first))

    # THEN only its own principal left Firebreak's statement; the other caller is still denied
    assert released["status"] == "RELEASED", released
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["denied_principals"] == [
        "arn:aws:iam::123456789012:user/ledger-sync"
    ]


def test_a_principal_two_incidents_denied_stays_denied_until_the_last_is_released(engine: Engine) -> None:
    # GIVEN the same caller found twice on one bucket: the second incident finds it denied already
    first = report_of(run(engine, PUBLIC))["incident_id"]
    again = load_event(f"eventbridge/{PUBLIC}")
    again["detail"]["id"] = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    second = report_of(run(engine, PUBLIC, again))["incident_id"]

    # WHEN the first incident is released
    released = report_of(engine.release(first))

    # THEN the caller stays denied, because the second incident relies on it, and the release says so
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["denied_principals"] == [USER_ARN]
    [entry] = [a for a in released["actions"] if a["type"] == "protect_bucket" and "policy_statement" in a["after"]]
    assert f"incident {second} relies on it" in entry["reason"]

    # AND once the second is released too, the statement is gone
    report_of(engine.release(second))
    assert engine.world.report()["buckets"][PUBLIC_BUCKET]["denied_principals"] == []


# --- organization -------------------------------------------------------------------------------------------------


def test_a_member_accounts_bucket_is_protected_there_through_its_member_role_and_released(engine: Engine) -> None:
    # GIVEN an exfiltration finding about a bucket of member A in eu-west-1
    execution = run(engine, "guardduty_member_s3_malicious_ip_caller")

    # THEN the bucket is protected in member A's eu-west-1, through the protect-bucket member role
    assert report_of(execution)["status"] == "CONTAINED", actions(execution)
    world = engine.world.report()["buckets"]["globex-eu-invoices"]
    assert (world["account"], world["region"]) == ("111122223333", "eu-west-1")
    assert world["denied_principals"] == ["arn:aws:iam::111122223333:user/invoice-sync"]
    assert "globex-eu-invoices" not in [b["Name"] for b in engine.client("s3").list_buckets()["Buckets"]]
    assert engine.assume_role_refusals() == []

    # AND its release puts it back through the release member role
    released = report_of(engine.release(report_of(execution)["incident_id"]))
    assert released["status"] == "RELEASED", released
    assert engine.world.report()["buckets"]["globex-eu-invoices"]["denied_principals"] == []


# --- a finding about several buckets ------------------------------------------------------------------------------

TWO = "guardduty_s3_anomalous_exfiltration_two_buckets"
FIRST, SECOND = "acme-finance-archive", "acme-hr-records"
EXPORTER_ARN = "arn:aws:iam::123456789012:user/ledger-export"
# The first bucket had one setting of its own off; the second had no configuration of its own.
LOOSENED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": True,
}


def seed_two(engine: Engine) -> dict[str, Any]:
    """The two buckets seeded as the finding describes them, then left public as an attacker would want them."""
    event = load_event(f"eventbridge/{TWO}")
    engine.world.seed(event)
    s3 = engine.client("s3")
    s3.put_public_access_block(Bucket=FIRST, PublicAccessBlockConfiguration=LOOSENED)
    s3.delete_public_access_block(Bucket=SECOND)
    return event


def by_bucket(execution: Execution) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for action in actions(execution):
        found.setdefault(action["target"], []).append(action)
    return found


def public_access_block(engine: Engine, bucket: str) -> dict[str, bool] | None:
    try:
        config: dict[str, bool] = engine.client("s3").get_public_access_block(Bucket=bucket)[
            "PublicAccessBlockConfiguration"
        ]
    except ClientError:
        return None
    return config


def test_two_buckets_are_each_protected_with_their_own_before_and_after(engine: Engine) -> None:
    # GIVEN a caller's key reading from two public buckets
    event = seed_two(engine)

    # WHEN the finding runs
    execution = run(engine, TWO, event)

    # THEN the playbook took the same states as for one bucket, and the incident is CONTAINED
    assert execution.states == PLAYBOOK_STATES
    assert report_of(execution)["status"] == "CONTAINED"

    # AND each bucket got its own actions, with its own earlier Block Public Access on the record
    found = by_bucket(execution)
    assert sorted(found) == [FIRST, SECOND]
    assert [a["before"]["public_access_block"] for a in found[FIRST] if "public_access_block" in a["before"]] == [
        LOOSENED
    ]
    assert [a["before"]["public_access_block"] for a in found[SECOND] if "public_access_block" in a["before"]] == [None]
    assert {a["outcome"] for bucket in found.values() for a in bucket} == {"applied"}

    # AND both are in the report's world, blocked, the caller denied on each
    world = engine.world.report()["buckets"]
    for bucket in (FIRST, SECOND):
        assert (world[bucket]["public_access_blocked"], world[bucket]["denied_principals"]) == (True, [EXPORTER_ARN])

    # AND the key is revoked and the address blocked once for the incident
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VD2"] == "Inactive"
    assert len({a["target"] for a in actions(execution, "revoke_credentials")}) == 1
    assert engine.blocked_ips() == ["91.219.236.18/32"]


def test_a_second_finding_on_two_protected_buckets_is_already_applied_for_both(engine: Engine) -> None:
    # GIVEN both buckets protected for one finding
    run(engine, TWO, seed_two(engine))
    policies = {bucket: policy(engine, bucket) for bucket in (FIRST, SECOND)}

    # WHEN the same caller is found again on them
    again = load_event(f"eventbridge/{TWO}")
    again["detail"]["id"] = "5d9f1b3c7e0a2c4e6a8b0d2f4c6e8a31"
    execution = run(engine, TWO, again)

    # THEN every step of each bucket is already applied, and neither policy changed
    found = by_bucket(execution)
    assert {bucket: [a["outcome"] for a in found[bucket]] for bucket in found} == {
        FIRST: ["already_applied", "already_applied"],
        SECOND: ["already_applied", "already_applied"],
    }
    assert {bucket: policy(engine, bucket) for bucket in (FIRST, SECOND)} == policies
    assert report_of(execution)["status"] == "CONTAINED"


def test_one_bucket_tagged_exempt_now_is_skipped_and_the_other_is_protected(engine: Engine) -> None:
    # GIVEN the second bucket was tagged firebreak:exempt=true after GuardDuty described it
    event = seed_two(engine)
    engine.client("s3").put_bucket_tagging(
        Bucket=SECOND, Tagging={"TagSet": [{"Key": "firebreak:exempt", "Value": "true"}]}
    )

    # WHEN the finding runs
    execution = run(engine, TWO, event)

    # THEN the exempt bucket is skipped with the reason and left as it was
    found = by_bucket(execution)
    assert [(a["outcome"], a["reason"]) for a in found[SECOND]] == [
        ("skipped", f"bucket {SECOND} is tagged firebreak:exempt=true: Firebreak never touches it")
    ]
    world = engine.world.report()["buckets"]
    assert (world[SECOND]["public_access_blocked"], world[SECOND]["denied_principals"]) == (False, [])
    assert public_access_block(engine, SECOND) is None

    # AND the other bucket is protected, and the caller's key revoked and address blocked: its owner's exemption
    # covers that one bucket, not the incident, so the incident is CONTAINED with the exempt bucket on the record
    assert {a["outcome"] for a in found[FIRST]} == {"applied"}
    assert world[FIRST]["public_access_blocked"] is True
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VD2"] == "Inactive"
    assert engine.blocked_ips() == ["91.219.236.18/32"]
    assert report_of(execution)["status"] == "CONTAINED"


def test_every_bucket_tagged_exempt_now_suppresses_the_incident(engine: Engine) -> None:
    # GIVEN both buckets tagged firebreak:exempt=true since the finding
    event = seed_two(engine)
    for bucket in (FIRST, SECOND):
        engine.client("s3").put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "firebreak:exempt", "Value": "true"}]}
        )

    # WHEN the finding runs
    execution = run(engine, TWO, event)

    # THEN the playbook stops at the gate, as for one exempt bucket: nothing of the incident is touched
    assert execution.states[4:7] == ["Protect Bucket", "Is Bucket Protectable?", "Protection Skipped"]
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VD2"] == "Active"
    assert engine.blocked_ips() == []


def test_one_bucket_tagged_for_approval_since_the_finding_is_left_and_the_other_is_protected(engine: Engine) -> None:
    # GIVEN the second bucket was tagged firebreak:approval=required after GuardDuty described it
    event = seed_two(engine)
    engine.client("s3").put_bucket_tagging(
        Bucket=SECOND, Tagging={"TagSet": [{"Key": "firebreak:approval", "Value": "required"}]}
    )

    # WHEN the finding runs
    execution = run(engine, TWO, event)

    # THEN that bucket is not changed without a person, with the reason, and the other one is protected
    found = by_bucket(execution)
    [(outcome, reason)] = [(a["outcome"], a["reason"]) for a in found[SECOND]]
    assert (outcome, "firebreak:approval=required" in reason) == ("skipped", True)
    assert public_access_block(engine, SECOND) is None
    assert {a["outcome"] for a in found[FIRST]} == {"applied"}
    assert engine.world.report()["buckets"][FIRST]["public_access_blocked"] is True
    # AND the incident does not read CONTAINED while a bucket it names waits for a person
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_one_bucket_gone_since_the_finding_is_skipped_and_the_other_is_protected(engine: Engine) -> None:
    # GIVEN the second bucket was deleted after GuardDuty described it
    event = seed_two(engine)
    engine.client("s3").delete_bucket(Bucket=SECOND)

    # WHEN the finding runs
    execution = run(engine, TWO, event)

    # THEN the gone bucket is reported as such, the other is protected, and the incident is CONTAINED: no bucket
    # the finding names is left open
    found = by_bucket(execution)
    assert [(a["outcome"], a["reason"]) for a in found[SECOND]] == [
        ("skipped", f"bucket {SECOND} does not exist: nothing to protect")
    ]
    assert {a["outcome"] for a in found[FIRST]} == {"applied"}
    assert engine.world.report()["buckets"][FIRST]["public_access_blocked"] is True
    assert report_of(execution)["status"] == "CONTAINED"


def test_one_bucket_refusing_block_public_access_makes_the_incident_partially_contained(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 refuses Block Public Access on the second bucket only (forced: its own SCP-like deny)
    s3 = aws.client("s3", region="us-east-1")
    original = s3.put_public_access_block

    def refusing_second(**kwargs: Any) -> Any:
        if kwargs["Bucket"] == SECOND:
            return refuse("PutBucketPublicAccessBlock")(**kwargs)
        return original(**kwargs)

    monkeypatch.setattr(s3, "put_public_access_block", refusing_second)
    event = seed_two(engine)

    # WHEN the finding runs
    execution = run(engine, TWO, event)

    # THEN the second bucket's refusal is its own failed action, the first is protected, and the status is truthful
    found = by_bucket(execution)
    assert [a["outcome"] for a in found[SECOND]] == ["failed", "applied"]
    assert {a["outcome"] for a in found[FIRST]} == {"applied"}
    world = engine.world.report()["buckets"]
    assert (world[FIRST]["public_access_blocked"], world[SECOND]["public_access_blocked"]) == (True, False)
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_the_protect_step_crashing_reports_every_bucket_failed(engine: Engine) -> None:
    # GIVEN the protect function crashes (forced: a rare runtime error)
    engine.dispatcher.override(PROTECT_FUNCTION, out_of_memory)

    # WHEN the two-bucket finding runs
    execution = run(engine, TWO)

    # THEN each bucket has its own failed action, never only the first, and the key is still revoked
    assert [(a["target"], a["outcome"]) for a in actions(execution)] == [(FIRST, "failed"), (SECOND, "failed")]
    assert {a["outcome"] for a in actions(execution, "revoke_credentials")} == {"applied"}
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_release_puts_both_buckets_back_exactly_as_each_was(engine: Engine) -> None:
    # GIVEN two buckets, the first with its owners' policy, protected for one finding
    event = seed_two(engine)
    owners = {**OWNERS_STATEMENT, "Resource": f"arn:aws:s3:::{FIRST}/*"}
    engine.client("s3").put_bucket_policy(
        Bucket=FIRST, Policy=json.dumps({"Version": "2012-10-17", "Statement": [owners]})
    )
    first_policy = policy(engine, FIRST)
    incident_id = report_of(run(engine, TWO, event))["incident_id"]

    # WHEN the incident is released
    released = report_of(engine.release(incident_id))

    # THEN each bucket is as it was: the first's one setting off again and its owners' policy exactly, the second with
    # no Block Public Access and no policy of its own
    assert released["status"] == "RELEASED", released
    assert public_access_block(engine, FIRST) == LOOSENED
    assert policy(engine, FIRST) == first_policy
    assert public_access_block(engine, SECOND) is None
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        policy(engine, SECOND)
    undone = {a["target"] for a in released["actions"] if a["type"] == "protect_bucket" and a["outcome"] == "released"}
    assert undone == {FIRST, SECOND}
    assert engine.world.report()["access_keys"]["AKIAZ4FQH7XKN2LD3VD2"] == "Active"


def many_buckets(engine: Engine, count: int) -> tuple[dict[str, Any], list[str]]:
    event = load_event(f"eventbridge/{TWO}")
    template = event["detail"]["resource"]["s3BucketDetails"][0]
    names = [f"acme-ledger-{i:02d}" for i in range(count)]
    event["detail"]["resource"]["s3BucketDetails"] = [
        {**template, "name": name, "arn": f"arn:aws:s3:::{name}"} for name in names
    ]
    return event, names


def test_buckets_over_the_cap_are_skipped_with_the_reason_and_left_as_they_were(engine: Engine) -> None:
    # GIVEN a finding naming two more buckets than one incident protects
    event, names = many_buckets(engine, MAX_BUCKETS_PER_INCIDENT + 2)

    # WHEN it runs
    execution = run(engine, TWO, event)

    # THEN the first MAX_BUCKETS_PER_INCIDENT are protected, in one Protect Bucket step
    assert execution.states == PLAYBOOK_STATES
    found = by_bucket(execution)
    assert all({a["outcome"] for a in found[name]} == {"already_applied", "applied"} for name in names[:-2])
    world = engine.world.report()["buckets"]
    assert all(world[name]["denied_principals"] == [EXPORTER_ARN] for name in names[:-2])

    # AND each one over the cap is skipped, with the reason, and left untouched
    for name in names[-2:]:
        assert [(a["outcome"], a["reason"]) for a in found[name]] == [
            (
                "skipped",
                f"not protected: the finding names more than {MAX_BUCKETS_PER_INCIDENT} buckets and one incident "
                f"protects the first {MAX_BUCKETS_PER_INCIDENT}; a person must protect this one",
            )
        ]
        assert world[name]["denied_principals"] == []


def test_buckets_over_the_cap_keep_the_incident_from_reading_contained(engine: Engine) -> None:
    # GIVEN a finding naming more buckets than one incident protects
    event, _ = many_buckets(engine, MAX_BUCKETS_PER_INCIDENT + 1)

    # WHEN it runs
    execution = run(engine, TWO, event)

    # THEN the incident is not claimed CONTAINED: a bucket the finding names is still as the attacker left it
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
