"""Everything the engine needs from moto's internals, in one small pinned place.

moto's Step Functions interpreter leaves its JSONata hook empty and runs Lambda functions only in Docker; this module
plugs in jsonata-python, dispatches every invoke to the real handler in-process with Lambda's error contract (and
its throttling past a function's reserved concurrency), shortens the `.sync` polling interval, counts the AWS API
calls moto serves, passes SendTaskFailure's cause on, and answers Security Hub's BatchUpdateFindings (which moto
does not implement) with success, recording each request. It knows which function a handler invocation runs for, so
the engine's guards can answer a handler's call as AWS would for that function's role (moto checks no permissions),
and keeps the metrics a handler prints as embedded-metric-format (EMF) lines, which CloudWatch would read off its log.
"""

from __future__ import annotations

import _thread
import base64
import codecs
import contextlib
import contextvars
import copy
import datetime
import functools
import gc
import heapq
import importlib
import itertools
import json
import logging
import math
import re
import string
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Before moto, whose EC2 module opens botocore sessions as it is imported: from here on they share one loader.
# And before its EC2 models, whose offerings files it reads as they are imported: each is read when asked for.
from firebreak_local import botocore_data, ec2_offerings  # noqa: F401

# isort: split
import botocore.session
import jsonata
import jsonpath_ng
import jsonpath_ng.ext as jsonpath_ext
import moto
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from jsonata import signature as jsonata_signature
from jsonata import utils as jsonata_utils
from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import base_backend as moto_base_backend
from moto.core import custom_responses_mock as moto_custom_responses
from moto.core import loaders as moto_core_loaders
from moto.core import model_instances as moto_model_instances
from moto.core import models as moto_core_models
from moto.core import responses as moto_core_responses
from moto.core import utils as moto_core_utils
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.core.exceptions import JsonRESTError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import EmptyResult
from moto.dynamodb.responses import DynamoHandler
from moto.ec2.models.network_acls import NetworkAclBackend
from moto.kms import models as moto_kms_models
from moto.kms import utils as moto_kms_utils
from moto.sns import models as moto_sns_models
from moto.sqs import models as moto_sqs_models
from moto.stepfunctions.parser import utils as moto_sfn_utils
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.path import result_path as moto_result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.retry.jitter_strategy_decl import JitterStrategyDecl
from moto.stepfunctions.parser.asl.component.common.timeouts import timeout as moto_timeout
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec import execute_state as moto_execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as moto_task_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
    StateTaskServiceDynamoDB,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval import states as moto_states
from moto.stepfunctions.parser.asl.eval import variable_store as moto_variable_store
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.jsonata import validations as moto_jsonata_validations
from moto.stepfunctions.parser.asl.parse import asl_parser as moto_asl_parser
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.wafv2.models import WAFV2Backend
from werkzeug.routing import rules as werkzeug_rules

from firebreak_local import moto_dynamodb
from firebreak_local.faults import Faults

PINNED_MOTO = "5.2.5"
YOUNG_COLLECTION_ALLOCATIONS = 10_000  # net allocations between collections of the youngest generation
Handler = Callable[[dict[str, Any], Any], Any]


class RuntimeError_(Exception):
    """The installed moto is not the one this module was written against."""


@dataclass(frozen=True)
class LambdaContext:
    """The attributes Powertools and our handlers read from a Lambda context."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_seconds: float = 30.0
    started: float = field(default_factory=lambda: clock().monotonic())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - clock().monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    module: str
    handler: str
    timeout_seconds: int = 3
    reserved_concurrency: int | None = None
    role_arn: str = ""  # the execution role the function's calls are made with


# The function whose handler this thread is running: set per invocation, so concurrent executions (a storm runs
# handlers on many threads) each see their own. Threads a handler starts itself begin without it.
_CURRENT_FUNCTION: contextvars.ContextVar[FunctionSpec | None] = contextvars.ContextVar(
    "firebreak_current_function", default=None
)


def current_function() -> FunctionSpec | None:
    """The function whose handler makes the current call, or None outside any handler."""
    return _CURRENT_FUNCTION.get()


@dataclass(frozen=True)
class Metric:
    """One value of one metric a function printed in an EMF document, with the document's dimensions."""

    function: str
    namespace: str
    name: str
    value: float
    unit: str
    dimensions: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "namespace": self.namespace,
            "dimensions": dict(self.dimensions),
            "function": self.function,
        }


def emf_metrics(line: str, function: str) -> list[Metric]:
    """The metrics in one printed line if it is an EMF document (its `_aws.CloudWatchMetrics`), else [].

    Anything else, a malformed document included, is a line like any other: CloudWatch would only log it.
    """
    if '"_aws"' not in line:
        return []
    try:
        document = json.loads(line)
    except ValueError:
        return []
    aws = document.get("_aws") if isinstance(document, dict) else None
    directives = aws.get("CloudWatchMetrics") if isinstance(aws, dict) else None
    if not isinstance(directives, list):
        return []
    metrics = []
    for directive in directives:
        if not isinstance(directive, dict):
            return []
        dimension_sets = [keys for keys in directive.get("Dimensions") or [] if isinstance(keys, list)]
        keys = sorted({str(key) for dimension_set in dimension_sets for key in dimension_set})
        dimensions = tuple((key, str(document.get(key, ""))) for key in keys)
        for definition in directive.get("Metrics") or []:
            name = definition.get("Name") if isinstance(definition, dict) else None
            if not isinstance(name, str):
                return []
            values = document.get(name)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    unit = str(definition.get("Unit", "None"))
                    metrics.append(Metric(function, str(directive.get("Namespace")), name, value, unit, dimensions))
    return metrics


class EmittedMetrics:
    """The metrics handlers printed since the last take(), in the order they were printed."""

    def __init__(self) -> None:
        self._metrics: list[Metric] = []
        self._lock = threading.Lock()

    def record(self, metrics: list[Metric]) -> None:
        with self._lock:
            self._metrics += metrics

    def take(self) -> list[Metric]:
        with self._lock:
            metrics, self._metrics = self._metrics, []
        return metrics


@dataclass
class _Printed:
    """What one invocation printed since its last complete line, and where its metrics go."""

    function: str
    metrics: EmittedMetrics
    partial: str = ""


# The invocation whose handler this thread runs, as _CURRENT_FUNCTION: what it prints is read line by line.
_PRINTED: contextvars.ContextVar[_Printed | None] = contextvars.ContextVar("firebreak_printed", default=None)


class _HandlerStdout:
    """sys.stdout while handlers run: an EMF line a handler prints is kept as metrics (CloudWatch would read it off
    the function's log, where no person looks); every other line, and everything other threads print, passes on."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        printed = _PRINTED.get()
        if printed is None:
            return int(self.stream.write(text))
        *lines, printed.partial = (printed.partial + text).split("\n")
        for line in lines:
            self._line(printed, line + "\n")
        return len(text)

    def end(self, printed: _Printed) -> None:
        """The invocation ended: a last line without its newline is still a line."""
        if printed.partial:
            self._line(printed, printed.partial)
            printed.partial = ""

    def _line(self, printed: _Printed, line: str) -> None:
        metrics = emf_metrics(line, printed.function)
        if metrics:
            printed.metrics.record(metrics)
        else:
            self.stream.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


_stdout_lock = threading.Lock()


def _handler_stdout() -> _HandlerStdout:
    """The stdout handlers print to: whatever sys.stdout is now (a CLI's stderr, a test's capture), wrapped once."""
    with _stdout_lock:
        if not isinstance(sys.stdout, _HandlerStdout):
            sys.stdout = _HandlerStdout(sys.stdout)
        return sys.stdout


@contextmanager
def _reading_prints(function: str, metrics: EmittedMetrics) -> Iterator[None]:
    stdout = _handler_stdout()
    printed = _Printed(function, metrics)
    token = _PRINTED.set(printed)
    try:
        yield
    finally:
        _PRINTED.reset(token)
        stdout.end(printed)


# Powertools' warning when a handler's @log_metrics flushes nothing (it failed first, or a concurrent invocation in
# this one process flushed the shared metric set): a line of the function's log on Lambda, noise on a terminal.
EMPTY_METRICS_WARNING = "No application metrics to publish"


def quiet_empty_metrics_warnings() -> None:
    """Ignore Powertools' empty-metrics warning from now on (pytest restores the filters after each test)."""
    warnings.filterwarnings("ignore", message=EMPTY_METRICS_WARNING, module="aws_lambda_powertools")


class Throttled(JsonRESTError):
    """Lambda's answer to a synchronous invoke past the function's reserved concurrency: HTTP 429, not retried."""

    code = 429

    def __init__(self, function_name: str, reserved: int) -> None:
        super().__init__("TooManyRequestsException", f"Rate Exceeded: {function_name} runs {reserved} at a time")


