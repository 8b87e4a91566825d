"""What World seeds and reports for protect-bucket's findings: the bucket as GuardDuty saw it, in its own place."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from firebreak_local.world import World
from tests.support import load_event


@pytest.fixture
def world(aws: None) -> World:
    return World(boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"))


def test_a_policy_finding_seeds_its_bucket_with_public_access_unblocked_and_its_tags(world: World) -> None:
    world.seed(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted"))
    assert world.report()["buckets"] == {
        "acme-payroll-reports": {
            "public_access_blocked": False,
            "denied_principals": [],
            "denied_object_reads": [],
            "server_access_logging": None,
            "policy_statements": 0,
            "account": "123456789012",
            "region": "us-east-1",
        }
    }
    tags = boto3.client("s3").get_bucket_tagging(Bucket="acme-payroll-reports")["TagSet"]
    assert tags == [{"Key": "DataClass", "Value": "restricted"}]


def test_other_findings_seed_a_bucket_with_the_default_block_and_the_malicious_object(world: World) -> None:
    world.seed(load_event("eventbridge/guardduty_s3_malicious_file"))
    assert world.report()["buckets"]["acme-customer-uploads"]["public_access_blocked"] is True
    body: Any = boto3.client("s3").get_object(Bucket="acme-customer-uploads", Key="inbox/2026/03/invoice-4471.pdf.exe")
    assert b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in body["Body"].read()


def test_the_logging_finding_seeds_the_accounts_log_bucket_with_the_logging_services_grant(world: World) -> None:
    world.seed(load_event("eventbridge/guardduty_s3_server_access_logging_disabled"))
    s3 = boto3.client("s3")
    s3.put_bucket_logging(
        Bucket="acme-audit-evidence",
        BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "firebreak-access-logs-123456789012-us-east-1", "TargetPrefix": "x/"}
        },
    )
    report = world.report()["buckets"]["acme-audit-evidence"]
    assert report["server_access_logging"] == "firebreak-access-logs-123456789012-us-east-1/x/"


def test_a_bucket_seeded_once_is_left_as_it_is_by_a_second_finding(world: World) -> None:
    world.seed(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted"))
    boto3.client("s3").put_public_access_block(
        Bucket="acme-payroll-reports",
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        ),
    )
    world.seed(load_event("eventbridge/guardduty_s3_bucket_anonymous_access_granted"))
    assert world.report()["buckets"]["acme-payroll-reports"]["public_access_blocked"] is True
