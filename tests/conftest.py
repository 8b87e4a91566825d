"""Shared fixtures. moto is imported first so every boto3 client a handler creates is intercepted."""

from __future__ import annotations

import os
from collections.abc import Iterator

import botocore.endpoint
import moto  # noqa: F401 - must precede boto3 clients created at import time
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from firebreak.blocking import block, writer
from firebreak_local import runtime
from firebreak_local.engine import Engine
from firebreak_local.runtime import LambdaContext
from tests.support import TEMPLATE, CappedClock


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """An engine sets the template's environment for its functions; no test may leave it to the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(
        function_name="test", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:test"
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a fresh emulated account."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mock = mock_aws()
    mock.start()
    try:
        yield
    finally:
        # As the engine ends its own: moto's stop would build every backend again only to drop it.
        runtime.stop_discarding_data(mock)


@pytest.fixture
def engine() -> Iterator[Engine]:
    """The whole stack of template.yaml on the embedded local AWS, fresh for each test."""
    saved = dict(os.environ)
    with Engine(TEMPLATE) as running:
        yield running
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def short_retry_waits(monkeypatch: pytest.MonkeyPatch) -> CappedClock:
    """Retry back-offs of boto3 clients, of ASL Retry and of the IPSet writes' LockToken retries (the block step's and
    the writer's) cut to 10 ms: the fault matrices test that and how a call is retried, not how long AWS would wait in
    between."""
    clock = CappedClock(cap=0.01)
    monkeypatch.setattr(botocore.endpoint, "time", clock)
    monkeypatch.setattr(retrier_decl, "time", clock)
    monkeypatch.setattr(block, "time", clock)
    monkeypatch.setattr(writer, "time", clock)
    return clock