class Dispatcher:
    """Maps function names and ARNs to real handlers; tests may override one function to force a rare error."""

    def __init__(self) -> None:
        self._functions: dict[str, FunctionSpec] = {}
        self._overrides: dict[str, Handler] = {}
        self.invocations: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.metrics = EmittedMetrics()
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    def register(self, spec: FunctionSpec) -> None:
        self._functions[spec.name] = spec

    def override(self, function_name: str, handler: Handler | None) -> None:
        if handler is None:
            self._overrides.pop(function_name, None)
        else:
            self._overrides[function_name] = handler

    def clear_overrides(self) -> None:
        self._overrides.clear()

    def invoke_as_lambda(self, function_name: str, body: bytes | str, response_headers: dict[str, str]) -> bytes | None:
        """An Invoke through the Lambda API: past a function's ReservedConcurrentExecutions it is throttled, as on AWS.

        A storm that AWS would throttle must be throttled here too, or the playbooks' Retry on
        Lambda.TooManyRequestsException is never put to the test.
        """
        spec = self._functions.get(_short_name(function_name))
        if spec is None or spec.reserved_concurrency is None:
            return self.invoke(function_name, body, response_headers)
        with self._lock:
            if self._running[spec.name] >= spec.reserved_concurrency:
                self.throttled[spec.name] += 1
                raise Throttled(spec.name, spec.reserved_concurrency)
            self._running[spec.name] += 1
        try:
            return self.invoke(function_name, body, response_headers)
        finally:
            with self._lock:
                self._running[spec.name] -= 1

    def invoke(self, function_name: str, body: bytes | str, response_headers: dict[str, str]) -> bytes | None:
        name = _short_name(function_name)
        spec = self._functions.get(name)
        if spec is None:
            return None  # moto answers 404, which the interpreter reports as Lambda.ResourceNotFoundException
        self.invocations[name] += 1
        try:
            handler = self._overrides.get(name) or _load(spec.module, spec.handler)
        except ImportError as error:
            return _unhandled(response_headers, "Runtime.ImportModuleError", error)
        try:
            # A handler that budgets by its remaining time gets it on the emulator's clock, stretched like timeouts.
            context = LambdaContext(name, spec.arn, timeout_seconds=spec.timeout_seconds * LOAD.factor)
            running = _CURRENT_FUNCTION.set(spec)
            try:
                with _reading_prints(name, self.metrics):
                    result = handler(json.loads(body or "{}"), context)
            finally:
                _CURRENT_FUNCTION.reset(running)
        except Exception as error:  # noqa: BLE001 - Lambda turns every unhandled exception into this payload
            return _unhandled(response_headers, type(error).__name__, error)
        return json.dumps(result).encode()


def _short_name(function_name: str) -> str:
    return function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]


def _unhandled(response_headers: dict[str, str], error_type: str, error: BaseException) -> bytes:
    """Lambda's answer to an unhandled error; Step Functions reads errorType as the error name Catch matches."""
    response_headers["x-amz-function-error"] = "Unhandled"
    payload = {
        "errorType": error_type,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }
    return json.dumps(payload).encode()


@functools.cache
def _load(module: str, handler: str) -> Handler:
    return getattr(importlib.import_module(module), handler)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=4096)
def _compiled(expression: str) -> Any:
    compiled = jsonata.Jsonata(expression)
    # jsonata-python hands JSON's null back as a marker and then walks the whole result in Python to replace it, half
    # the evaluation of a `$states.input`: the JSON copy every result gets (_Bindings.evaluate) writes it as null.
    compiled.set_output_convert_nulls(False)
    return compiled


def _jsonata_null(value: Any) -> None:
    if value is jsonata_utils.Utils.NULL_VALUE:
        return None
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _look_up_without_recursion() -> None:
    """jsonata-python looks every name up through the frames of its scope, recursively, and looks up its two
    evaluation hooks that way at every node it evaluates: most of a recursive JSONata function's time (Record
    Outcome's `$ddb` typing of the actions, 12 ms a run). The same look-up, as a loop, and none for hooks that no
    frame has bound."""
    none = jsonata_utils.Utils.NONE
    original_bind = jsonata.Jsonata.Frame.bind

    def bind(self: Any, name: str, val: Any) -> None:
        if name in _JSONATA_HOOKS and not _JSONATA_HOOKS_BOUND:
            _JSONATA_HOOKS_BOUND.append(True)
        original_bind(self, name, val)

    def lookup(self: Any, name: str) -> Any:
        if name in _JSONATA_HOOKS and not _JSONATA_HOOKS_BOUND:
            return None
        frame = self
        while frame is not None:
            value = frame.bindings.get(name, none)
            if value is not none:
                return value
            frame = frame.parent
        return None

    jsonata.Jsonata.Frame.bind = bind
    jsonata.Jsonata.Frame.lookup = lookup


# Nothing binds jsonata's evaluation hooks unless a runtime bound (its Timebox) is set, which moto never sets.
_JSONATA_HOOKS = frozenset({"__evaluate_entry", "__evaluate_exit"})
_JSONATA_HOOKS_BOUND: list[bool] = []


def _dispatch_jsonata_nodes_by_type() -> None:
    """jsonata-python picks a node's evaluation by comparing its type with up to eighteen names in turn, at every
    node (a function call is the fifteenth): the same choice, from a table. Its debug printing and the hooks, when
    either is on, go the library's own way."""
    interpreter: Any = jsonata.Jsonata
    original = interpreter._eval
    is_sequence = jsonata_utils.Utils.is_sequence
    none = jsonata_utils.Utils.NONE
    by_type: dict[str, Callable[[Any, Any, Any, Any], Any]] = {
        "path": lambda self, expr, data, env: self.evaluate_path(expr, data, env),
        "binary": lambda self, expr, data, env: self.evaluate_binary(expr, data, env),
        "unary": lambda self, expr, data, env: self.evaluate_unary(expr, data, env),
        "name": lambda self, expr, data, env: self.evaluate_name(expr, data, env),
        "string": lambda self, expr, data, env: self.evaluate_literal(expr),
        "number": lambda self, expr, data, env: self.evaluate_literal(expr),
        "value": lambda self, expr, data, env: self.evaluate_literal(expr),
        "wildcard": lambda self, expr, data, env: self.evaluate_wildcard(expr, data),
        "descendant": lambda self, expr, data, env: self.evaluate_descendants(expr, data),
        "parent": lambda self, expr, data, env: env.lookup(expr.slot.label),
        "condition": lambda self, expr, data, env: self.evaluate_condition(expr, data, env),
        "block": lambda self, expr, data, env: self.evaluate_block(expr, data, env),
        "bind": lambda self, expr, data, env: self.evaluate_bind_expression(expr, data, env),
        "regex": lambda self, expr, data, env: self.evaluate_regex(expr),
        "function": lambda self, expr, data, env: self.evaluate_function(expr, data, env, none),
        "variable": lambda self, expr, data, env: self.evaluate_variable(expr, data, env),
        "lambda": lambda self, expr, data, env: self.evaluate_lambda(expr, data, env),
        "partial": lambda self, expr, data, env: self.evaluate_partial_application(expr, data, env),
        "apply": lambda self, expr, data, env: self.evaluate_apply_expression(expr, data, env),
        "transform": lambda self, expr, data, env: self.evaluate_transform_expression(expr, data, env),
    }

    def _eval(self: Any, expr: Any, data: Any, environment: Any) -> Any:
        if _JSONATA_HOOKS_BOUND or self.parser.dbg:
            return original(self, expr, data, environment)
        # Kept for $eval(), which reads the current input and environment.
        self.input = data
        self.environment = environment
        kind = getattr(expr, "type", None)
        evaluate = by_type.get(kind) if kind is not None else None
        result = evaluate(self, expr, data, environment) if evaluate is not None else None
        predicate = getattr(expr, "predicate", None)
        if predicate is not None:
            for item in predicate:
                result = self.evaluate_filter(item.expr, result, environment)
        if kind is not None and kind != "path" and getattr(expr, "group", None) is not None:
            result = self.evaluate_group_expression(expr.group, result, environment)
        # The library's mangling: a sequence of one is its member, an empty one nothing.
        if result is not None and is_sequence(result) and not result.tuple_stream:
            if expr.keep_array:
                result.keep_singleton = True
            if not result:
                result = None
            elif len(result) == 1:
                result = result if result.keep_singleton else result[0]
        return result

    _eval.original = original  # type: ignore[attr-defined]
    interpreter._eval = _eval


def _type_jsonata_values_directly() -> None:
    """jsonata-python's signature check types every argument of a built-in call (`$type`, `$map`, `$merge`...) by
    first asking whether it is a function, a lambda or a regex, two module imports and inspect's look at it each
    time, and `Utils.is_function` imports its module at every call. A value of a plain JSON type is typed by its type
    first (none of the three is one); the check for a function imports nothing."""
    signature_class: Any = jsonata_signature.Signature
    original = signature_class.get_symbol
    symbols = {str: "s", bool: "b", int: "n", float: "n", dict: "o", list: "a"}

    def get_symbol(self: Any, value: Any) -> str:
        symbol = symbols.get(type(value))
        return symbol if symbol is not None else original(self, value)

    function_class = jsonata.Jsonata.JFunctionCallable
    get_symbol.original = original  # type: ignore[attr-defined]
    signature_class.get_symbol = get_symbol
    utils_class: Any = jsonata_utils.Utils
    utils_class.is_function = staticmethod(lambda value: isinstance(value, function_class))


def _take_string_results_as_strings() -> None:
    """moto checks every JSONata result that is a string by evaluating the whole expression again inside `$type()`,
    to refuse a result of a type Step Functions does not take (a function): a third of a run's evaluations. A result
    that reaches moto as a str came through _Bindings.evaluate's JSON copy, which nothing but JSON survives, so it
    was a JSONata string. A result that is nothing is still checked for undefined (`$exists`), as before."""

    def a_string_is_supported(env: Any, expression: str, rich_jsonata_expression: str) -> None:
        """A str result's JSONata type is string, one Step Functions takes: nothing to refuse."""

    moto_jsonata_validations._validate_string_output = a_string_is_supported


