"""Fault injection: make a chosen AWS call fail with a chosen error, for the first N calls or for every call.

The fault is answered on moto's request path, before moto handles the call, as a real error response in the
service's own protocol (JSON, query XML, REST). So a handler's boto3 client raises a real ClientError with that code
and HTTP status (after its own standard retries), and a Step Functions SDK task fails with the error name the
interpreter derives from it (`DynamoDB.ThrottlingException`, `SNS.AuthorizationErrorException`). Calls the engine
makes for itself (provisioning, seeding, polling, reading results) are never faulted.

    with engine.faults.inject("wafv2", "UpdateIPSet", "WAFOptimisticLockException", times=2):
        engine.start(rule, event)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.awsrequest import AWSResponse

# Statuses AWS answers these codes with; anything else must be given explicitly.
_STATUS = {
    "ThrottlingException": 400,
    "Throttling": 400,
    "ProvisionedThroughputExceededException": 400,
    "TooManyRequestsException": 429,
    "InternalServerError": 500,
    "InternalFailure": 500,
    "InternalError": 500,
    "ServiceException": 500,
    "ServiceUnavailable": 503,
    "WAFInternalErrorException": 500,
    "WAFOptimisticLockException": 400,
    "WAFNonexistentItemException": 400,
    "AccessDeniedException": 400,
    "AccessDenied": 403,
    "AuthorizationError": 403,
    "ResourceNotFoundException": 400,
    "NotFound": 404,
    "ParameterNotFound": 400,
    "RequestLimitExceeded": 503,
    "UnauthorizedOperation": 403,
    "NoSuchEntity": 404,
    "ServiceFailure": 500,
    "TargetGroupNotFound": 400,
}


@dataclass
class Fault:
    """One planned failure: which call, which error, how many times (None: every call), and what it hit."""

    service: str
    operation: str
    code: str
    status: int
    times: int | None
    message: str
    protocol: str
    event_name: str
    hits: int = 0

    def wants(self, event_name: str) -> bool:
        return event_name == self.event_name and (self.times is None or self.hits < self.times)


@dataclass
class Faults:
    """The faults in force; the engine consults them on every AWS call that is not its own."""

    is_engine_call: Callable[[], bool]
    active: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def inject(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        times: int | None = 1,
        status: int | None = None,
        message: str | None = None,
    ) -> Iterator[Fault]:
        """Fail `service` `operation` (boto3 names: "wafv2", "UpdateIPSet") with `code`, `times` times (None: all)."""
        model = botocore.session.get_session().get_service_model(service)
        model.operation_model(operation)  # a misspelt operation fails here rather than never firing
        fault = Fault(
            service=service,
            operation=operation,
            code=code,
            status=status if status is not None else _STATUS.get(code, 400),
            times=times,
            message=message or f"injected fault: {code}",
            protocol=str(model.metadata["protocol"]),
            event_name=f"before-send.{model.service_id.hyphenize()}.{operation}",
        )
        with self._lock:
            self.active.append(fault)
        try:
            yield fault
        finally:
            with self._lock:
                self.active.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self.active.clear()

    def answer(self, event_name: str, request: Any) -> AWSResponse | None:
        """The error response for this call if a fault wants it, else None (moto answers)."""
        if self.is_engine_call():
            return None
        with self._lock:
            fault = next((fault for fault in self.active if fault.wants(event_name)), None)
            if fault is None:
                return None
            fault.hits += 1
        return error_answer(request, fault.protocol, fault.code, fault.status, fault.message)


def error_answer(request: Any, protocol: str, code: str, status: int, message: str) -> AWSResponse:
    """The response AWS sends for an error, in the service's protocol, as moto's request path returns one."""
    headers, body = _error_response(protocol, code, status, message)
    return AWSResponse(request.url, status, headers, _RawBody(body))  # type: ignore[arg-type]


class _RawBody(BytesIO):
    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def _error_response(protocol: str, code: str, status: int, message: str) -> tuple[dict[str, str], bytes]:
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = {"__type": code, "message": message}
        return {"x-amzn-RequestId": request_id, "Content-Type": "application/x-amz-json-1.1"}, json.dumps(body).encode()
    if protocol == "rest-json":
        headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code, "Content-Type": "application/json"}
        return headers, json.dumps({"message": message, "Message": message}).encode()
    if protocol in ("query", "ec2", "rest-xml"):
        kind = "Receiver" if status >= 500 else "Sender"
        message = escape(message)
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        if protocol == "ec2":
            xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"  # noqa: E501
        if protocol == "rest-xml":
            xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"  # noqa: E501
        return {"x-amzn-RequestId": request_id, "Content-Type": "text/xml"}, xml.encode()
    raise ValueError(f"protocol {protocol} is not supported by fault injection")
