"""The one boto3 client factory: cached per service, region and role, standard retry mode."""

from __future__ import annotations

import functools
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(retries={"mode": "standard"})
# Assumed-role credentials last an hour; a client older than this is replaced so a warm Lambda never holds stale ones.
_ROLE_CLIENT_LIFETIME_SECONDS = 45 * 60


def client(service: str, region: str | None = None, role_arn: str | None = None) -> Any:
    """A boto3 client; with role_arn, one acting in a member account through an assumed role."""
    if role_arn is None:
        return _client(service, region)
    return _role_client(service, region, role_arn, int(time.time() // _ROLE_CLIENT_LIFETIME_SECONDS))


@functools.cache
def _client(service: str, region: str | None) -> Any:
    return boto3.client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]


@functools.cache
def _role_client(service: str, region: str | None, role_arn: str, _generation: int) -> Any:
    credentials = _client("sts", region).assume_role(RoleArn=role_arn, RoleSessionName="firebreak")["Credentials"]
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        config=_CONFIG,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


# Error codes AWS answers when the call may succeed if repeated; everything else is a decision AWS made.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    }
)


def is_transient(error: ClientError) -> bool:
    """True for throttling and server-side errors, which a step re-raises so the ASL Retry repeats it."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error.response.get("Error", {}).get("Code") in _TRANSIENT_CODES or status >= 500


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "Unknown")


def describe_error(error: ClientError) -> str:
    """`Code: message`, for an action's reason."""
    message = str(error.response.get("Error", {}).get("Message") or "").strip()
    return f"{error_code(error)}: {message}" if message else error_code(error)