class _Bindings:
    """Variable values handed to JSONata by reference instead of as JSON text inside the expression.

    moto declares `$states` and every variable by writing its value into the expression (`$x:={...};`), so each
    evaluation re-tokenises whole findings and never hits a compile cache. Declaring `$x:=$__fbN;` and binding
    `__fbN` keeps expressions small and identical across executions; it also escapes strings, which moto does not.
    """

    TOKEN = re.compile(r"\$__fb(\d+)")
    KEEP = 20_000

    def __init__(self) -> None:
        self._values: dict[int, Any] = {}
        self._next = itertools.count()
        self._lock = threading.Lock()

    def encode(self, bindings: dict[str, Any]) -> str:
        parts = []
        with self._lock:
            for name, value in bindings.items():
                number = next(self._next)
                self._values[number] = value
                self._values.pop(number - self.KEEP, None)
                parts.append(f"{name}:=$__fb{number};")
        return "".join(parts)

    def evaluate(self, expression: str) -> Any:
        order: dict[str, int] = {}
        for number in self.TOKEN.findall(expression):
            order.setdefault(number, len(order))
        canonical = self.TOKEN.sub(lambda match: f"$__fb{order[match.group(1)]}", expression)
        with self._lock:
            bound = {f"__fb{position}": self._values[int(number)] for number, position in order.items()}
        # A JSON round trip gives the interpreter fresh values, as parsing them out of the expression did.
        return json.loads(json.dumps(_compiled(canonical).evaluate(None, bound), default=_jsonata_null))


class ApiCalls:
    """Counts the AWS API calls moto serves, except those made by the thread that drives the engine."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._quiet = threading.local()

    def is_quiet(self) -> bool:
        """Whether this thread is the engine's own (provisioning, seeding, polling), not the stack's."""
        return bool(getattr(self._quiet, "on", False))

    def record(self, event_name: str) -> None:
        if self.is_quiet():
            return
        operation = ".".join(event_name.split(".")[1:3])
        with self._lock:
            self.counts[operation] += 1

    @contextmanager
    def quiet(self) -> Iterator[None]:
        # Re-entrant: an engine step made of quiet steps stays quiet after the first of them ends.
        previous = self.is_quiet()
        self._quiet.on = True
        try:
            yield
        finally:
            self._quiet.on = previous

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def _name_dynamodb_errors_as_aws() -> None:
    """Step Functions names a DynamoDB error by its SDK exception class (`DynamoDB.InternalServerErrorException`);
    moto uses the bare error code, so a Retry written for AWS would never match a 5xx locally."""
    original = StateTaskServiceDynamoDB._error_cause_from_client_error

    def named(client_error: Any) -> tuple[str, str]:
        error, cause = original(client_error)
        return (error if error.endswith("Exception") else f"{error}Exception"), cause

    StateTaskServiceDynamoDB._error_cause_from_client_error = staticmethod(named)  # type: ignore[method-assign]


def _name_sfn_errors_as_aws() -> None:
    """Step Functions names a `states:startExecution` error `StepFunctions.<error code>` (its guide's Retry example
    matches `StepFunctions.ExecutionLimitExceeded`); moto appends "Exception" to every code, which makes a throttled
    start `StepFunctions.ThrottlingExceptionException` and no Retry written for AWS would match it locally."""
    original = StateTaskServiceSfn._from_error

    def named(task: Any, env: Any, ex: Exception) -> Any:
        failure: Any = original(task, env, ex)
        if isinstance(ex, ClientError):
            name = f"StepFunctions.{ex.response['Error']['Code']}"
            failure.error_name = CustomErrorName(name)
            failure.event_details["taskFailedEventDetails"]["error"] = name
        return failure

    StateTaskServiceSfn._from_error = named  # type: ignore[method-assign,assignment]


def _output_before_status() -> None:
    """moto marks an execution SUCCEEDED before it sets the output; a `.sync` parent polling in between reads no
    output (a large one makes the window wide). Setting the output first closes it."""
    original = BaseExecutionWorkerCommunication._reflect_execution_status

    def reflect(self: Any) -> None:
        if isinstance(self.execution.exec_worker.env.program_state(), ProgramEnded):
            self.execution.output = self.execution.exec_worker.env.states.get_input()
        original(self)  # type: ignore[no-untyped-call]
        simulated = _simulated
        if simulated is not None:
            simulated.ended[self.execution.exec_arn] = simulated.elapsed()
        SIGNALS.give(self.execution.exec_arn)

    BaseExecutionWorkerCommunication._reflect_execution_status = reflect  # type: ignore[method-assign]


def _case_sfn_arguments() -> None:
    """moto hands a `states:startExecution` task's Arguments to boto3, and its answer back, without re-casing them."""
    original_parameters = StateTaskServiceSfn._normalise_parameters
    model = botocore.session.get_session().get_service_model("stepfunctions")

    def operation(task: Any, action: str | None) -> Any:
        name = task._get_boto_service_action(action)
        return model.operation_model("".join(part.capitalize() for part in name.split("_")))

    def parameters(
        task: Any, parameters: dict[str, Any], boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        original_parameters(task, parameters, boto_service_name, service_action_name)
        task._to_boto_request(parameters, operation(task, service_action_name).input_shape)

    def response(task: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None) -> None:
        task._from_boto_response(response, operation(task, service_action_name).output_shape)

    StateTaskServiceSfn._normalise_parameters = parameters  # type: ignore[method-assign,assignment]
    StateTaskServiceSfn._normalise_response = response  # type: ignore[method-assign,assignment]


def _iso_execution_start_time() -> None:
    """moto puts the execution's start into the context object as a datetime; AWS gives ISO 8601 text."""
    original = ExecutionWorker._get_evaluation_environment

    def environment(worker: Any) -> Any:
        env = original(worker)
        execution = env.states.context_object.context_object_data["Execution"]
        start = execution["StartTime"]
        if isinstance(start, datetime.datetime):
            start = start if start.tzinfo else start.replace(tzinfo=datetime.UTC)
            execution["StartTime"] = start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return env

    ExecutionWorker._get_evaluation_environment = environment  # type: ignore[method-assign,assignment]


# Writes whose check and change AWS applies as one step; moto checks, then changes, with no lock in between.
_CHECKED_WRITES: tuple[tuple[type, tuple[str, ...]], ...] = (
    (WAFV2Backend, ("update_ip_set",)),
    # At the request handler: it reads the old item for ReturnValues before the backend writes.
    (DynamoHandler, ("put_item", "update_item", "delete_item", "transact_write_items")),
    (NetworkAclBackend, ("create_network_acl_entry", "replace_network_acl_entry", "delete_network_acl_entry")),
)


def _make_checked_writes_atomic() -> None:
    """Executions run in threads, so a LockToken or a ConditionExpression must not be checked by two at once.

    One re-entrant lock (replace_network_acl_entry calls delete and create) around each such write makes it as atomic
    as the service's own; reads stay unlocked, as concurrent as AWS's.
    """
    lock = threading.RLock()

    def atomic(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return locked

    for backend, names in _CHECKED_WRITES:
        for name in names:
            setattr(backend, name, atomic(getattr(backend, name)))


def _parse_each_definition_once() -> None:
    """moto parses the ASL text with a pure-Python ANTLR parser, then builds its evaluation components from the tree,
    at every execution start: most of an execution's time, for the same result each time.

    Both are kept per definition text. The components hold no execution's state (moto keeps that in each
    execution's Environment, and runs one program for every iteration of a Map at once), so executions of one
    definition share them; the per-component heap keys are drawn before the program is shared, so two executions'
    first uses cannot draw two.
    """
    parser = moto_asl_parser.AmazonStateLanguageParser
    original = parser.parse
    parsed: dict[str, tuple[Any, Any]] = {}
    lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            known = parsed.get(definition)
        if known is None:
            program, tree = original(definition)  # raises ASLParserException on a syntax error, which is never kept
            _draw_heap_keys(program)
            known = (program, tree)
            with lock:
                known = parsed.setdefault(definition, known)
        return known

    parser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _draw_heap_keys(component: Any) -> None:
    """Every evaluation component's heap key (drawn lazily by moto, on first use), drawn now."""
    seen: set[int] = set()
    pending = [component]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, list | tuple | set | frozenset):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, EvalComponent):
            _ = value.heap_key
            pending.extend(getattr(value, "__dict__", {}).values())


def _check_definitions_at_first_start() -> None:
    """moto checks a definition at CreateStateMachine by building its whole program, most of a warm engine's start
    and mostly for machines a run never starts. The same check runs at an execution's start instead, once per
    definition text, raising the same InvalidDefinition to the caller: left to the execution's worker thread, a
    broken definition would fail out of sight and leave the execution RUNNING.
    """
    check = StepFunctionsParserBackend._validate_definition
    original_start = StepFunctionsParserBackend.start_execution
    checked: set[str] = set()
    lock = threading.Lock()

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        definition = self.describe_state_machine(state_machine_arn).definition
        with lock:
            known = definition in checked
        if not known:
            check(definition)
            with lock:
                checked.add(definition)
        return original_start(self, state_machine_arn, *args, **kwargs)

    StepFunctionsParserBackend._validate_definition = staticmethod(lambda definition: None)  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


def _share_moto_loader() -> None:
    """moto reads the service model it answers with through a new loader for each service, and each new loader lists
    every service folder on disk before it finds its own: one loader, kept, lists them once."""
    moto_core_utils.create_loader = functools.cache(moto_core_loaders.create_loader)  # type: ignore[attr-defined]


