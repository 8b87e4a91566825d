"""The one boto3 client factory: cached per service, region and role, standard retry mode."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from firebreak.core.errors import TransientAwsError

_CONFIG = Config(retries={"mode": "standard"})
# Codes AWS uses for "slow down" across services; botocore's standard mode misses some (SNS's Throttled).
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "KMSThrottlingException",
    }
)
P = ParamSpec("P")
R = TypeVar("R")


def is_transient(error: ClientError) -> bool:
    """Throttling or a server-side (5xx) failure: worth trying again later, unlike a refusal or a missing resource."""
    code = error.response.get("Error", {}).get("Code", "")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code in _THROTTLING_CODES or code in _TRANSIENT_CODES or status >= 500


def retryable(handler: Callable[P, R]) -> Callable[P, R]:
    """Turn a transient ClientError into TransientAwsError, the name the ASL Retry matches.

    Lambda reports an unmodelled ClientError as plain "ClientError", which no Retry can tell from AccessDenied.
    """

    @functools.wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        except ClientError as error:
            if is_transient(error):
                raise TransientAwsError(str(error)) from error
            raise

    return wrapper


class ClientFactory(Protocol):
    """What domain code that picks its own clients takes: `client` below, or a fake in tests."""

    def __call__(self, service: str, region: str | None = None) -> Any: ...


def client(service: str, region: str | None = None, role_arn: str | None = None, session: str = "firebreak") -> Any:
    """A boto3 client; with role_arn, one acting in a member account through an assumed role named `session`.

    Assumed-role clients live until the invocation ends (`member_sessions`): a warm Lambda never acts for one
    incident with the session it opened for another, so the member's CloudTrail names the right incident.
    """
    if role_arn is None:
        return _client(service, region)
    key = (service, region, role_arn, session)
    with _role_clients_lock:
        cached = _role_clients.get(key)
        credentials = _role_sessions.get((role_arn, session))
    if cached is not None:
        return cached
    if credentials is None:
        # One AssumeRole per role and session: a step that needs EC2, IAM and Auto Scaling clients opens one session.
        credentials = _client("sts", region).assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
    built = boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        config=_CONFIG,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    with _role_clients_lock:
        _role_clients[key] = built
        _role_sessions[(role_arn, session)] = credentials
    return built


def member_sessions(handler: Callable[P, R]) -> Callable[P, R]:
    """Forget the invocation's assumed-role clients when it ends, whatever its outcome."""

    @functools.wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        finally:
            forget_member_sessions()

    return wrapper


def forget_member_sessions() -> None:
    """Drop every assumed-role session and its clients."""
    with _role_clients_lock:
        _role_clients.clear()
        _role_sessions.clear()


def home_region() -> str | None:
    """The Region this function runs in (Lambda sets AWS_REGION; boto3 falls back to AWS_DEFAULT_REGION)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


@functools.cache
def _client(service: str, region: str | None) -> Any:
    return boto3.client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]


_role_clients: dict[tuple[str, str | None, str, str], Any] = {}
_role_sessions: dict[tuple[str, str], Any] = {}
_role_clients_lock = threading.Lock()


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


def conditional(write: Callable[..., R], **request: Any) -> R | None:
    """Make a conditional DynamoDB write: its response, or None when its condition did not hold. Other errors raise."""
    try:
        return write(**request)
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        return None


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "Unknown")


def describe_error(error: ClientError) -> str:
    """`Code: message`, for an action's reason."""
    message = str(error.response.get("Error", {}).get("Message") or "").strip()
    return f"{error_code(error)}: {message}" if message else error_code(error)
