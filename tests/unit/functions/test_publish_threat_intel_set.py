"""Publishing feed entries as a GuardDuty ThreatIntelSet; moto has no ThreatIntelSet API, so GuardDuty is stubbed."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from firebreak.feeds.threat_intel import LIST_KEY, SET_NAME, publish, stored_list
from functions.publish_threat_intel_set.app import lambda_handler

BUCKET = "feed-bucket"
LOCATION = f"https://s3.amazonaws.com/{BUCKET}/{LIST_KEY}"


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def test_first_publication_writes_the_list_and_registers_the_set(s3: Any) -> None:
    # GIVEN a detector without Firebreak's set
    guardduty = boto3.client("guardduty", region_name="us-east-1")
    with Stubber(guardduty) as stub:
        stub.add_response("list_threat_intel_sets", {"ThreatIntelSetIds": []}, {"DetectorId": "d1"})
        stub.add_response(
            "create_threat_intel_set",
            {"ThreatIntelSetId": "t1"},
            {"DetectorId": "d1", "Name": SET_NAME, "Format": "TXT", "Location": LOCATION, "Activate": True},
        )
        # WHEN the entries are published
        result = publish(["91.92.241.0/24", "45.155.205.10/32"], BUCKET, "d1", s3, guardduty)
        stub.assert_no_pending_responses()
    # THEN the TXT list holds one entry per line and the set was created active
    assert (result.status, result.entries, result.threat_intel_set_id) == ("CREATED", 2, "t1")
    assert s3.get_object(Bucket=BUCKET, Key=LIST_KEY)["Body"].read() == b"45.155.205.10/32\n91.92.241.0/24\n"


def test_unchanged_list_makes_no_write_and_a_changed_one_refreshes_the_set(s3: Any) -> None:
    # GIVEN the set registered with the current list
    s3.put_object(Bucket=BUCKET, Key=LIST_KEY, Body=b"45.155.205.10/32\n")
    guardduty = boto3.client("guardduty", region_name="us-east-1")
    registered = {"Name": SET_NAME, "Format": "TXT", "Location": LOCATION, "Status": "ACTIVE"}
    with Stubber(guardduty) as stub:
        for _ in range(2):
            stub.add_response("list_threat_intel_sets", {"ThreatIntelSetIds": ["t1"]}, {"DetectorId": "d1"})
            stub.add_response("get_threat_intel_set", registered, {"DetectorId": "d1", "ThreatIntelSetId": "t1"})
        stub.add_response(
            "update_threat_intel_set",
            {},
            {"DetectorId": "d1", "ThreatIntelSetId": "t1", "Location": LOCATION, "Activate": True},
        )
        # WHEN the same list, then a longer one, is published
        same = publish(["45.155.205.10/32"], BUCKET, "d1", s3, guardduty)
        longer = publish(["45.155.205.10/32", "80.82.77.33/32"], BUCKET, "d1", s3, guardduty)
        stub.assert_no_pending_responses()
    # THEN the first changes nothing and the second rewrites the list and asks GuardDuty to read it again
    assert (same.status, longer.status) == ("UNCHANGED", "UPDATED")
    assert s3.get_object(Bucket=BUCKET, Key=LIST_KEY)["Body"].read() == b"45.155.205.10/32\n80.82.77.33/32\n"


def test_handler_is_off_without_a_detector_id(monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    monkeypatch.setenv("THREAT_INTEL_DETECTOR_ID", "")
    assert lambda_handler({"input": {}, "executionId": "x"}, lambda_context)["status"] == "DISABLED"


def registered_set(stub: Stubber) -> None:
    registered = {"Name": SET_NAME, "Format": "TXT", "Location": LOCATION, "Status": "ACTIVE"}
    stub.add_response("list_threat_intel_sets", {"ThreatIntelSetIds": ["t1"]}, {"DetectorId": "d1"})
    stub.add_response("get_threat_intel_set", registered, {"DetectorId": "d1", "ThreatIntelSetId": "t1"})


def test_a_registered_set_whose_list_is_gone_is_refreshed(s3: Any) -> None:
    # GIVEN the set registered but its list deleted from the bucket: S3 answers NoSuchKey to a caller that may list
    # the bucket, which the template grants (published/*)
    guardduty = boto3.client("guardduty", region_name="us-east-1")
    with Stubber(guardduty) as stub:
        registered_set(stub)
        stub.add_response(
            "update_threat_intel_set",
            {},
            {"DetectorId": "d1", "ThreatIntelSetId": "t1", "Location": LOCATION, "Activate": True},
        )
        # WHEN the entries are published
        result = publish(["45.155.205.10/32"], BUCKET, "d1", s3, guardduty)
        stub.assert_no_pending_responses()
    # THEN the missing list is tolerated: it is written again and GuardDuty asked to read it
    assert result.status == "UPDATED"
    assert s3.get_object(Bucket=BUCKET, Key=LIST_KEY)["Body"].read() == b"45.155.205.10/32\n"


def refused_read(listing: dict[str, Any] | None) -> tuple[Any, Stubber]:
    """An S3 client whose GetObject of the list is refused with 403, then lists (or is refused the listing)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    stub = Stubber(s3)
    stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    if listing is None:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    else:
        stub.add_response("list_objects_v2", listing, {"Bucket": BUCKET, "Prefix": LIST_KEY, "MaxKeys": 1})
    return s3, stub


def test_a_403_for_a_list_the_bucket_does_not_hold_reads_as_no_list(aws: None) -> None:
    # GIVEN S3 refusing the read with 403, and a listing of exactly that key showing nothing there
    s3, stub = refused_read({"KeyCount": 0, "Name": BUCKET, "Prefix": LIST_KEY})
    with stub:
        # THEN there is no stored list, as with NoSuchKey
        assert stored_list(s3, BUCKET) is None
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("listing", [{"KeyCount": 1, "Contents": [{"Key": LIST_KEY}]}, None])
def test_a_real_refusal_still_fails_loudly(aws: None, listing: dict[str, Any] | None) -> None:
    # GIVEN S3 refusing the read of a list it holds, or refusing the listing too
    s3, stub = refused_read(listing)
    with stub, pytest.raises(ClientError) as raised:
        # WHEN the stored list is read
        stored_list(s3, BUCKET)
    # THEN the AccessDenied is raised, not taken for a missing list
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
