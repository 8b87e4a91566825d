"""The real protect-bucket playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import json
from typing import Any

from firebreak_local.engine import Engine, Execution
from tests.support import TEMPLATE, incident_record, load_event

PUBLIC = "guardduty_s3_bucket_anonymous_access_granted"
EXFILTRATION = "guardduty_s3_malicious_ip_caller"
LOGGING = "guardduty_s3_server_access_logging_disabled"
MALWARE = "guardduty_s3_malicious_file"
PUBLIC_BUCKET = "acme-payroll-reports"
USER_ARN = "arn:aws:iam::123456789012:user/report-exporter"
SID = "FirebreakDenyIncidentPrincipals"
OBJECT_SID = "FirebreakDenyMaliciousObjectReads"
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
    event = event or load_event(f"eventbridge/{name}")
    rule = engine.matching_rule(event)
    assert rule is not None, f"{name} should trigger a rule"
    return engine.start(rule, event)


def report(execution: Execution) -> dict[str, Any]:
    value = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    assert isinstance(value, dict)
    return value


def actions(execution: Execution, action_type: str = "protect_bucket") -> list[dict[str, Any]]:
    return [action for action in report(execution)["actions"] if action["type"] == action_type]


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
    outcome = report(execution)
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
    assert report(execution)["status"] == "CONTAINED"


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
    assert report(execution)["status"] == "CONTAINED"
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
        assert report(execution)["status"] == "CONTAINED"
