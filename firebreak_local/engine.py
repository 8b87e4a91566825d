"""The embedded local AWS: provisions template.yaml on moto in-process and runs events through its rules."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from firebreak_local import patterns, runtime
from firebreak_local.template import Stack, TemplateError, load_template
from firebreak_local.world import World

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
EXECUTION_DEADLINE_SECONDS = 60.0
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class EngineError(Exception):
    """The template asks for something the engine cannot emulate."""


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule that starts a state machine: its pattern, its InputPath and its target."""

    logical_id: str
    pattern: dict[str, Any]
    state_machine_arn: str
    input_path: str | None = None

    def deliver(self, event: Mapping[str, Any]) -> Any:
        """What EventBridge hands the target: the whole event, or the part InputPath selects."""
        if not self.input_path or self.input_path == "$":
            return event
        value: Any = event
        for key in self.input_path.removeprefix("$.").split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        return value


@dataclass
class Execution:
    """One finished execution: its status, output or failure, and every state it and its children entered."""

    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    states: list[str]
    transitions: int
    duration_ms: float
    api_calls: dict[str, int] = field(default_factory=dict)


@dataclass
class Resource:
    ref: str
    attributes: dict[str, Any] = field(default_factory=dict)


class Engine:
    """One emulated account with the stack deployed; use as a context manager."""

    def __init__(self, template_path: Path, overrides: Mapping[str, str] | None = None) -> None:
        self.template_path = template_path.resolve()
        self.root = self.template_path.parent
        self.overrides = dict(overrides or {})
        self.resources: dict[str, Resource] = {}
        self.rules: list[Rule] = []
        self.state_machines: dict[str, str] = {}
        self.environment: dict[str, str] = {}
        self._inboxes: list[str] = []
        self._notifications: list[dict[str, str]] = []
        self.dispatcher, self.api_calls = runtime.install()
        self._mock: Any = None
        self.world: World
        self._stack = Stack(
            load_template(self.template_path),
            ref=self._ref,
            get_att=self._get_att,
            overrides=self.overrides,
            region=REGION,
            account_id=ACCOUNT_ID,
            stack_name="firebreak",
        )

    def __enter__(self) -> Engine:
        os.environ.update(_FAKE_CREDENTIALS)
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        try:
            with self.api_calls.quiet():
                self._provision()
            self.world = World(self.client("ec2"), self.client("iam"))
        except BaseException:
            self._mock.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispatcher.clear_overrides()
        self._mock.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    # --- provisioning -------------------------------------------------------------------------------------------

    def _ref(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"Ref {logical_id}: not provisioned (not emulated, or referenced before creation)")
        return self.resources[logical_id].ref

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if resource is None or attribute not in resource.attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: not provided by the local engine")
        return resource.attributes[attribute]

    def _provision(self) -> None:
        for logical_id in self._stack.dependency_order():
            kind = self._stack.resources[logical_id]["Type"]
            provisioner = _PROVISIONERS.get(kind)
            if provisioner is None:
                # Not emulated (KMS policies, log groups, email subscriptions): nothing a playbook calls at run time.
                self.resources[logical_id] = Resource(ref=logical_id, attributes=_placeholder_attributes(logical_id))
                continue
            self.resources[logical_id] = provisioner(self, logical_id, self._stack.properties(logical_id))

    def _physical_name(self, logical_id: str) -> str:
        return f"firebreak-{logical_id}"

    def _table(self, logical_id: str, props: dict[str, Any]) -> Resource:
        name = props.get("TableName") or self._physical_name(logical_id)
        table = self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )["TableDescription"]
        return Resource(ref=name, attributes={"Arn": table["TableArn"]})

    def _topic(self, logical_id: str, props: dict[str, Any]) -> Resource:
        name = props.get("TopicName") or self._physical_name(logical_id)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        # A queue on every topic is how the engine reads back what the responders were told.
        sqs = self.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        self._inboxes.append(queue_url)
        return Resource(ref=arn, attributes={"TopicArn": arn, "TopicName": name})

    def _kms_key(self, logical_id: str, props: dict[str, Any]) -> Resource:
        key = self.client("kms").create_key(Description=props.get("Description", logical_id))["KeyMetadata"]
        return Resource(ref=key["KeyId"], attributes={"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def _ip_set(self, logical_id: str, props: dict[str, Any]) -> Resource:
        summary = self.client("wafv2").create_ip_set(
            Name=props.get("Name") or self._physical_name(logical_id),
            Scope=props["Scope"],
            IPAddressVersion=props["IPAddressVersion"],
            Addresses=props.get("Addresses") or [],
            Description=props.get("Description", ""),
        )["Summary"]
        ref = f"{summary['Name']}|{summary['Id']}|{props['Scope']}"
        return Resource(ref=ref, attributes={"Arn": summary["ARN"], "Id": summary["Id"]})

    def _function(self, logical_id: str, props: dict[str, Any]) -> Resource:
        name = props.get("FunctionName") or self._physical_name(logical_id)
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        code = Path(str(props["CodeUri"]).rstrip("/"))
        module_file, _, handler = str(props["Handler"]).rpartition(".")
        module = ".".join((*code.parts, module_file))
        for key, value in ((props.get("Environment") or {}).get("Variables") or {}).items():
            # One process runs every function, so their environments must agree (template Globals keep them so).
            if self.environment.setdefault(key, str(value)) != str(value):
                raise EngineError(f"{logical_id}: environment variable {key} differs from another function's")
            os.environ[key] = str(value)
        self.dispatcher.register(runtime.FunctionSpec(name=name, arn=arn, module=module, handler=handler))
        return Resource(ref=name, attributes={"Arn": arn})

    def _layer(self, logical_id: str, props: dict[str, Any]) -> Resource:
        # Lambda puts a layer's content on the import path; the engine does the same with the layer's folder.
        path = str((self.root / str(props["ContentUri"])).resolve())
        if path not in sys.path:
            sys.path.append(path)
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{logical_id}:1"
        return Resource(ref=arn, attributes={"Arn": arn})

    def _state_machine(self, logical_id: str, props: dict[str, Any]) -> Resource:
        definition = (self.root / str(props["DefinitionUri"])).read_text()
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        name = props.get("Name") or self._physical_name(logical_id)
        arn = self.client("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-role",
            type=props.get("Type", "STANDARD"),
        )["stateMachineArn"]
        self.state_machines[arn] = logical_id
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") not in {"EventBridgeRule", "CloudWatchEvent"}:
                continue
            event_props = event.get("Properties") or {}
            pattern = event_props["Pattern"]
            pattern = json.loads(pattern) if isinstance(pattern, str) else pattern
            patterns.validate(pattern)
            self.rules.append(Rule(logical_id + event_name, pattern, arn, event_props.get("InputPath")))
        return Resource(ref=arn, attributes={"Arn": arn, "Name": name})

    # --- observing ----------------------------------------------------------------------------------------------

    def blocked_ips(self) -> list[str]:
        """Every CIDR in the stack's WAF IPSets, IPv4 and IPv6 together."""
        waf = self.client("wafv2")
        addresses: list[str] = []
        with self.api_calls.quiet():
            for logical_id in self._stack.resources_of_type("AWS::WAFv2::IPSet"):
                name, ipset_id, scope = self.resources[logical_id].ref.split("|")
                addresses += waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)["IPSet"]["Addresses"]
        return sorted(addresses)

    def notifications(self) -> list[dict[str, str]]:
        """Every message published to the stack's topics so far, oldest first."""
        sqs = self.client("sqs")
        with self.api_calls.quiet():
            for queue_url in self._inboxes:
                while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
                    for message in messages:
                        envelope = json.loads(message["Body"])
                        self._notifications.append(
                            {"subject": envelope.get("Subject") or "", "message": envelope["Message"]}
                        )
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return list(self._notifications)

    def incident_count(self) -> int:
        """Items in the tables keyed by incident_id (other tables, such as the block list, hold no incidents)."""
        dynamodb = self.client("dynamodb")
        with self.api_calls.quiet():
            return sum(
                dynamodb.scan(TableName=self.resources[logical_id].ref, Select="COUNT")["Count"]
                for logical_id, resource in self._stack.resources_of_type("AWS::DynamoDB::Table").items()
                if [key["AttributeName"] for key in resource["Properties"]["KeySchema"]] == ["incident_id"]
            )

    # --- running ------------------------------------------------------------------------------------------------

    def matching_rule(self, event: Mapping[str, Any]) -> Rule | None:
        return next((rule for rule in self.rules if patterns.matches(rule.pattern, event)), None)

    def start(self, rule: Rule, event: Mapping[str, Any]) -> Execution:
        """Start the rule's target as EventBridge would, and wait (bounded) for it and its children to finish.

        The account is first given what the finding names, and the target gets the event with the finding's ids made
        the emulator's; the output and cause come back with the finding's ids.
        """
        self.api_calls.take()
        arn, started = self._launch(rule, event)
        description = self._wait(arn, started, EXECUTION_DEADLINE_SECONDS)
        duration_ms = (time.perf_counter() - started) * 1000
        return self._finished(arn, description, duration_ms, dict(self.api_calls.take()))

    def start_many(self, runs: Sequence[tuple[Rule, Mapping[str, Any]]]) -> list[Execution]:
        """Start every run at once (a finding storm), then wait (bounded, all together) for each to finish.

        Executions overlap, so their API calls cannot be told apart: each gets none, and the batch's stay in
        `api_calls` for the caller to take(). Timeouts and the deadline stretch with the load (runtime.Load).
        """
        self.api_calls.take()
        with runtime.LOAD.shared_by(len(runs)) as factor:
            launched = [self._launch(rule, event) for rule, event in runs]
            batch_started = launched[0][1] if launched else time.perf_counter()
            deadline = EXECUTION_DEADLINE_SECONDS * factor
            waited = [(arn, self._wait(arn, batch_started, deadline)) for arn, _ in launched]
        return [self._finished(arn, description, _run_time_ms(description), {}) for arn, description in waited]

    def invoke(self, logical_id: str, payload: Mapping[str, Any]) -> Any:
        """Invoke one of the template's functions directly, as a schedule would (the engine runs no schedules)."""
        name = self.resources[logical_id].ref
        headers: dict[str, str] = {}
        body = self.dispatcher.invoke(name, json.dumps(payload), headers)
        if body is None:
            raise EngineError(f"{logical_id} is not a function of this stack")
        result = json.loads(body)
        if headers.get("x-amz-function-error"):
            raise EngineError(f"{logical_id} failed: {result.get('errorType')}: {result.get('errorMessage')}")
        return result

    def _launch(self, rule: Rule, event: Mapping[str, Any]) -> tuple[str, float]:
        sfn = self.client("stepfunctions")
        with self.api_calls.quiet():
            delivered = rule.deliver(self.world.seed(event))
        started = time.perf_counter()
        with self.api_calls.quiet():
            arn = sfn.start_execution(
                stateMachineArn=rule.state_machine_arn, name=str(uuid.uuid4()), input=json.dumps(delivered)
            )["executionArn"]
        return arn, started

    def _finished(
        self, arn: str, description: dict[str, Any], duration_ms: float, api_calls: dict[str, int]
    ) -> Execution:
        with self.api_calls.quiet():
            states, transitions = self._entered_states(arn)
        failed = description["status"] != "SUCCEEDED"
        return Execution(
            arn=arn,
            status=description["status"],
            output=self.world.restore(json.loads(description["output"])) if description.get("output") else None,
            error=description.get("error") if failed else None,
            cause=self.world.restore(description.get("cause")) if failed else None,
            states=states,
            transitions=transitions,
            duration_ms=duration_ms,
            api_calls=api_calls,
        )

    def _wait(self, arn: str, started: float, deadline_seconds: float) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        delay = 0.002
        while True:
            with self.api_calls.quiet():
                description: dict[str, Any] = sfn.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING":
                return description
            if time.perf_counter() - started > deadline_seconds:
                with self.api_calls.quiet():
                    sfn.stop_execution(executionArn=arn, error="Firebreak.LocalTimeout", cause="execution hung")
                return {**description, "status": "TIMED_OUT", "error": "Firebreak.LocalTimeout", "cause": "hung"}
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _entered_states(self, arn: str) -> tuple[list[str], int]:
        """States entered in order, a child execution's spliced in after the state that ran it."""
        events = self.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
        states: list[str] = []
        transitions = 0
        for event in events:
            if event["type"].endswith("StateEntered"):
                states.append(event["stateEnteredEventDetails"]["name"])
                transitions += 1
            elif event["type"] == "TaskSucceeded":
                output = json.loads(event["taskSucceededEventDetails"].get("output") or "{}")
                child = output.get("ExecutionArn") if isinstance(output, dict) else None
                if child:
                    child_states, child_transitions = self._entered_states(child)
                    states += child_states
                    transitions += child_transitions
            elif event["type"] == "TaskFailed":
                cause = event["taskFailedEventDetails"].get("cause") or ""
                child = _child_arn_in(cause)
                if child:
                    child_states, child_transitions = self._entered_states(child)
                    states += child_states
                    transitions += child_transitions
        return states, transitions


def _run_time_ms(description: Mapping[str, Any]) -> float:
    """How long the service says an execution ran; the engine saw it end only when it got round to asking."""
    start, stop = description.get("startDate"), description.get("stopDate")
    return (stop - start).total_seconds() * 1000 if start and stop else 0.0


def _child_arn_in(cause: str) -> str | None:
    try:
        value = json.loads(cause)
    except ValueError:
        return None
    return value.get("executionArn") if isinstance(value, dict) else None


def _placeholder_attributes(logical_id: str) -> dict[str, Any]:
    arn = f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
    return {"Arn": arn, "Name": logical_id, "Id": logical_id, "TopicName": logical_id}


_PROVISIONERS: dict[str, Callable[[Engine, str, dict[str, Any]], Resource]] = {
    "AWS::DynamoDB::Table": Engine._table,
    "AWS::SNS::Topic": Engine._topic,
    "AWS::KMS::Key": Engine._kms_key,
    "AWS::WAFv2::IPSet": Engine._ip_set,
    "AWS::Serverless::Function": Engine._function,
    "AWS::Serverless::LayerVersion": Engine._layer,
    "AWS::Serverless::StateMachine": Engine._state_machine,
}


@contextmanager
def engine(template_path: Path, overrides: Mapping[str, str] | None = None) -> Iterator[Engine]:
    with Engine(template_path, overrides) as running:
        yield running