def _route_requests_once_per_url() -> None:
    """moto routes every request by matching its URL with each service's pattern in turn, then, for a service that
    matches, building that service's whole URL map anew (formatting every path, a re.sub per path) and matching its
    patterns: a third of moto's own time in a small call, with the same answer for the same URL every time. The
    answer, the services whose pattern matches and the handler each has for the URL, is kept per URL; the checks
    that read moto's settings (passthrough, whitelist), the request's recording and the call run per request as in
    moto 5.2.5's BotocoreStubber.process_request."""
    import moto.backend_index as moto_backend_index
    import moto.backends as moto_backends
    from moto.core import botocore_stubber
    from moto.core import exceptions as moto_exceptions
    from moto.core.base_backend import BackendDict
    from moto.moto_api import recorder

    # Looked up in the stubber's module at each call, as moto's own code does (and anything patching them sees).
    stubber: Any = botocore_stubber

    @functools.lru_cache(maxsize=4096)
    def routes(clean_url: str) -> tuple[tuple[str, Any], ...]:
        found = []
        for service, pattern in moto_backend_index.backend_url_patterns:
            if not pattern.match(clean_url):
                continue
            backend_dict = moto_backends.get_backend(service)  # type: ignore[call-overload]
            if isinstance(backend_dict, BackendDict):
                regions = backend_dict[DEFAULT_ACCOUNT_ID]
                backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
            else:
                backend = backend_dict["global"]
            handler = next((h for url, h in backend.urls.items() if re.compile(url).match(clean_url)), None)
            found.append((service, handler))
        return tuple(found)

    def process_request(self: Any, request: Any) -> Any:
        parsed_url, _ = stubber.get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        if stubber.passthrough_url(clean_url):
            return None
        for service, handler in routes(clean_url):
            if stubber.passthrough_service(service):
                return None
            if not stubber.service_whitelisted(service):
                raise stubber.ServiceNotWhitelisted(service)
            if handler is None:
                continue
            normalized_request = stubber.normalize_request(request)
            try:
                recorder._record_request(normalized_request)
                status, headers, body = handler(
                    normalized_request, normalized_request.raw_url, normalized_request.headers
                )
            except moto_exceptions.HTTPException as error:  # type: ignore[attr-defined]
                status, headers, body = error.code, error.get_headers(), error.get_body()
            return status, headers, body
        if re.compile(r"https?://.+\.amazonaws.com/.*").match(clean_url):
            return 404, {}, "Not yet implemented"
        return None

    process_request.original = BotocoreStubber.process_request  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


def _unquote_escapes_at_once() -> None:
    """moto reads a query-protocol body (SNS, EC2, IAM, RDS) with parse_qsl, whose unquote decodes each %XX escape in a
    Python loop: 1.3 ms for a 40 KB Publish, whose JSON message is mostly escapes. An ASCII text without a backslash
    decodes the same through the C escape decoder, its escapes written as \\xHH; any other text, a malformed escape
    or another codec goes through the library's own unquote."""
    original = urllib.parse.unquote

    # Typed as typeshed types the library's; it takes None for either too.
    def unquote(string: str | bytes, encoding: str = "utf-8", errors: str = "replace") -> str:
        if (
            not isinstance(string, str)
            or "%" not in string
            or "\\" in string
            or not string.isascii()
            or (encoding or "utf-8").lower().replace("-", "").replace("_", "") != "utf8"
        ):
            return original(string, encoding, errors)
        try:
            decoded: bytes = codecs.escape_decode(string.replace("%", "\\x"))[0]
        except ValueError:  # a % not followed by two hex digits: left as it is, the library's way
            return original(string, encoding, errors)
        # Escapes decode per run in the library; here at once: runs end at ASCII, which no UTF-8 sequence spans.
        return decoded.decode("utf-8", errors or "replace")

    unquote.original = original  # type: ignore[attr-defined]
    urllib.parse.unquote = unquote


def _tell_sqs_the_time_directly() -> None:
    """moto's SQS works a message's visibility and delay out from a naive UTC datetime less the epoch (two datetimes
    and a timedelta, 1.2 us), twice per message whenever it lists a queue's messages, and it lists them three times
    per SendMessage (the queue's attributes, read for one flag, count visible, delayed and in-flight messages): a send
    costs what the queue holds. The engine's inboxes hold a run's notifications and incident events, 400 in a storm:
    2.0 s of its 34. The same instant, read from time.time()."""

    def unix_time(dt: datetime.datetime | None = None) -> float:
        return time.time() if dt is None else moto_core_utils.unix_time(dt)

    def unix_time_millis(dt: datetime.datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else moto_core_utils.unix_time_millis(dt)

    moto_sqs_models.unix_time = unix_time  # type: ignore[attr-defined]
    moto_sqs_models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]


def _draw_random_strings_at_once() -> None:
    """moto draws every random string it makes (the 52-character request id of every response, resource ids) a
    character at a time through Random.choice: a twentieth of a small call. One Random.choices draw per string gives
    strings of the same alphabet, length and distribution (and still a fixed sequence for a seeded moto)."""
    from moto.moto_api._internal.moto_random import HEX_CHARS, MotoRandom

    def get_random_hex(self: Any, length: int = 8) -> str:
        return "".join(map(str, self.choices(HEX_CHARS, k=length)))

    def get_random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    MotoRandom.get_random_hex = get_random_hex  # type: ignore[method-assign]
    MotoRandom.get_random_string = get_random_string  # type: ignore[method-assign]


def _write_json_errors_without_xml() -> None:
    """moto builds every error's XML body (xmltodict) as it is made, and a JSON-protocol error then replaces it with
    its JSON at once: DynamoDB raises and catches one inside every `if_not_exists` of an attribute not there yet,
    twice per UpdateItem of a new item. A JSON error is made without the XML nobody reads; every other error, and
    a JSON error's body, headers and fields, are as before."""
    from moto.core import exceptions as moto_exceptions

    rest_error: Any = moto_exceptions._RESTError
    original = rest_error.__init__

    def init(self: Any, error_type: str, message: str, _: str = "", **kwargs: Any) -> None:
        if not isinstance(self, JsonRESTError):
            original(self, error_type, message, _, **kwargs)
            return
        # moto 5.2.5's _RESTError.__init__ but for the XML; JsonRESTError.__init__ sets the body and its type next.
        super(rest_error, self).__init__()
        self.error_type = error_type
        self.message = message

    init.original = original  # type: ignore[attr-defined]
    rest_error.__init__ = init


def _sign_without_hashing_under_moto() -> None:
    """botocore signs every request with SigV4 (a canonical request, its SHA-256 and four HMACs), a tenth of each call
    through moto, which reads only the access key and the Region from the Authorization header and checks no
    signature. While moto answers, the header keeps its form (credential scope, signed headers) with a constant
    signature; with moto stopped, requests are signed as always."""
    from botocore.auth import SigV4Auth

    # The canonical request and the string to sign feed only the signature: under moto none of them is computed.
    for name, unchecked in (("canonical_request", ""), ("string_to_sign", ""), ("signature", _UNCHECKED_SIGNATURE)):
        setattr(SigV4Auth, name, _unless_moto_answers(getattr(SigV4Auth, name), unchecked))


def _unless_moto_answers(method: Callable[..., str], unchecked: str) -> Callable[..., str]:
    def step(self: Any, *args: Any) -> str:
        return unchecked if moto_core_models.botocore_stubber.enabled else method(self, *args)

    return step


_UNCHECKED_SIGNATURE = "0" * 64


def _copy_state_data_as_json() -> None:
    """moto deep-copies a state's input, result and every `$states` read so that no evaluation changes another's
    data: copy.deepcopy of whole findings and incidents, several times a state; and a task's parameters, the stack
    its own thread starts from, and its output placed by ResultPath. The data is JSON (it came from JSON and goes on
    as JSON), so a JSON round trip gives the same fresh copy at a fraction of the cost. A service's answer is JSON
    and its timestamps (a nested execution's DescribeExecution, twice a block-ip run): its containers are copied and
    its timestamps, which nothing changes, shared. Anything else, or what would not come back equal (a tuple, a key
    that is not a string), is deep-copied as before."""

    def fresh(value: Any) -> Any:
        if value is None or isinstance(value, str | int | float | bool):
            return value
        try:
            copied = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            try:
                return _copy_containers(value)
            except TypeError:
                return copy.deepcopy(value)
        return copied if copied == value else copy.deepcopy(value)

    for module in (moto_states, moto_task_service, moto_execute_state, moto_result_path):
        module.copy = _JsonCopy(fresh)  # type: ignore[attr-defined]

    # A state's whole input is read five or six times a state, each read a copy of findings and incidents: the
    # input's JSON text is kept from the copy made when it is set (nobody holds that copy but the States), and
    # each whole read parses the text again instead of writing it out first.
    states_class: Any = moto_states.States
    original_reset, original_get_input = states_class.reset, states_class.get_input

    def reset(self: Any, input_value: Any) -> None:
        try:
            text = json.dumps(input_value)
        except (TypeError, ValueError):
            self._input_json = None
            original_reset(self, input_value)
            return
        # moto 5.2.5's reset, with the clone parsed from the text.
        self._states_data["input"] = json.loads(text)
        self._states_data["result"] = None
        self._states_data["errorOutput"] = None
        self._input_json = (self._states_data["input"], text)

    def get_input(self: Any, query: str | None = None) -> Any:
        kept = getattr(self, "_input_json", None)
        if query is None and kept is not None and kept[0] is self._states_data["input"]:
            return json.loads(kept[1])
        return original_get_input(self, query)

    states_class.reset = reset
    states_class.get_input = get_input


_SHARED_LEAVES = frozenset({str, int, float, bool, type(None), datetime.datetime})


def _copy_containers(value: Any) -> Any:
    """A copy of a tree of plain dicts and lists whose leaves are immutable (JSON's, and timestamps); TypeError at
    anything else."""
    kind = type(value)
    if kind is dict:
        return {key: _copy_containers(item) for key, item in value.items()}
    if kind is list:
        return [_copy_containers(item) for item in value]
    if kind in _SHARED_LEAVES:
        return value
    raise TypeError(f"not a plain tree: {kind.__name__}")


class _JsonCopy:
    """The copy module as moto's States sees it: deepcopy by JSON round trip (see _copy_state_data_as_json)."""

    def __init__(self, fresh: Callable[[Any], Any]) -> None:
        self.deepcopy = fresh

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _list_response_methods_once() -> None:
    """moto finds the method that answers a request by listing its response class's methods with inspect, at every
    request: a tenth of a small call's cost. A class's methods do not change while it answers, so the list is kept
    per class (the engine's own replacements, made at install, keep their names)."""
    moto_core_responses.method_names_from_class = functools.cache(moto_core_responses.method_names_from_class)  # type: ignore[attr-defined]


