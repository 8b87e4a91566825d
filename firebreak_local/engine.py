"""The embedded local AWS: provisions template.yaml on moto in-process and runs events through its rules.

The stack runs in the security account of an emulated organization; every other account an event names joins it,
with the member stack (member.yaml's roles), before its first event.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import math
import os
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from firebreak_local import moto_data, patterns, runtime
from firebreak_local.moto_data import MotoData
from firebreak_local.organization import AssumeRoleCheck, Organization, Refusal, deploy_member_stack
from firebreak_local.template import Stack, Template, TemplateError, load_template
from firebreak_local.world import World, finding_places

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# What the stack's StackSet deploys to every member account, beside template.yaml.
MEMBER_TEMPLATE = "member.yaml"
_ACCOUNT_ID = re.compile(r"\d{12}")
EXECUTION_DEADLINE_SECONDS = 60.0
# A stream consumer with a batching window is polled while executions run (block steps wait for its writes): in real
# time every 10 ms with its window cut to 20 ms, on the simulated clock as Lambda does, 4 times a second, and the
# window it sets.
LIVE_POLL_SECONDS = 0.01
LIVE_WINDOW_SECONDS = 0.02
SIMULATED_STREAM_POLL_SECONDS = 0.25
# While the engine waits for an execution, which wakes it at its end, it asks DescribeExecution this seldom (in looks
# for an approval request, every 2-20 ms).
DESCRIBE_EVERY_LOOKS = 25
# The SigV4 identity `firebreak run --approve` answers as, the way the Function URL would pass it to the function.
LOCAL_APPROVER = f"arn:aws:iam::{ACCOUNT_ID}:user/firebreak-run-approve"
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class EngineError(Exception):
    """The template asks for something the engine cannot emulate."""


class Approvals(StrEnum):
    """What the engine does when an execution waits for a person's approval."""

    REPORT = "report"  # stop waiting and report it AWAITING_APPROVAL (`firebreak run`)
    APPROVE = "approve"  # answer every request "approve" through the answer function (`firebreak run --approve`)
    WAIT = "wait"  # let it wait: the approval window and the timeout policy decide


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
    """One finished execution: its status, output or failure, and every state it and its children entered.

    api_calls and metrics (what the functions printed as EMF) are those of the run that started it, the stream
    consumer's after it included: executions started together share them.
    """

    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    states: list[str]
    transitions: int
    duration_ms: float
    api_calls: dict[str, int] = field(default_factory=dict)
    metrics: list[runtime.Metric] = field(default_factory=list)


@dataclass
class Resource:
    ref: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamConsumer:
    """A function's DynamoDB stream event source: the engine delivers new stream records after each execution."""

    function_name: str
    stream_arn: str
    batch_size: int
    position: int = 0  # the next record of the table's one shard (TRIM_HORIZON: from the first)
    # MaximumBatchingWindowInSeconds: such a consumer is polled while executions run, its FilterCriteria applied.
    window: float | None = None
    filters: tuple[dict[str, Any], ...] = ()
    retries: int = 0  # MaximumRetryAttempts of a failed batch (the engine caps "forever", -1, at 3)

    def wants(self, record: Mapping[str, Any]) -> bool:
        return not self.filters or any(patterns.matches(pattern, record) for pattern in self.filters)


