"""Protect Bucket: {incident_id, incident, mode, approved} -> {status, actions, revoke, block_addresses, ...}.

For every bucket the finding names (the first MAX_BUCKETS_PER_INCIDENT; the rest skipped with the reason): turns
Block Public Access on, server access logging back on when the finding says it was turned off, and writes Firebreak's
bucket-policy statements denying the finding's principal and reads of a malicious object; or says why not, per
bucket. The step's status is NOT_FOUND, EXEMPT or APPROVAL_REQUIRED (a tag added since the finding, and `approved` not
true) only when no bucket may be changed. `revoke` and `block_addresses` say what the playbook does next;
`suppressed_reason` makes an incident whose buckets are all exempt SUPPRESSED.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from firebreak.containment.bucket import protect
from firebreak.containment.credentials import RevocationSettings
from firebreak.core import aws
from firebreak.core.models import PlaybookRequest

logger = Logger()


@logger.inject_lambda_context
@aws.member_sessions
@aws.retryable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    request = PlaybookRequest.from_dict(event["input"])
    protection = protect(request, RevocationSettings.from_env(), approved=event["input"].get("approved") is True)
    logger.info(
        "Protected bucket",
        extra={
            "incident_id": request.incident_id,
            "buckets": list(request.incident.bucket_names),
            "status": protection.status.value,
            "outcomes": [f"{a.reason[:60]}: {a.outcome.value}" for a in protection.actions],
        },
    )
    return protection.to_dict()