def _parse_json_paths_once() -> None:
    """jsonpath-ng builds a whole PLY parser (its yacc tables) for every expression it parses, and moto parses a path
    each time it uses one: each of EventBridge's eight default input paths per PutEvents (8 ms, two per incident), a
    task state's ResultPath every time the state runs (eight a block-ip run) and a JSONPath state's paths. A parsed
    path is only read when matched against data or written into it, so each text is parsed once, by both parsers and
    in the modules that imported one by name."""
    jsonpath_ng.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.parse)  # type: ignore[attr-defined]
    jsonpath_ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ext.parse)  # type: ignore[attr-defined]
    moto_result_path.parse = jsonpath_ng.parse  # type: ignore[attr-defined]
    moto_json_path.parse = jsonpath_ext.parse  # type: ignore[attr-defined]


_KEY_PAIR_LOCK = threading.Lock()


class _KeyPairWhenUsed:
    """Stands in for the key pair moto draws for a KMS key until an operation reads it.

    moto draws an RSA-2048 pair for every key, symmetric ones included: the stack's two keys were a third of a warm
    engine's start. Only the asymmetric operations (Sign, Verify, GetPublicKey) read the pair; the first of them
    draws it, and a replica (moto copies the key) shares it.
    """

    def __init__(self, key_spec: str) -> None:
        self.key_spec = key_spec
        self._pair: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_pair":
            raise AttributeError(name)
        with _KEY_PAIR_LOCK:
            if self._pair is None:
                self._pair = _draw_key_pair(self.key_spec)
        return getattr(self._pair, name)


_draw_key_pair = moto_kms_utils.generate_private_key


def _draw_kms_key_pairs_when_used() -> None:
    # kms.models imported it by name.
    moto_kms_models.generate_private_key = _KeyPairWhenUsed  # type: ignore[attr-defined,assignment]


@functools.cache
def _sns_signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign_sns_messages_with_one_key() -> None:
    """moto signs every message it delivers to a subscription with an RSA-2048 key it draws for that subscription at
    its first message (47 ms, and again in every engine, whose subscriptions are copies), and makes and signs a new
    certificate for every message (two RSA signatures a delivery, 2% of a block-ip run). SNS signs with one
    certificate per Region, named by every message's SigningCertURL: one key per process, and one certificate per
    Region made at its first message. (get_post_data was moto's only use of Subscription.private_key.)"""
    moto_sns_models.Subscription.get_post_data = _post_data  # type: ignore[method-assign]


@functools.cache
def _sns_certificate(region: str) -> tuple[str, bytes]:
    """The Region's signing certificate (moto 5.2.5's, made once): its file name and PEM."""
    key = _sns_signing_key()
    issuer = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Amazon RSA 2048 M01"),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")]))
        .issuer_name(x509.Name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moto_core_utils.utcnow())
        .not_valid_after(moto_core_utils.utcnow() + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    name = f"SimpleNotificationService-{uuid.uuid4().hex}.pem"
    return name, certificate.public_bytes(serialization.Encoding.PEM)


def _post_data(
    self: Any, message: str, message_id: str, subject: str | None, message_attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """moto 5.2.5's Subscription.get_post_data, signed under the Region's one certificate."""
    region = self.topic.sns_backend.region_name
    key_name, pem = _sns_certificate(region)
    timestamp = moto_core_utils.iso_8601_datetime_with_milliseconds()
    string_to_sign = (
        f"Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\nTopicArn\n{self.topic.arn}\n"
        "Type\nNotification\n"
    )
    signature = _sns_signing_key().sign(string_to_sign.encode("UTF-8"), padding.PKCS1v15(), hashes.SHA256())
    # A certificate URL is fetched without an account: moto keeps them all in its default account's backend (set at
    # every message, as moto does, since a new mock starts that backend empty).
    default_backend = moto_sns_models.sns_backends[DEFAULT_ACCOUNT_ID][region]
    default_backend._message_public_keys[key_name] = pem
    post_data: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": self.topic.arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "Signature": base64.b64encode(signature).decode("utf-8"),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/{key_name}",
        "UnsubscribeURL": (
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
            f"arn:aws:sns:us-east-1:{self.account_id}:{self.topic.name}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
        ),
    }
    if subject:
        post_data["Subject"] = subject
    if message_attributes:
        post_data["MessageAttributes"] = message_attributes
    return post_data


def _compile_url_builders_when_used() -> None:
    """werkzeug compiles two URL builders (an AST, then exec) for each rule of a Map as the Map is made; moto routes
    REST APIs with Maps and only ever matches URLs. The Lambda API's 89 rules took 65 ms of the first Invoke. A rule
    builds its builders when it first builds a URL instead."""
    original = werkzeug_rules.Rule._compile_builder

    def compile_builder(rule: werkzeug_rules.Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compiled: list[Callable[..., tuple[str, str]]] = []

        def build(self: werkzeug_rules.Rule, **values: Any) -> tuple[str, str]:
            if not compiled:
                compiled.append(original(self, append_unknown))
            return compiled[0](self, **values)

        return build

    werkzeug_rules.Rule._compile_builder = compile_builder  # type: ignore[method-assign,assignment]


def _reuse_task_clients() -> None:
    """moto builds a new boto3 client for every task it runs, the next largest cost; one per service and region does.

    The clients carry moto's fixed fake credentials and configuration whatever the task, and boto3 clients are
    thread-safe once built. Each module imported the factory by name, so it is replaced where it was imported.
    """
    original = moto_boto_client.boto_client_for
    clients: dict[tuple[str, str, bool], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, moto_core_models.botocore_stubber.enabled)
        with lock:
            if key not in clients:
                clients[key] = original(region=region, service=service, state_credentials=state_credentials)
            return clients[key]

    # Modules imported later take it from its home; those imported already are given it.
    moto_boto_client.boto_client_for = boto_client_for
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


class Signals:
    """Things that happen once, by key (an execution's end, by its ARN), so that whoever waits for one (the engine, a
    `.sync` parent, the stream poller told to stop) wakes when it happens instead of at its next poll. The polls stay,
    as the bound of each wait, for anything that happens without telling."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._given: set[str] = set()

    def give(self, key: str) -> None:
        with self._cond:
            self._given.add(key)
            self._cond.notify_all()
        simulated = _simulated
        if simulated is not None:
            simulated.wake(key)

    def given(self, key: str) -> bool:
        return key in self._given

    def pause(self, seconds: float, key: str) -> None:
        """Sleep up to seconds (on the simulated clock, for a thread that takes part), less once key is given."""
        simulated = _simulated
        if simulated is not None and simulated.takes_part():
            simulated.sleep(seconds, wake=key)
            return
        deadline = time.monotonic() + seconds
        with self._cond:
            while key not in self._given:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                _real_condition_wait(self._cond, left)


SIGNALS = Signals()


class _ChildResolver:
    """moto's `.sync` resolver of a child execution, with the child's ARN, so its parent can wait for that end."""

    def __init__(self, resolve: Callable[[], Any], execution_arn: str) -> None:
        self.resolve = resolve
        self.execution_arn = execution_arn

    def __call__(self) -> Any:
        return self.resolve()


def _wake_parents_at_child_end() -> None:
    """A `.sync` parent polls DescribeExecution until its child ends (every 0.25 s on the simulated clock, each poll
    a jump of the clock): Step Functions learns of the end from the child itself. The parent now waits for that end
    and asks once more; the poll interval stays as the bound of each wait."""
    for name in ("_build_sync_resolver", "_build_sync2_resolver"):
        original = getattr(StateTaskServiceSfn, name)

        def build(self: Any, env: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            submitted = env.stack[-1] if env.stack else None
            resolve = _original(self, env, *args, **kwargs)
            arn = submitted.get("ExecutionArn") if isinstance(submitted, dict) else None
            return _ChildResolver(resolve, arn) if resolve is not None and isinstance(arn, str) else resolve

        setattr(StateTaskServiceSfn, name, build)

    original_eval_sync = state_task_service_callback.StateTaskServiceCallback._eval_sync

    def eval_sync(
        self: Any,
        env: Any,
        sync_resolver: Any,
        timeout_seconds: Any,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if not isinstance(sync_resolver, _ChildResolver):
            return original_eval_sync(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        # moto's loop, but for the pause: a task token sent meanwhile still answers the task, as in moto.
        answered: list[Any] = []
        if callback_endpoint is not None:

            def wait_for_task_token() -> None:
                answered.append(
                    self._eval_wait_for_task_token(
                        env=env,
                        timeout_seconds=timeout_seconds,
                        callback_endpoint=callback_endpoint,
                        heartbeat_endpoint=heartbeat_endpoint,
                    )
                )

            waiter = threading.Thread(target=wait_for_task_token, name="WaitForTaskToken_SyncTask", daemon=True)
            moto_sfn_utils.TMP_THREADS.append(waiter)
            waiter.start()
        result: Any = None
        while env.is_running():
            # Woken at the child's end; the poll is only the bound of a wait, and far less frequent. Asked after the
            # first wait, not before: a child just started is running.
            poll = max(state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK, CHILD_POLL_SECONDS)
            SIGNALS.pause(poll, sync_resolver.execution_arn)
            if answered and answered[0]:
                break
            result = sync_resolver()
            if result:
                break
        return (answered[0] if answered else None) or result

    state_task_service_callback.StateTaskServiceCallback._eval_sync = eval_sync  # type: ignore[method-assign]


# moto polls a child execution every 0.5 s; a local playbook finishes in milliseconds.
SYNC_POLL_SECONDS = 0.005
# On the simulated clock a poll costs no waiting, only a jump: about how soon Step Functions sees a child end.
SIMULATED_SYNC_POLL_SECONDS = 0.25
# A `.sync` parent of a child execution is woken at the child's end (every end is told: _output_before_status); it
# asks again at most this often meanwhile, for an end that went untold. At 1 s, every block-ip parent asked once in
# vain while its child waited out the IPSets' writer's 1 s batching window.
CHILD_POLL_SECONDS = 5.0


class Load:
    """How many executions share the emulator's one interpreter lock, which AWS would run side by side.

    Every state's TimeoutSeconds, every Retry wait and a Lambda context's remaining time are stretched by that
    factor while a storm runs, so that a task which would finish in time on its own compute does not time out (or
    run out of retries) for waiting its turn on the emulator's; the engine's own deadline still ends a real hang.
    Parents poll their `.sync` children less often by the same factor: at the idle rate, a storm's parents spent
    the interpreter on asking.
    """

    def __init__(self) -> None:
        self.factor = 1.0

    @contextmanager
    def shared_by(self, executions: int, fair_share: int = 10) -> Iterator[float]:
        self.factor = max(1.0, executions / fair_share)
        poll = SIMULATED_SYNC_POLL_SECONDS if _simulated is not None else SYNC_POLL_SECONDS * self.factor
        state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = poll  # type: ignore[misc]
        try:
            yield self.factor
        finally:
            self.factor = 1.0
            state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = SYNC_POLL_SECONDS  # type: ignore[misc]


LOAD = Load()


def _stretch_timeouts_under_load() -> None:
    original = moto_timeout.Timeout._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        original(self, env)
        env.stack.append(int(env.stack.pop() * LOAD.factor))

    moto_timeout.Timeout._eval_body = _eval_body  # type: ignore[method-assign]

    # A Retry's wait is on the same clock: a task throttled past reserved concurrency waits for a slot that frees
    # as slowly as the emulator runs, and would use up its attempts before any did. JitterStrategy is the last
    # step that computes the wait, whether it jitters or not.
    original_jitter = JitterStrategyDecl._eval_body

    def jittered(self: Any, env: Any) -> None:
        original_jitter(self, env)
        # On the simulated clock a wait costs nothing and a slot frees on time: the wait is the one AWS would make.
        if _simulated is None:
            env.stack.append(env.stack.pop() * LOAD.factor)

    JitterStrategyDecl._eval_body = jittered  # type: ignore[method-assign]

    # A state machine's own TimeoutSeconds is read apart from its states': without this, a playbook started in a
    # storm timed out waiting its turn on the emulator (block-ip's 300 s), failing executions AWS would finish.
    original_program_eval = Program.eval

    def program_eval(self: Any, env: Any) -> None:
        if self.timeout_seconds is None or LOAD.factor == 1.0:
            return original_program_eval(self, env)
        stretched = copy.copy(self)
        stretched.timeout_seconds = moto_timeout.TimeoutSeconds(int(self.timeout_seconds.timeout_seconds * LOAD.factor))
        return original_program_eval(stretched, env)

    Program.eval = program_eval  # type: ignore[method-assign]


def _answer_request_response_tasks_in_the_states_thread() -> None:
    """moto runs every task in a thread of its own, which it waits for with the state's TimeoutSeconds, so that a task
    still running at its timeout fails States.Timeout while it runs on: a thread start, an Event and a join per task
    (5% of a block-ip run), and one more thread kept in moto's TMP_THREADS each time. A request-response task (a
    Lambda invoke, a DynamoDB or SNS call: neither .sync nor .waitForTaskToken) runs in the state's own thread instead
    and fails States.Timeout if it took longer than the (load-stretched) timeout, once it returns; what it did stays
    done, as in moto's thread. A task that waits for something (a token, a child execution) runs as moto runs it,
    where its timeout ends the wait."""
    original = moto_execute_state.ExecutionState._evaluate_with_timeout
    task_service: Any = moto_task_service.StateTaskService

    def evaluate_with_timeout(self: Any, env: Any) -> None:
        if not isinstance(self, task_service) or self.resource.condition is not None:
            return original(self, env)
        # moto 5.2.5's ExecutionState._evaluate_with_timeout, with _exec_and_notify called rather than started.
        self.timeout.eval(env=env)
        timeout_seconds: int = env.stack.pop()
        frame: Any = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = moto_execute_state.copy.deepcopy(env.stack)  # type: ignore[attr-defined]  # the JSON copy
        started = _task_clock()
        try:
            self._eval_execution(frame)
            execution_outputs = list(frame.stack)
        finally:
            frame.set_ended()
            env.close_frame(frame)
        if _task_clock() - started > timeout_seconds:
            raise moto_timeout.EvalTimeoutError()
        execution_output = execution_outputs.pop()
        env.stack.append(execution_output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(execution_output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    evaluate_with_timeout.original = original  # type: ignore[attr-defined]
    moto_execute_state.ExecutionState._evaluate_with_timeout = evaluate_with_timeout  # type: ignore[method-assign]


def _simulate_wait_states() -> None:
    """A Wait state waits on an event moto sets when the execution stops; on the simulated clock it parks instead."""
    original = WaitFunction._wait_interval

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        simulated = _simulated
        if simulated is None or not simulated.takes_part():
            return original(self, env, wait_seconds)
        simulated.sleep(wait_seconds)
        return None

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]


def _pass_task_failure_cause() -> None:
    """moto's SendTaskFailure handler drops `cause`, which a Catch reads as `$states.errorOutput.Cause`."""

    def send_task_failure(self: Any) -> EmptyResult:
        backend = self.stepfunction_backend
        arguments = {"error": self._get_param("error")}
        # Only the interpreter's backend takes a cause; plain mock_aws (unit tests) keeps moto's no-op one.
        if isinstance(backend, StepFunctionsParserBackend):
            arguments["cause"] = self._get_param("cause")
        backend.send_task_failure(self._get_param("taskToken"), **arguments)
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]