class Engine:
    """One emulated organization with the stack deployed in its security account; use as a context manager.

    Accounts in without_member_role join the organization without the member stack, as accounts the StackSet has
    not reached yet; accounts in outside_organization never join it (GuardDuty's invited members, or a finding
    naming any account it likes).
    """

    def __init__(
        self,
        template_path: Path,
        overrides: Mapping[str, str] | None = None,
        without_member_role: Iterable[str] = (),
        outside_organization: Iterable[str] = (),
        simulated_time: bool = False,
    ) -> None:
        """simulated_time: runs wait on a simulated clock (runtime.SimulatedClock), kept for the engine's life."""
        self.clock = runtime.SimulatedClock() if simulated_time else None
        self.template_path = template_path.resolve()
        self.root = self.template_path.parent
        self.overrides = dict(overrides or {})
        self.without_member_role = frozenset(without_member_role)
        self.outside_organization = frozenset(outside_organization)
        named = self.without_member_role | self.outside_organization
        malformed = sorted(account for account in named if not _ACCOUNT_ID.fullmatch(account))
        if malformed:
            raise EngineError(f"without_member_role: {', '.join(malformed)} is not a 12-digit account id")
        self.organization: Organization
        self._members: dict[str, list[str]] = {}
        self._assume_role_check: AssumeRoleCheck | None = None
        self.resources: dict[str, Resource] = {}
        self.rules: list[Rule] = []
        self.state_machines: dict[str, str] = {}
        self.environment: dict[str, str] = {}
        self._inboxes: list[str] = []
        self._notifications: list[dict[str, str]] = []
        self._stream_consumers: list[StreamConsumer] = []
        self._event_inbox: str | None = None
        self._functions: list[runtime.FunctionSpec] = []
        self._import_paths: list[str] = []
        self._incident_events: list[dict[str, Any]] = []
        # Stream consumers run after the execution that wrote, as Lambda polls a stream; their failures are kept here.
        self.consumer_errors: list[dict[str, Any]] = []
        self._left_waiting: list[str] = []
        self.dispatcher, self.api_calls = runtime.install()
        runtime.clear_finding_updates()
        self.faults = runtime.fault_injector()
        self._mock: Any = None
        self._stack = Stack(
            load_template(self.template_path),
            ref=self._ref,
            get_att=self._get_att,
            overrides=self.overrides,
            region=REGION,
            account_id=ACCOUNT_ID,
            stack_name="firebreak",
        )
        # Refused before anything starts, as CloudFormation refuses a deployment (ParameterError names it).
        self._stack.template.parameters(self.overrides)

    @property
    def stack(self) -> Stack:
        """The deployed template, resolved with the engine's resources (what `make iam-check` holds calls against)."""
        return self._stack

    def __enter__(self) -> Engine:
        os.environ.update(_FAKE_CREDENTIALS)
        # Firebreak never reads images: moto's 1,300 default ones (each with a snapshot) cost every EC2 backend
        # (one per account and Region a run touches) a fifth of a second to load, and every DescribeSnapshots
        # walks their snapshots (60 ms a call).
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        # moto would act in this account whatever credentials or account a request names.
        os.environ.pop("MOTO_ACCOUNT_ID", None)
        runtime.quiet_empty_metrics_warnings()
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        try:
            # Only into an empty moto: an engine started inside a test's own mock_aws provisions beside its data.
            key = self._provisioning_key() if moto_data.empty() else None
            provisioned = _PROVISIONED.get(key) if key else None
            if provisioned is not None:
                provisioned.data.restore()
            self.organization = Organization(ACCOUNT_ID, None if provisioned else REGION)
            self._stack = replace(self._stack, overrides={**self._organization_parameters(), **self.overrides})
            self._assume_role_check = AssumeRoleCheck(self.organization)
            runtime.add_guard(self._assume_role_check)
            if provisioned is not None:
                self._take_over(provisioned)
            else:
                with self.api_calls.quiet():
                    self._provision()
                    self._observe_incident_events()
                if key:
                    _PROVISIONED[key] = self._provisioned()
                    _freeze_once("provisioned")
        except BaseException:
            self._leave_organization()
            runtime.stop_discarding_data(self._mock)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispatcher.clear_overrides()
        self.faults.clear()
        # Executions reported AWAITING_APPROVAL would otherwise wait out their window in the background.
        with self.api_calls.quiet():
            for arn in self._left_waiting:
                self.client("stepfunctions").stop_execution(executionArn=arn, cause="local run ended")
        self._leave_organization()
        runtime.stop_discarding_data(self._mock)

    @functools.cached_property
    def world(self) -> World:
        """What the accounts hold for the findings run so far; built at first use, as its EC2 client is the costliest
        to build and an engine that seeds nothing never needs it."""
        return World(
            self.client("ec2"),
            self.client("iam"),
            account=ACCOUNT_ID,
            region=REGION,
            clients=lambda service, account, region: self.client(service, account=account, region=region),
        )

    def client(self, service: str, account: str | None = None, region: str | None = None) -> Any:
        """A boto3 client acting in account (default: the security account) and region (default: the stack's).

        A member account's client is the engine's own way in (a test's setup, the world's seeding): it assumes no
        role, so no trust policy stands in its way.
        """
        return _client(service, account or ACCOUNT_ID, region or REGION)

    # --- the organization ---------------------------------------------------------------------------------------

    def _organization_parameters(self) -> dict[str, str]:
        """OrganizationId and OrganizationUnitIds of the emulated organization, where the template declares them and
        the caller has not set them: the stack runs in organization mode unless told otherwise."""
        declared = self._stack.template.body.get("Parameters") or {}
        wanted = {"OrganizationId": self.organization.id, "OrganizationUnitIds": self.organization.unit_id}
        return {name: value for name, value in wanted.items() if name in declared and name not in self.overrides}

    def _leave_organization(self) -> None:
        # Both idempotent; the refusals stay readable after the run.
        if self._assume_role_check is not None:
            runtime.remove_guard(self._assume_role_check)
            self.organization.close()

    def prepare(self, event: Mapping[str, Any]) -> None:
        """Prepare every account the event's findings are about (prepare_account), before the event runs."""
        for account, region in finding_places(event):
            self.prepare_account(account, region)

    def prepare_account(self, account_id: str, region: str | None = None) -> None:
        """Before the first event about it: account_id joins the organization and gets the member stack (unless it is
        in without_member_role), and the world holds it and the finding's Region from now on.

        Nothing more for the security account or an account prepared before.
        """
        with self.api_calls.quiet():
            self.world.include(account_id, region)
            if account_id in (ACCOUNT_ID, *self.outside_organization) or account_id in self._members:
                return
            self.organization.join(account_id)
            if account_id in self.without_member_role:
                self._members[account_id] = []
            else:
                self._members[account_id] = self._deploy_member_stack(account_id)

    def member_roles(self, account_id: str) -> list[str]:
        """The roles the member stack created in account_id; empty for an account without it."""
        return list(self._members.get(account_id, ()))

    def member_accounts(self) -> list[str]:
        """Every member account prepared so far, in the order the events named them."""
        return list(self._members)

    def assume_role_refusals(self) -> list[Refusal]:
        """The AssumeRole calls of handlers the engine refused, oldest first."""
        return list(self._assume_role_check.refusals) if self._assume_role_check else []

    def accounts_report(self) -> dict[str, Any]:
        """Per member account: its member roles, the access keys and roles findings named there, and its network
        ACLs' deny entries (the `by_account` of the run report)."""
        accounts = dict.fromkeys([*self._members, *self.world.accounts()])
        with self.api_calls.quiet():
            return {
                account: {"member_roles": self.member_roles(account), **self.world.account_report(account)}
                for account in accounts
                if account != ACCOUNT_ID
            }

    def _deploy_member_stack(self, account_id: str) -> list[str]:
        template = self._member_template
        parameters = None if template is None else self._member_parameters(template)
        if template is None or parameters is None:
            return []
        iam = self.client("iam", account=account_id)
        return deploy_member_stack(template, parameters, account_id, REGION, iam, stack_name="StackSet-firebreak")

    @functools.cached_property
    def _member_template(self) -> Template | None:
        # Read on the first member account only: a single-account run never pays for it.
        path = self.root / MEMBER_TEMPLATE
        return load_template(path) if path.is_file() else None

    def _member_parameters(self, member: Template) -> dict[str, str] | None:
        """member.yaml's parameters as the StackSet passes them; None when the template's StackSet is inactive.

        An active AWS::CloudFormation::StackSet's Parameters are resolved against the stack; any other parameter is
        the stack's own of that name, the emulated organization's id, or `<Function>RoleArn` as Fn::GetAtt
        `<Function>Role`.Arn answers it.
        """
        declared_sets = [
            logical_id
            for logical_id, resource in self._stack.template.resources.items()
            if resource.get("Type") == "AWS::CloudFormation::StackSet"
        ]
        active_sets = self._stack.resources_of_type("AWS::CloudFormation::StackSet")
        if declared_sets and not active_sets:
            return None  # the template deploys member roles only through its StackSet, left out in this configuration
        given: dict[str, str] = {}
        for logical_id, resource in active_sets.items():
            path = f"Resources.{logical_id}.Properties.Parameters"
            entries = self._stack.resolve((resource.get("Properties") or {}).get("Parameters") or [], path)
            for entry in entries:
                if isinstance(entry, Mapping) and "ParameterKey" in entry:
                    given[str(entry["ParameterKey"])] = _parameter_text(entry.get("ParameterValue", ""))
        # A template without organization parameters still runs in the emulated organization.
        organization = {"OrganizationId": self.organization.id, "OrganizationUnitIds": self.organization.unit_id}
        values: dict[str, str] = {}
        for name in member.body.get("Parameters") or {}:
            if name in given:
                values[name] = given[name]
            elif name in self._stack.parameter_values:
                values[name] = _parameter_text(self._stack.parameter_values[name])
            elif name in organization:
                values[name] = organization[name]
            elif name.endswith("RoleArn"):
                # Computed even for a function the stack lacks: the role then trusts a principal nobody holds.
                values[name] = self._sam_role_arn(name.removesuffix("Arn"))
        return values

    def _sam_role_arn(self, role_logical_id: str) -> str:
        """The ARN of the role SAM generates for a function (`<Function>Role`), named as the engine names resources."""
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{self._physical_name(role_logical_id)}"

    def _is_sam_role(self, logical_id: str) -> bool:
        if not logical_id.endswith("Role"):
            return False
        function = self._stack.resources.get(logical_id.removesuffix("Role"))
        return (
            function is not None
            and function["Type"] == "AWS::Serverless::Function"
            and not (function.get("Properties") or {}).get("Role")
        )

    # --- provisioning -------------------------------------------------------------------------------------------

    def _ref(self, logical_id: str) -> str:
        if logical_id not in self.resources and self._is_sam_role(logical_id):
            return self._physical_name(logical_id)
        if logical_id not in self.resources:
            raise TemplateError(f"Ref {logical_id}: not provisioned (not emulated, or referenced before creation)")
        return self.resources[logical_id].ref

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if resource is None and attribute == "Arn" and self._is_sam_role(logical_id):
            return self._sam_role_arn(logical_id)
        if resource is None or attribute not in resource.attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: not provided by the local engine")
        return resource.attributes[attribute]

    def _provisioning_key(self) -> tuple[str, ...]:
        """What provisioning depends on: the template, its state machines' definitions and the parameters given."""
        template = self._stack.template
        definitions = sorted(
            str((resource.get("Properties") or {}).get("DefinitionUri", ""))
            for resource in template.resources.values()
            if resource.get("Type") == "AWS::Serverless::StateMachine"
        )
        texts = [(self.root / name).read_text() for name in definitions if name and (self.root / name).is_file()]
        overrides = json.dumps(self.overrides, sort_keys=True)
        return (str(self.template_path), self.template_path.read_text(), *definitions, *texts, overrides)

    def _provisioned(self) -> _Provisioned:
        return _Provisioned(
            MotoData.take(),
            dict(self.resources),
            tuple(self.rules),
            dict(self.state_machines),
            dict(self.environment),
            tuple(self._inboxes),
            self._event_inbox,
            # Copies: this engine moves its consumers' positions on as it reads.
            tuple(replace(consumer) for consumer in self._stream_consumers),
            tuple(self._functions),
            tuple(self._import_paths),
        )

    def _take_over(self, provisioned: _Provisioned) -> None:
        """Become the engine that provisioned: its resources, rules and functions, on the copy of its data."""
        self.resources = dict(provisioned.resources)
        self.rules = list(provisioned.rules)
        self.state_machines = dict(provisioned.state_machines)
        self.environment = dict(provisioned.environment)
        os.environ.update(self.environment)
        self._inboxes = list(provisioned.inboxes)
        self._event_inbox = provisioned.event_inbox
        # Each engine reads its streams from the start of its own copy of the tables.
        self._stream_consumers = [replace(consumer) for consumer in provisioned.stream_consumers]
        for spec in provisioned.functions:
            self.dispatcher.register(spec)
        self._functions = list(provisioned.functions)
        for path in provisioned.import_paths:
            _import_from(path, first=path == str(self.root))

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
        stream = props.get("StreamSpecification")
        table = self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            **({"StreamSpecification": {"StreamEnabled": True, **stream}} if stream else {}),
        )["TableDescription"]
        if props.get("TimeToLiveSpecification"):
            # Recorded only: moto never expires items, so code must check expiry itself (as DynamoDB's lag demands).
            self.client("dynamodb").update_time_to_live(
                TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"]
            )
        attributes = {"Arn": table["TableArn"]}
        if stream:
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Resource(ref=name, attributes=attributes)

    def _ssm_parameter(self, logical_id: str, props: dict[str, Any]) -> Resource:
        name = props.get("Name") or self._physical_name(logical_id)
        self.client("ssm").put_parameter(Name=name, Type=props.get("Type", "String"), Value=str(props["Value"]))
        return Resource(ref=name, attributes={"Type": props.get("Type", "String"), "Value": str(props["Value"])})

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

    def _secret(self, logical_id: str, props: dict[str, Any]) -> Resource:
        # GenerateSecretString's character rules matter only in AWS; locally any random key signs as well.
        name = props.get("Name") or self._physical_name(logical_id)
        value = props.get("SecretString") or secrets.token_urlsafe(48)
        arn = self.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return Resource(ref=arn, attributes={"Id": arn})

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

    def _action_target(self, logical_id: str, props: dict[str, Any]) -> Resource:
        # Custom action events name the target's ARN in `resources`, so rules match on it: give the real form.
        arn = f"arn:aws:securityhub:{REGION}:{ACCOUNT_ID}:action/custom/{props['Id']}"
        return Resource(ref=arn, attributes={"Arn": arn})

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> Resource:
        name = props.get("BucketName") or self._physical_name(logical_id).lower()
        self.client("s3").create_bucket(Bucket=name)
        return Resource(ref=name, attributes={"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"})

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
        # Lambda's default timeout is 3 s; the template's Globals give every function its own.
        timeout = int(props.get("Timeout", 3))
        reserved = props.get("ReservedConcurrentExecutions")
        role = props.get("Role")
        role_arn = str(role) if role else self._sam_role_arn(f"{logical_id}Role")
        spec = runtime.FunctionSpec(
            name, arn, module, handler, timeout, None if reserved is None else int(reserved), role_arn
        )
        self.dispatcher.register(spec)
        self._functions.append(spec)
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "DynamoDB":
                event_props = event.get("Properties") or {}
                window = event_props.get("MaximumBatchingWindowInSeconds")
                filters = ((event_props.get("FilterCriteria") or {}).get("Filters") or []) if window is not None else []
                consumer = StreamConsumer(
                    name,
                    str(event_props["Stream"]),
                    int(event_props.get("BatchSize", 100)),
                    window=None if window is None else float(window),
                    filters=tuple(json.loads(item["Pattern"]) for item in filters),
                    retries=min(3, retries)
                    if (retries := int(event_props.get("MaximumRetryAttempts", -1))) >= 0
                    else 3,
                )
                self._stream_consumers.append(consumer)
        return Resource(ref=name, attributes={"Arn": arn})

    def _observe_incident_events(self) -> None:
        """A catch-all rule for Firebreak's own events on the default bus, delivered to a queue the engine reads."""
        sqs, events = self.client("sqs"), self.client("events")
        self._event_inbox = sqs.create_queue(QueueName="firebreak-incident-events-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._event_inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="firebreak-engine-observer", EventPattern=json.dumps({"source": ["firebreak"]}))
        events.put_targets(Rule="firebreak-engine-observer", Targets=[{"Id": "inbox", "Arn": queue_arn}])

    def _layer(self, logical_id: str, props: dict[str, Any]) -> Resource:
        # Lambda puts a layer's content on the import path; the engine does the same with the layer's folder.
        path = str((self.root / str(props["ContentUri"])).resolve())
        _import_from(path, first=False)
        _import_from(str(self.root), first=True)
        self._import_paths += [path, str(self.root)]
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

    def incident_events(self) -> list[dict[str, Any]]:
        """Every Firebreak event put on the default bus so far (the incident status changes), oldest first."""
        if self._event_inbox is None:
            return []
        sqs = self.client("sqs")
        with self.api_calls.quiet():
            while messages := sqs.receive_message(QueueUrl=self._event_inbox, MaxNumberOfMessages=10).get("Messages"):
                for message in messages:
                    self._incident_events.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=self._event_inbox, ReceiptHandle=message["ReceiptHandle"])
        return list(self._incident_events)

    def published(self) -> list[dict[str, Any]]:
        """Every message the stack published to its topics, as sent (the per-protocol texts of a structured one)."""
        return [
            message
            for logical_id in self._stack.resources_of_type("AWS::SNS::Topic")
            for message in runtime.published(ACCOUNT_ID, REGION, self.resources[logical_id].ref)
        ]

    def finding_updates(self) -> list[dict[str, Any]]:
        """Every Security Hub BatchUpdateFindings request the stack made (the engine answers them; moto cannot)."""
        return list(runtime.finding_updates())

    def record(self, incident_id: str) -> dict[str, Any] | None:
        """The incident's item as plain data, or None."""
        from firebreak.incident.records import plain

        with self.api_calls.quiet():
            item = (
                self.client("dynamodb")
                .get_item(TableName=self.resources["IncidentTable"].ref, Key={"incident_id": {"S": incident_id}})
                .get("Item")
            )
        return plain(item) if item else None

    def incident_count(self) -> int:
        """Items in the tables keyed by incident_id (not caches, pending approvals and other tables)."""
        dynamodb = self.client("dynamodb")
        tables = self._stack.resources_of_type("AWS::DynamoDB::Table")
        with self.api_calls.quiet():
            return sum(
                dynamodb.scan(TableName=self.resources[logical_id].ref, Select="COUNT")["Count"]
                for logical_id, resource in tables.items()
                if any(
                    key.get("AttributeName") == "incident_id"
                    for key in (resource.get("Properties") or {}).get("KeySchema", [])
                )
            )

    def approval_requests(self, execution_arn: str) -> list[dict[str, Any]]:
        """The approval requests an execution waits on now, as the responders' notifications carry them."""
        # Only once the request has been sent (the entry is written before the notification); asked first, as it
        # reads no table: the engine asks this of every running execution it waits for.
        if not self._waits_for_callback(execution_arn):
            return []
        with self.api_calls.quiet():
            pending = {
                item["approval_id"]["S"]
                for item in self.client("dynamodb").scan(
                    TableName=self.resources["ApprovalTable"].ref,
                    FilterExpression="execution_arn = :arn",
                    ExpressionAttributeValues={":arn": {"S": execution_arn}},
                )["Items"]
            }
            if not pending:
                return []
        requests = []
        for notification in self.notifications():
            document = _json_object(notification["message"])
            request = (document.get("approval") or {}).get("request") or {}
            if request.get("approval_id") in pending:
                requests.append(document)
        return requests

    def answer_approval(self, token: str, decision: str, caller: str = LOCAL_APPROVER) -> dict[str, Any]:
        """Answer through the answer function, invoked with the Lambda API as its IAM-authenticated URL would."""
        request = {
            "version": "2.0",
            "requestContext": {"http": {"method": "POST"}, "authorizer": {"iam": {"userArn": caller}}},
            "body": json.dumps({"token": token, "decision": decision}),
            "isBase64Encoded": False,
        }
        name = self.resources["AnswerApprovalFunction"].ref
        response = self.client("lambda").invoke(FunctionName=name, Payload=json.dumps(request).encode())
        result = json.loads(response["Payload"].read())
        return {"statusCode": result.get("statusCode"), **_json_object(result.get("body") or "{}")}

    def _waits_for_callback(self, execution_arn: str) -> bool:
        """The execution's last event is a submitted .waitForTaskToken task: nothing runs until someone answers."""
        return runtime.waits_for_task_token(execution_arn)

    # --- running ------------------------------------------------------------------------------------------------

    def matching_rule(self, event: Mapping[str, Any]) -> Rule | None:
        return next((rule for rule in self.rules if patterns.matches(rule.pattern, event)), None)

    def start(self, rule: Rule, event: Mapping[str, Any], approvals: Approvals = Approvals.REPORT) -> Execution:
        """Start the rule's target as EventBridge would, and wait (bounded) for it and its children to finish.

        The account is first given what the finding names, and the target gets the event with the finding's ids made
        the emulator's; the output and cause come back with the finding's ids. An execution that waits for approval
        is answered, reported RUNNING with an AWAITING_APPROVAL report as output, or left to wait, as approvals says.
        """
        return self.start_many([(rule, event)], approvals)[0]

    def start_many(
        self, deliveries: Sequence[tuple[Rule, Mapping[str, Any]]], approvals: Approvals = Approvals.REPORT
    ) -> list[Execution]:
        """Start every delivery before waiting for any, as EventBridge does with findings that arrive together.

        The account is given what all of them name first, one after the other; the executions then run at once.
        Each execution reports the API calls of all of them.
        """
        self._forget_calls_and_metrics()
        with self.api_calls.quiet():
            for _, event in deliveries:
                self.prepare(event)
            delivered = [rule.deliver(self.world.seed(event)) for rule, event in deliveries]
        return self._run(
            [(rule.state_machine_arn, payload) for (rule, _), payload in zip(deliveries, delivered, strict=True)],
            approvals,
        )

    def run_machine(self, logical_id: str, payload: Any) -> Execution:
        """Start one of the stack's state machines directly (as its schedule would) and wait, bounded, for the end."""
        self._forget_calls_and_metrics()
        return self._run([(self.resources[logical_id].ref, payload)])[0]

    def release(self, incident_id: str) -> Execution:
        """Run the release state machine for one incident, as a person would start it."""
        return self.run_machine("ReleaseIncidentStateMachine", {"incident_id": incident_id})

    def invoke(self, logical_id: str, payload: Mapping[str, Any]) -> Any:
        """Invoke one of the template's functions directly, as a schedule would (the engine runs no schedules)."""
        name = self.resources[logical_id].ref
        headers: dict[str, str] = {}
        with self._running():
            body = self.dispatcher.invoke(name, json.dumps(payload), headers)
        if body is None:
            raise EngineError(f"{logical_id} is not a function of this stack")
        result = json.loads(body)
        if headers.get("x-amz-function-error"):
            raise EngineError(f"{logical_id} failed: {result.get('errorType')}: {result.get('errorMessage')}")
        return result

    def wait(self, arn: str, approvals: Approvals = Approvals.WAIT) -> Execution:
        """Wait (bounded) for a started execution, e.g. one reported AWAITING_APPROVAL that was answered since."""
        self._forget_calls_and_metrics()
        if arn in self._left_waiting:
            self._left_waiting.remove(arn)
        started = time.perf_counter()
        with self._running():
            description = self._wait(arn, started, EXECUTION_DEADLINE_SECONDS, approvals)
        duration_ms = (time.perf_counter() - started) * 1000
        self.drain_streams()
        return self._execution(
            arn, description, duration_ms, dict(self.api_calls.take()), self.dispatcher.metrics.take()
        )

    def _run(self, starts: Sequence[tuple[str, Any]], approvals: Approvals = Approvals.WAIT) -> list[Execution]:
        """Start executions, wait (bounded, all together) for all, then deliver the stream records their writes made.

        Many at once (a finding storm) share the emulator's one interpreter lock, so state timeouts and the deadline
        stretch with the load (runtime.Load); each execution's duration is then the service's own start-to-stop.
        """
        sfn = self.client("stepfunctions")
        arns = []
        with self._running(), runtime.LOAD.shared_by(len(starts)) as factor:
            started = time.perf_counter()
            with self.api_calls.quiet(), self._holding_the_clock():
                for state_machine_arn, payload in starts:
                    arns.append(
                        sfn.start_execution(
                            stateMachineArn=state_machine_arn, name=str(uuid.uuid4()), input=json.dumps(payload)
                        )["executionArn"]
                    )
            descriptions = [self._wait(arn, started, EXECUTION_DEADLINE_SECONDS * factor, approvals) for arn in arns]
        duration_ms = (time.perf_counter() - started) * 1000
        self.drain_streams()
        _freeze_once("ran")
        api_calls = dict(self.api_calls.take())
        metrics = self.dispatcher.metrics.take()
        return [
            self._execution(
                arn, description, duration_ms if len(arns) == 1 else _run_time_ms(description), api_calls, metrics
            )
            for arn, description in zip(arns, descriptions, strict=True)
        ]

    @contextmanager
    def _running(self) -> Iterator[None]:
        """While the stack runs: the simulated clock, if the engine has one, and the live stream consumers."""
        with contextlib.ExitStack() as stack:
            if self.clock is not None:
                stack.enter_context(runtime.simulated_time(self.clock))
            stack.enter_context(self._polling_streams())
            yield

    def _holding_the_clock(self) -> contextlib.AbstractContextManager[None]:
        return self.clock.holding() if self.clock is not None else contextlib.nullcontext()

    @contextmanager
    def _polling_streams(self) -> Iterator[None]:
        live = [consumer for consumer in self._stream_consumers if consumer.window is not None]
        if not live:
            yield
            return
        stop = threading.Event()
        # Given with stop, so that the poller's pause ends at once rather than at its next poll (or clock jump).
        stopping = f"firebreak-streams-stop-{uuid.uuid4()}"
        poller = threading.Thread(
            target=self._poll_streams, args=(live, stop, stopping), name="firebreak-streams", daemon=True
        )
        poller.start()
        try:
            yield
        finally:
            stop.set()
            runtime.SIGNALS.give(stopping)
            if self.clock is not None:
                self.clock.wake(runtime.STREAM_WRITTEN)
            poller.join()

    def _poll_streams(self, consumers: Sequence[StreamConsumer], stop: threading.Event, stopping: str) -> None:
        """Lambda's event source mapping for consumers with a batching window: once records come, it gathers more
        until the window closes or the batch is full, then invokes the function with those its filters match.

        On the simulated clock it looks at Lambda's pace (a record is seen at the next of its polls, 4 a second)
        but sleeps through the polls that would find nothing: it is woken when a stream gets a record.
        """
        clock = runtime.clock()
        simulated = self.clock is not None
        poll = SIMULATED_STREAM_POLL_SECONDS if simulated else LIVE_POLL_SECONDS
        while not stop.is_set():
            written = runtime.stream_writes()
            delivered = False
            for consumer in consumers:
                records = self._new_records(consumer)
                if not records:
                    continue
                delivered = True
                window = float(consumer.window or 0.0)
                closes = clock.monotonic() + (window if simulated else min(window, LIVE_WINDOW_SECONDS))
                while len(records) < consumer.batch_size and not stop.is_set():
                    left = closes - clock.monotonic()
                    if left <= 0:
                        break
                    if simulated:
                        seen = runtime.stream_writes()
                        self._sleep_until_written(left, seen, stop)
                    else:
                        runtime.SIGNALS.pause(min(poll, left), stopping)
                    records += self._new_records(consumer)
                wanted = [record for record in records if consumer.wants(record)]
                for start in range(0, len(wanted), consumer.batch_size):
                    batch = wanted[start : start + consumer.batch_size]
                    # A failed batch is retried, as Lambda retries a stream's batch before it moves on.
                    for attempt in range(consumer.retries + 1):
                        if self._deliver(consumer, batch, report=attempt == consumer.retries):
                            break
            if not simulated:
                runtime.SIGNALS.pause(poll, stopping)
                continue
            if not delivered:
                # Nothing came since the last look: sleep until something does (every record wakes it, and so does the
                # end of the run), then to Lambda's next poll. No bound: the clock never jumps to wake it for nothing.
                self._sleep_until_written(math.inf, written, stop)
            clock.sleep(poll - clock.elapsed() % poll, wake=stopping)

    def _sleep_until_written(self, seconds: float, written: int, stop: threading.Event) -> None:
        """On the simulated clock: up to seconds, less once a stream has more than `written` records or stop is set."""
        assert self.clock is not None
        self.clock.sleep(
            seconds,
            wake=runtime.STREAM_WRITTEN,
            unless=lambda: stop.is_set() or runtime.stream_writes() != written,
        )

    def _new_records(self, consumer: StreamConsumer) -> list[dict[str, Any]]:
        records, consumer.position = runtime.stream_records(consumer.stream_arn, consumer.position)
        return [self._stream_event_record(consumer, record) for record in records]

    def _forget_calls_and_metrics(self) -> None:
        """What came before a run (provisioning, a schedule's invoke) is not the run's."""
        self.api_calls.take()
        self.dispatcher.metrics.take()

    def _execution(
        self,
        arn: str,
        description: dict[str, Any],
        duration_ms: float,
        api_calls: dict[str, int],
        metrics: list[runtime.Metric],
    ) -> Execution:
        with self.api_calls.quiet():
            states, transitions = self._entered_states(arn)
        failed = description["status"] not in {"SUCCEEDED", "RUNNING"}
        output = json.loads(description["output"]) if description.get("output") else None
        if "awaiting_approval" in description:
            output = _awaiting_report(description["awaiting_approval"])
        return Execution(
            arn=arn,
            status=description["status"],
            output=self.world.restore(output),
            error=description.get("error") if failed else None,
            cause=self.world.restore(description.get("cause")) if failed else None,
            states=states,
            transitions=transitions,
            duration_ms=duration_ms,
            api_calls=api_calls,
            metrics=list(metrics),
        )

    def drain_streams(self, rounds: int = 20) -> None:
        """Deliver every new stream record to its consumer, as Lambda's event source mapping would, until quiet.

        A consumer's own writes make new records (the report it stores); it ignores those, so a few rounds suffice.
        """
        for _ in range(rounds):
            delivered = False
            for consumer in self._stream_consumers:
                records = [r for r in self._new_records(consumer) if consumer.window is None or consumer.wants(r)]
                for start in range(0, len(records), consumer.batch_size):
                    self._deliver(consumer, records[start : start + consumer.batch_size])
                    delivered = True
            if not delivered:
                return

    def _stream_event_record(self, consumer: StreamConsumer, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            # moto keeps it as a naive UTC datetime; Lambda hands a stream consumer epoch seconds.
            dynamodb["ApproximateCreationDateTime"] = (
                created if created.tzinfo else created.replace(tzinfo=UTC)
            ).timestamp()
        return {**record, "dynamodb": dynamodb, "eventSourceARN": consumer.stream_arn, "awsRegion": REGION}

    def _deliver(self, consumer: StreamConsumer, records: list[dict[str, Any]], report: bool = True) -> bool:
        """Invoke the consumer with one batch; whether it succeeded (a failure is kept if report)."""
        headers: dict[str, str] = {}
        body = json.dumps({"Records": records})
        answer = self.dispatcher.invoke(consumer.function_name, body, headers)
        result = json.loads(answer or b"null")
        if headers.get("x-amz-function-error"):
            if report:
                self.consumer_errors.append({"function": consumer.function_name, "error": result})
            return False
        if isinstance(result, dict) and result.get("batchItemFailures"):
            self.consumer_errors.append({"function": consumer.function_name, "failures": result["batchItemFailures"]})
        return True

    def _wait(self, arn: str, started: float, deadline_seconds: float, approvals: Approvals) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        delay = 0.002
        answered: set[str] = set()
        description: dict[str, Any] = {}
        for look in itertools.count(1):
            # Its end wakes this wait (runtime.SIGNALS): asked then, and now and again for an end that went untold,
            # but not at once: an execution just started is running.
            if look % DESCRIBE_EVERY_LOOKS == 0 or runtime.SIGNALS.given(arn):
                description = self._describe(arn)
                if description["status"] != "RUNNING":
                    return description
            requests = [] if approvals is Approvals.WAIT else self.approval_requests(arn)
            if requests and approvals is Approvals.REPORT:
                self._left_waiting.append(arn)
                return {**(description or self._describe(arn)), "awaiting_approval": requests[0]}
            for request in requests:
                if request["approval"]["request"]["approval_id"] not in answered:
                    answered.add(request["approval"]["request"]["approval_id"])
                    self.answer_approval(request["approval"]["request"]["token"], "approve")
            if time.perf_counter() - started > deadline_seconds:
                with self.api_calls.quiet():
                    sfn.stop_execution(executionArn=arn, error="Firebreak.LocalTimeout", cause="execution hung")
                return {**description, "status": "TIMED_OUT", "error": "Firebreak.LocalTimeout", "cause": "hung"}
            runtime.SIGNALS.pause(delay, arn)
            # A storm's executions end together; asking each every 20 ms cost the interpreter more than they did.
            delay = min(delay * 2, 0.02 * runtime.LOAD.factor)

        raise AssertionError("unreachable")

    def _describe(self, arn: str) -> dict[str, Any]:
        with self.api_calls.quiet():
            description: dict[str, Any] = self.client("stepfunctions").describe_execution(executionArn=arn)
        return description

    def _entered_states(self, arn: str) -> tuple[list[str], int]:
        """States entered in order, a child execution's spliced in after the state that ran it."""
        events = runtime.execution_history(arn)
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


@dataclass(frozen=True)
class _Provisioned:
    """What provisioning a template left, in moto and in its engine; the next engine with the same key starts from
    a copy of it instead of making the calls again (a few milliseconds instead of some eighty)."""

    data: MotoData
    resources: dict[str, Resource]
    rules: tuple[Rule, ...]
    state_machines: dict[str, str]
    environment: dict[str, str]
    inboxes: tuple[str, ...]
    event_inbox: str | None
    stream_consumers: tuple[StreamConsumer, ...]
    functions: tuple[runtime.FunctionSpec, ...]
    import_paths: tuple[str, ...]


# Per process, by Engine._provisioning_key: a test suite's workers each provision a template once.
_PROVISIONED: dict[tuple[str, ...], _Provisioned] = {}
_FROZEN: set[str] = set()


def _freeze_once(moment: str) -> None:
    """After a process's first provisioning, and again after its first run, what they left lives as long as the
    process: the kept copy of moto's data and the parsed definitions, then the handlers' modules (imported at their
    first invocation), Powertools and the compiled JSONata. Frozen, the collector's full passes no longer walk it;
    they cost a run 70-100 ms every tenth run. What the first engine and its first run hold is frozen with it; if
    that holds cycles they stay after that engine ends, once per process (runtime.install froze the imports too)."""
    if moment not in _FROZEN:
        _FROZEN.add(moment)
        gc.freeze()


def _import_from(path: str, first: bool) -> None:
    if path not in sys.path:
        if first:
            sys.path.insert(0, path)
        else:
            sys.path.append(path)


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


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _awaiting_report(document: Mapping[str, Any]) -> dict[str, Any]:
    """The report of an execution that waits for approval, from the request the responders were sent."""
    return {
        "incident_id": document.get("incident_id"),
        "status": "AWAITING_APPROVAL",
        "playbook": document.get("playbook"),
        "mode": document.get("mode"),
        "incident": document.get("finding"),
        "actions": document.get("actions") or [],
        "reason": (document.get("approval") or {}).get("reason"),
    }


def _placeholder_attributes(logical_id: str) -> dict[str, Any]:
    arn = f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
    return {"Arn": arn, "Name": logical_id, "Id": logical_id, "TopicName": logical_id}


_PROVISIONERS: dict[str, Callable[[Engine, str, dict[str, Any]], Resource]] = {
    "AWS::DynamoDB::Table": Engine._table,
    "AWS::SNS::Topic": Engine._topic,
    "AWS::KMS::Key": Engine._kms_key,
    "AWS::SSM::Parameter": Engine._ssm_parameter,
    "AWS::SecretsManager::Secret": Engine._secret,
    "AWS::WAFv2::IPSet": Engine._ip_set,
    "AWS::SecurityHub::ActionTarget": Engine._action_target,
    "AWS::Serverless::Function": Engine._function,
    "AWS::Serverless::LayerVersion": Engine._layer,
    "AWS::Serverless::StateMachine": Engine._state_machine,
    "AWS::S3::Bucket": Engine._bucket,
}


def _parameter_text(value: Any) -> str:
    """A parameter value as CloudFormation passes it on: a list joined by commas."""
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)


