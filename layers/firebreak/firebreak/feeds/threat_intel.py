"""Publishing the feed entries as a GuardDuty ThreatIntelSet: a TXT list in S3, registered once, refreshed on change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

SET_NAME = "firebreak-feeds"
LIST_KEY = "published/threat-intel-set.txt"


@dataclass(frozen=True)
class Publication:
    status: str
    entries: int
    threat_intel_set_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "entries": self.entries, "threat_intel_set_id": self.threat_intel_set_id}


def list_text(cidrs: Sequence[str]) -> bytes:
    """GuardDuty's TXT format: one address or CIDR per line."""
    return "".join(f"{cidr}\n" for cidr in sorted(cidrs)).encode()


def stored_list(s3: Any, bucket: str) -> bytes | None:
    """The list GuardDuty was last given, or None when there is none; any other refusal is raised."""
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=LIST_KEY)["Body"].read()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("NoSuchKey", "404"):
            return None
        # S3 answers a missing key with 403 unless the caller may list the bucket, and AWS does not say whether a
        # prefix-scoped ListBucket grant counts there; a listing of exactly this key tells the two apart.
        if code == "AccessDenied" and not is_listed(s3, bucket):
            return None
        raise
    return body


def is_listed(s3: Any, bucket: str) -> bool:
    response = s3.list_objects_v2(Bucket=bucket, Prefix=LIST_KEY, MaxKeys=1)
    return any(item["Key"] == LIST_KEY for item in response.get("Contents", []))


def find_set(guardduty: Any, detector_id: str) -> str | None:
    """The id of Firebreak's ThreatIntelSet on the detector, if it was registered before."""
    paginator = guardduty.get_paginator("list_threat_intel_sets")
    for page in paginator.paginate(DetectorId=detector_id):
        for set_id in page["ThreatIntelSetIds"]:
            if guardduty.get_threat_intel_set(DetectorId=detector_id, ThreatIntelSetId=set_id)["Name"] == SET_NAME:
                return str(set_id)
    return None


def publish(cidrs: Sequence[str], bucket: str, detector_id: str, s3: Any, guardduty: Any) -> Publication:
    """Write the list and register or refresh the set; nothing at all when the list is what GuardDuty already has."""
    body = list_text(cidrs)
    set_id = find_set(guardduty, detector_id)
    if set_id is not None and stored_list(s3, bucket) == body:
        return Publication("UNCHANGED", len(cidrs), set_id)
    s3.put_object(Bucket=bucket, Key=LIST_KEY, Body=body, ContentType="text/plain")
    location = f"https://s3.amazonaws.com/{bucket}/{LIST_KEY}"
    if set_id is None:
        created = guardduty.create_threat_intel_set(
            DetectorId=detector_id, Name=SET_NAME, Format="TXT", Location=location, Activate=True
        )
        return Publication("CREATED", len(cidrs), created["ThreatIntelSetId"])
    # GuardDuty reads the list again only when the set is updated.
    guardduty.update_threat_intel_set(DetectorId=detector_id, ThreatIntelSetId=set_id, Location=location, Activate=True)
    return Publication("UPDATED", len(cidrs), set_id)