def run_ecs_tasks_as_aws() -> None:
    """Two gaps in moto 5.2.5's ECS: an awsvpc task's RunTask reads the new interface's private_dns_name, which moto
    sets only in a VPC with DNS hostnames on (AttributeError otherwise); and a task moves one status on (RUNNING,
    DEACTIVATING, ..., STOPPED) at every DescribeTasks, where ECS keeps it RUNNING until it is stopped."""
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.moto_api import state_manager

    NetworkInterface.private_dns_name = None  # type: ignore[assignment]
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": sys.maxsize})


def stop_discarding_data(mock: Any) -> None:
    """Stop a started mock_aws; when no other is running, discard moto's data without rebuilding it first.

    moto's own stop resets every backend a run loaded and then drops them all. Most backends reset by building
    themselves again, defaults included (EC2's default VPC and 1,300 images, Auto Scaling's EC2 backend): most of an
    engine's exit, for objects nothing refers to once dropped. Those are dropped as they are; a backend with a reset
    of its own (S3 gives back bucket names and closes files) still runs it. The next mock_aws starts from empty
    backends, as before.
    """
    mock.stop(remove_data=False)
    if moto_core_models.MockAWS._nested_count:
        return  # an outer mock_aws still runs on this data
    rebuild = moto_base_backend.BaseBackend.reset
    with moto_base_backend.backend_lock:
        loaded = moto_base_backend.BackendDict._instances  # type: ignore[misc]
        for backends in loaded:
            for backend in (backend for regions in backends.values() for backend in regions.values()):
                if type(backend).reset is not rebuild:
                    backend.reset()
            backends.clear()
        loaded.clear()
    moto_custom_responses.reset_responses_mock(moto_core_models.responses_mock)
    moto_model_instances.reset_model_data()


# --- the engine's clock --------------------------------------------------------------------------------------------

_real_sleep = time.sleep
_task_clock = time.monotonic  # a request-response task's real duration, against its TimeoutSeconds
_real_condition_wait = threading.Condition.wait
_real_condition_notify = threading.Condition.notify
_real_thread_join = threading.Thread.join
_real_thread_start = threading.Thread.start
_allocate_lock = _thread.allocate_lock