@contextmanager
def engine(
    template_path: Path, overrides: Mapping[str, str] | None = None, without_member_role: Iterable[str] = ()
) -> Iterator[Engine]:
    with Engine(template_path, overrides, without_member_role) as running:
        yield running


_clients: dict[tuple[str, str, str], Any] = {}
_clients_lock = threading.Lock()


def _client(service: str, account: str = ACCOUNT_ID, region: str = REGION) -> Any:
    """One client per service, account and region for every engine in the process: building one costs more than
    most playbook steps.

    moto intercepts below the client (a botocore handler switched on and off with each mock), and the clients carry
    only the fixed fake credentials, their region and account, so sharing them between engines and threads changes
    nothing else.
    """
    key = (service, account, region)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if service == "dynamodbstreams":
                # botocore addresses streams by account (<account>.streams-ddb...), a host moto does not serve.
                endpoint = f"https://streams.dynamodb.{region}.amazonaws.com"
                client = boto3.client("dynamodbstreams", region_name=region, endpoint_url=endpoint)
            else:
                client = boto3.client(service, region_name=region)  # type: ignore[call-overload]
            if account != ACCOUNT_ID:
                client.meta.events.register("before-sign", functools.partial(_act_in, account))
            _clients[key] = client
        return client


def _act_in(account: str, request: Any, **kwargs: Any) -> None:
    """moto's switch for the account a request acts in, read before the access key: no credentials, no IAM user."""
    request.headers["x-moto-account-id"] = account