class CappedClock:
    """The time module as a retrying caller sees it, with every sleep cut to at most `cap` seconds.

    Given to the modules that wait out retry back-offs (botocore's endpoint, the ASL Retry of moto's interpreter):
    every retry still happens, in order and against the same faults, without the test sleeping through the waits.
    """

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.slept = 0.0  # what the callers asked for, in seconds

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        _real_sleep(min(seconds, self.cap))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class SimulatedClock(CappedClock):
    """The time module as the engine's waiting code sees it, on a clock that jumps instead of waiting.

    Every thread started while the clock runs takes part (the executions' workers, their tasks, the stream
    poller). A sleep parks the thread until the clock reaches its end; when every taking part thread is parked
    (or blocked on a condition or a join, waiting for another), the clock jumps at once to the earliest end. Work
    takes no simulated time, as if each execution had AWS's compute to itself; waits take exactly what AWS would
    take. Whoever lets a waiting thread go counts it running first (the jump, a wake, a condition's notify, the end
    of a thread it joins), so the clock never sees every thread parked while one it woke has yet to run. A state's
    TimeoutSeconds stays a real timeout, stretched under load as before (moto waits on a thread for a task that
    waits; a request-response task is judged by its real duration when it returns). Threads that do not take part
    (the engine's own, a test's servers) sleep in real time, capped like the test clock's, and read the simulated
    time.
    """

    STALL_SECONDS = 2.0  # a thread that neither parks nor finishes for this long (real) is jumped past
    IDLE_LOOK_SECONDS = 0.05  # while threads run, the ticker still looks this often (for the stall check)

    def __init__(self, cap: float = 0.01) -> None:
        super().__init__(cap)
        self._cond = threading.Condition(threading.Lock())
        # The ticker waits here (same lock) for the last taking-part thread to park, rather than looking every check.
        self._idle = threading.Condition(self._cond._lock)  # type: ignore[attr-defined]
        self._now = 0.0
        self._epoch, self._origin = time.time(), time.monotonic()
        self._active = 0
        self._held = 0
        self._parked: list[tuple[float, int, list[bool]]] = []
        self._wakeable: dict[str, list[list[bool]]] = {}
        # The lock each taking-part thread blocked in a Condition.wait waits on; a notify that releases it claims it.
        self._waiting_locks: set[Any] = set()
        # Each taking-part thread that has not ended, with the claims of the taking-part threads joining it.
        self._joined: dict[threading.Thread, list[list[bool]]] = {}
        self._order = itertools.count()
        self._changes = 0
        self._running = False
        self._ticker: threading.Thread | None = None
        self._local = threading.local()
        self.jumps = 0
        self.stalls = 0
        self.ended: dict[str, float] = {}  # execution ARN -> simulated second it ended

    # the time module's face
    def time(self) -> float:
        return self._epoch + self._now

    def monotonic(self) -> float:
        return self._origin + self._now

    def elapsed(self) -> float:
        """Simulated seconds since the clock was made."""
        return self._now

    def sleep(self, seconds: float, wake: str | None = None, unless: Callable[[], bool] | None = None) -> None:
        """Park until the clock has moved on by seconds; or, given wake, until wake(wake) if that comes first; not at
        all if unless() is true when it would park (a thread that does not take part sleeps in real time, capped,
        whatever wake says). Given wake, seconds may be math.inf: the clock never jumps to such a sleep's end."""
        if not self.takes_part():
            super().sleep(seconds)
            return
        if math.isinf(seconds) and wake is None:
            raise ValueError("an endless sleep needs a wake key")
        if not math.isinf(seconds):
            self.slept += max(0.0, seconds)
        if seconds <= 0:
            return
        with self._cond:
            if (wake is not None and SIGNALS.given(wake)) or (unless is not None and unless()):
                return
            woken = [False]
            if not math.isinf(seconds):
                heapq.heappush(self._parked, (self._now + seconds, next(self._order), woken))
            if wake is not None:
                self._wakeable.setdefault(wake, []).append(woken)
            self._set_active(-1)
            while not woken[0]:
                _real_condition_wait(self._cond)
            if wake is not None:
                waiting = self._wakeable.get(wake)
                if waiting is not None and woken in waiting:
                    waiting.remove(woken)
                    if not waiting:
                        del self._wakeable[wake]

    def wake(self, key: str) -> None:
        """Wake the threads parked with wake=key now, at the clock's present time (their entries stay in the queue,
        marked woken, and are dropped when the clock gets there)."""
        with self._cond:
            for woken in self._wakeable.pop(key, ()):
                if not woken[0]:
                    woken[0] = True
                    self._set_active(+1)
            self._cond.notify_all()

    def takes_part(self) -> bool:
        return bool(getattr(self._local, "part", False))

    @contextmanager
    def holding(self) -> Iterator[None]:
        """No jump while the engine's own thread sets something up (starting a storm's executions)."""
        with self._cond:
            self._held += 1
        try:
            yield
        finally:
            with self._cond:
                self._held -= 1
                self._idle.notify()

    def _set_active(self, change: int) -> None:
        # Called with the lock held.
        self._active += change
        self._changes += 1
        if self._active <= 0:
            self._idle.notify()

    # waiting for one another
    def condition_wait(self, condition: threading.Condition, timeout: float | None) -> bool:
        """CPython 3.11's Condition.wait, with the lock the thread waits on known to the clock, so that the notify that
        releases it counts the thread running before it lets it go (notified)."""
        if not condition._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError("cannot wait on un-acquired lock")
        if timeout is not None and timeout <= 0:
            return _real_condition_wait(condition, timeout)  # does not block: nothing to count
        waiter = _allocate_lock()
        waiter.acquire()
        condition._waiters.append(waiter)  # type: ignore[attr-defined]
        with self._cond:
            self._waiting_locks.add(waiter)
            self._set_active(-1)
        saved_state = condition._release_save()  # type: ignore[attr-defined]
        gotit = False
        try:
            gotit = waiter.acquire() if timeout is None else waiter.acquire(True, timeout)
            return gotit
        finally:
            with self._cond:
                if waiter in self._waiting_locks:  # not notified: its timeout passed
                    self._waiting_locks.discard(waiter)
                    self._set_active(+1)
            condition._acquire_restore(saved_state)  # type: ignore[attr-defined]
            if not gotit:
                with contextlib.suppress(ValueError):
                    condition._waiters.remove(waiter)  # type: ignore[attr-defined]

    def notified(self, condition: threading.Condition, n: int) -> None:
        """Count running the taking-part threads among the n a notify of condition is about to release."""
        with self._cond:
            for waiter in itertools.islice(condition._waiters, n):  # type: ignore[attr-defined]
                if waiter in self._waiting_locks:
                    self._waiting_locks.discard(waiter)
                    self._set_active(+1)

    def join(self, thread: threading.Thread, timeout: float | None) -> None:
        """Thread.join, counted blocked meanwhile; a taking-part thread counts its joiners running as it ends."""
        claim = [False]
        with self._cond:
            joiners = self._joined.get(thread)
            if joiners is not None:
                joiners.append(claim)
            self._set_active(-1)
        try:
            _real_thread_join(thread, timeout)
        finally:
            with self._cond:
                if not claim[0]:  # timed out, or a thread that does not take part
                    if joiners is not None and claim in joiners:
                        joiners.remove(claim)
                    self._set_active(+1)

    # running
    @contextmanager
    def running(self) -> Iterator[SimulatedClock]:
        """Take part every thread started meanwhile, and jump the clock whenever they are all parked."""
        global _simulated
        _simulated = self
        self._running = True
        self._ticker = threading.Thread(target=self._tick, name="firebreak-simulated-clock", daemon=True)
        _real_thread_start(self._ticker)
        try:
            yield self
        finally:
            with self._cond:
                self._running = False
                self._idle.notify()
            self._ticker.join()
            _simulated = None

    def _tick(self) -> None:
        seen, since = -1, time.perf_counter()
        with self._cond:
            while self._running:
                while self._parked and self._parked[0][2][0]:
                    heapq.heappop(self._parked)  # woken early (wake)
                if self._changes != seen or not self._parked or self._held:
                    seen, since = self._changes, time.perf_counter()
                stalled = time.perf_counter() - since > self.STALL_SECONDS
                if not self._parked or self._held or (self._active > 0 and not stalled):
                    # Wait to be told the last thread parked (or for the stall check's next look).
                    _real_condition_wait(self._idle, self.IDLE_LOOK_SECONDS)
                    continue
                self.stalls += self._active > 0
                self._now = max(self._now, self._parked[0][0])
                while self._parked and self._parked[0][0] <= self._now:
                    _, _, woken = heapq.heappop(self._parked)
                    if not woken[0]:
                        woken[0] = True
                        self._set_active(+1)
                self.jumps += 1
                since = time.perf_counter()
                self._cond.notify_all()

    def _thread_starts(self, thread: threading.Thread) -> None:
        run = thread.run

        def taking_part() -> None:
            self._local.part = True
            try:
                run()
            finally:
                with self._cond:
                    # Its joiners run on before it stops counting, so the clock never sees a gap between them.
                    for claim in self._joined.pop(thread, ()):
                        claim[0] = True
                        self._set_active(+1)
                    self._set_active(-1)

        thread.run = taking_part  # type: ignore[method-assign]
        with self._cond:
            self._joined[thread] = []
            self._set_active(+1)

    def _thread_failed_to_start(self, thread: threading.Thread) -> None:
        with self._cond:
            self._joined.pop(thread, None)
            self._set_active(-1)


_simulated: SimulatedClock | None = None


def _start(thread: threading.Thread) -> None:
    clock = _simulated
    if clock is not None and thread is not clock._ticker:
        clock._thread_starts(thread)
        try:
            _real_thread_start(thread)
        except BaseException:
            clock._thread_failed_to_start(thread)
            raise
        return
    _real_thread_start(thread)


def _parking(clock: SimulatedClock | None) -> bool:
    return clock is not None and clock.takes_part()


def _wait(condition: threading.Condition, timeout: float | None = None) -> bool:
    clock = _simulated
    if not _parking(clock) or condition is clock._cond:  # type: ignore[union-attr]
        return _real_condition_wait(condition, timeout)
    assert clock is not None
    return clock.condition_wait(condition, timeout)


def _notify(condition: threading.Condition, n: int = 1) -> None:
    clock = _simulated
    # The clock's own conditions are notified with its lock held, and they wake nobody it counts.
    if (
        clock is not None
        and clock._waiting_locks
        and condition is not clock._idle
        and condition is not clock._cond
        and condition._is_owned()  # type: ignore[attr-defined]
    ):
        clock.notified(condition, n)
    _real_condition_notify(condition, n)


def _join(thread: threading.Thread, timeout: float | None = None) -> None:
    clock = _simulated
    if not _parking(clock):
        return _real_thread_join(thread, timeout)
    assert clock is not None
    clock.join(thread, timeout)


Clock = Any  # the time module, or a stand-in with its sleep, time and monotonic
_clock: Clock = time


def clock() -> Clock:
    """The clock the engine's waiting code reads now: the time module, or the simulated clock of a running storm."""
    return _clock


def _waiting_modules() -> list[Any]:
    """Where the code that waits (sleeps, polls, backs off) finds `time`: moto's ASL Retry, .sync polling and Wait,
    botocore's retry back-off, and the block list's poll and writer."""
    import botocore.endpoint

    modules: list[Any] = [retrier_decl, state_task_service_callback, botocore.endpoint]
    for name in ("firebreak.blocking.block", "firebreak.blocking.writer"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # the layer is not on the path (a bare runtime test)
            continue
    return modules


@contextmanager
def simulated_time(clock_: SimulatedClock | None = None) -> Iterator[SimulatedClock]:
    """Run the engine's waits on a simulated clock until the block ends (one at a time per process)."""
    global _clock
    simulated = clock_ or SimulatedClock()
    modules = _waiting_modules()
    saved = [(module, module.time) for module in modules]
    threading.Thread.start = _start  # type: ignore[method-assign,assignment]
    threading.Condition.wait = _wait  # type: ignore[method-assign,assignment]
    threading.Condition.notify = _notify  # type: ignore[method-assign,assignment]
    threading.Thread.join = _join  # type: ignore[method-assign,assignment]
    _clock = simulated
    try:
        for module in modules:
            module.time = simulated
        with simulated.running():
            yield simulated
    finally:
        _clock = time
        for module, original in saved:
            module.time = original
        threading.Thread.start = _real_thread_start  # type: ignore[method-assign]
        threading.Condition.wait = _real_condition_wait  # type: ignore[method-assign]
        threading.Condition.notify = _real_condition_notify  # type: ignore[method-assign]
        threading.Thread.join = _real_thread_join  # type: ignore[method-assign]


# Given (repeatedly, through SimulatedClock.wake) whenever a table's stream gets a record: the engine's stream poller
# waits for it on the simulated clock instead of looking 4 times a simulated second while nothing comes.
STREAM_WRITTEN = "firebreak-stream-written"
_stream_writes = itertools.count()
_stream_written = 0


def stream_writes() -> int:
    """How many stream records every table's streams have had so far."""
    return _stream_written


def _announce_stream_records() -> None:
    from moto.dynamodb.models.table import StreamShard

    original = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        global _stream_written
        original(self, old, new)
        _stream_written = next(_stream_writes) + 1
        simulated = _simulated
        if simulated is not None:
            simulated.wake(STREAM_WRITTEN)

    StreamShard.add = add  # type: ignore[method-assign]


def stream_records(stream_arn: str, position: int) -> tuple[list[dict[str, Any]], int]:
    """The stream's records from position on, as GetRecords lists them, and the position after them.

    Read off moto's shard: through the API each record (the whole item, twice for NEW_AND_OLD_IMAGES) was
    serialised by moto and parsed again by botocore, a fifth of a storm's engine time.
    """
    from moto.dynamodb.models import dynamodb_backends

    _, _, _, region, account, resource = stream_arn.split(":", 5)
    table = dynamodb_backends[account][region].get_table(resource.split("/")[1])
    shard = table.stream_shard
    items = list(shard.items[position:]) if shard is not None else []
    return [item.to_json() for item in items], position + len(items)


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """An execution's history events as GetExecutionHistory lists them, read off moto's interpreter: through the
    API the engine's reading of every execution's history was serialised and parsed again, a storm's largest cost
    after the streams."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _, _, _, region, account, _ = execution_arn.split(":", 5)
    output = stepfunctions_parser_backends[account][region].get_execution_history(execution_arn)
    events: list[dict[str, Any]] = [dict(event) for event in output.get("events") or ()]
    return events


def waits_for_task_token(execution_arn: str) -> bool:
    """Whether the execution's latest history event is a submitted `.waitForTaskToken` task, read off moto's
    interpreter without copying its history (the engine asks it of every execution it waits for, at every look)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _, _, _, region, account, _ = execution_arn.split(":", 5)
    execution: Any = stepfunctions_parser_backends[account][region].describe_execution(execution_arn)
    env = execution.exec_worker.env if execution.exec_worker is not None else None
    if env is None:
        return False
    manager = env.event_manager
    with manager._mutex:
        last = manager._history_event_list[-1] if manager._history_event_list else None
        if last is None or last["type"] != "TaskSubmitted":
            return False
        return str(last["taskSubmittedEventDetails"].get("resource", "")).endswith(".waitForTaskToken")


_installed: tuple[Dispatcher, ApiCalls] | None = None
_finding_updates: list[dict[str, Any]] = []
_BATCH_UPDATE_FINDINGS = "before-send.securityhub.BatchUpdateFindings"


def finding_updates() -> list[dict[str, Any]]:
    """The BatchUpdateFindings requests answered since the last clear, oldest first."""
    return list(_finding_updates)


def clear_finding_updates() -> None:
    _finding_updates.clear()


def published(account_id: str, region: str, topic_arn: str) -> list[dict[str, Any]]:
    """Every message published to the topic, as sent: all of a structured message's per-protocol texts included."""
    from moto.sns.models import sns_backends

    topic = sns_backends[account_id][region].topics[topic_arn]
    return [
        {"subject": subject or "", "message": message, "attributes": attributes or {}}
        for _, message, subject, attributes, _ in topic.sent_notifications
    ]


def _answer_batch_update_findings(request: Any) -> AWSResponse:
    """Security Hub's answer when it accepts every finding: all processed, none unprocessed."""
    body = json.loads(request.body or b"{}")
    _finding_updates.append(body)
    answer = {"ProcessedFindings": body.get("FindingIdentifiers", []), "UnprocessedFindings": []}
    return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, MockRawResponse(json.dumps(answer)))  # type: ignore[arg-type]


_faults: Faults | None = None
# Checks AWS makes and moto does not (a role's trust policy): each may answer a call with AWS's error response.
Guard = Callable[[str, Any], AWSResponse | None]
_guards: list[Guard] = []


def add_guard(guard: Guard) -> None:
    """Consult guard(event_name, request) on every call moto would serve, after the injected faults."""
    _guards.append(guard)


def remove_guard(guard: Guard) -> None:
    if guard in _guards:
        _guards.remove(guard)


def _consult_guards(event_name: str, request: Any) -> AWSResponse | None:
    for guard in list(_guards):
        refused = guard(event_name, request)
        if refused is not None:
            return refused
    return None


def fault_injector() -> Faults:
    """The faults every engine shares (install() first): a test injects an AWS error through it."""
    assert _faults is not None, "runtime.install() has not run"
    return _faults


def install() -> tuple[Dispatcher, ApiCalls]:
    """Patch moto once per process; returns the dispatcher and the API-call counter every engine shares."""
    global _installed
    if _installed is not None:
        return _installed
    if moto.__version__ != PINNED_MOTO:
        raise RuntimeError_(f"the local engine is written against moto {PINNED_MOTO}, found {moto.__version__}")
    # What is imported by now (moto, botocore, boto3: over a million objects) lives as long as the process. Left to
    # the collector, each full collection walked all of it, a quarter of the first engine's start: frozen, it is
    # never walked again (objects still go when nothing refers to them; only cycles among them would stay).
    gc.freeze()
    # A run allocates containers by the hundred thousand (JSON copies, botocore's request dicts), nearly all freed at
    # once by reference counting; at CPython's default the youngest generation was still collected every 700, a
    # dozen times a block-ip run, each pass promoting survivors towards the older generations' (5 ms of 90).
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *gc.get_threshold()[1:])
    global _faults
    dispatcher, calls = Dispatcher(), ApiCalls()
    faults = _faults = Faults(is_engine_call=calls.is_quiet)
    bindings = _Bindings()
    _look_up_without_recursion()
    _dispatch_jsonata_nodes_by_type()
    _type_jsonata_values_directly()
    moto_jsonata._eval_jsonata = bindings.evaluate
    _take_string_results_as_strings()
    for module in (moto_jsonata, moto_states, moto_variable_store):
        module.encode_jsonata_variable_declarations = bindings.encode  # type: ignore[attr-defined]

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> Any:
        return dispatcher.invoke_as_lambda(function_name, body, response_headers)

    LambdaBackend.invoke = invoke  # type: ignore[method-assign]
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = SYNC_POLL_SECONDS  # type: ignore[misc]
    original_call = BotocoreStubber.__call__

    def counted_call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if self.enabled:
            calls.record(event_name)
            if event_name == _BATCH_UPDATE_FINDINGS:
                # The engine answers it, moto cannot; the guards still see it (the IAM coverage run records it).
                return _consult_guards(event_name, request) or _answer_batch_update_findings(request)
            injected = faults.answer(event_name, request)
            if injected is not None:
                return injected
            refused = _consult_guards(event_name, request)
            if refused is not None:
                return refused
        return original_call(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = counted_call  # type: ignore[method-assign]
    _case_sfn_arguments()
    _iso_execution_start_time()
    _name_dynamodb_errors_as_aws()
    _name_sfn_errors_as_aws()
    _output_before_status()
    _make_checked_writes_atomic()
    _parse_each_definition_once()
    _check_definitions_at_first_start()
    _share_moto_loader()
    _list_response_methods_once()
    _parse_json_paths_once()
    moto_dynamodb.install()
    _route_requests_once_per_url()
    _draw_random_strings_at_once()
    _unquote_escapes_at_once()
    _tell_sqs_the_time_directly()
    _write_json_errors_without_xml()
    _sign_without_hashing_under_moto()
    _copy_state_data_as_json()
    _draw_kms_key_pairs_when_used()
    _sign_sns_messages_with_one_key()
    _compile_url_builders_when_used()
    _reuse_task_clients()
    _stretch_timeouts_under_load()
    _answer_request_response_tasks_in_the_states_thread()
    _simulate_wait_states()
    _pass_task_failure_cause()
    _wake_parents_at_child_end()
    _announce_stream_records()
    run_ecs_tasks_as_aws()
    # The interpreter logs every caught task failure as an error; the engine reports outcomes itself.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    _installed = (dispatcher, calls)
    return _installed
