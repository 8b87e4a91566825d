"""Load a SAM/CloudFormation template, merge SAM Globals and resolve intrinsic functions for the local engine."""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_FUNCTIONS = ("GetAtt", "Sub", "If", "Join", "Select", "Split", "FindInMap", "Base64", "GetAZs", "Cidr", "ImportValue")
_SHORT_TAGS = ("Ref", "Condition", "Equals", "Not", "And", "Or", *_FUNCTIONS)
_INTRINSICS = frozenset({"Ref", *(f"Fn::{name}" for name in _FUNCTIONS)})
_SAM_GLOBALS = ("Function", "StateMachine", "Api", "HttpApi", "SimpleTable", "LayerVersion")
_GLOBALS_SECTION = {f"AWS::Serverless::{section}": section for section in _SAM_GLOBALS}


class TemplateError(Exception):
    """A template that cannot be loaded, resolved or ordered; the message names the logical id or path."""


# libyaml's parser reads template.yaml in a tenth of the pure-Python one's time, to the same document.
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags into their long form."""


def _short_form(tag: str) -> Callable[[_Loader, yaml.Node], dict[str, Any]]:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: _Loader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


def _timestamp_as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


for _tag in _SHORT_TAGS:
    _Loader.add_constructor(f"!{_tag}", _short_form(_tag))
# CloudFormation reads `Version: 2012-10-17` (IAM policies) and `AWSTemplateFormatVersion` as strings, not dates.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _single(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, dict) and len(value) == 1:
        key, arg = next(iter(value.items()))
        if isinstance(key, str):
            return key, arg
    return None


def _call(value: Any) -> tuple[str, Any] | None:
    single = _single(value)
    return single if single and (single[0] == "Ref" or single[0].startswith("Fn::")) else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _merge(global_value: Any, local_value: Any) -> Any:
    # SAM treats an intrinsic function as an opaque scalar, so it overrides instead of merging key-wise.
    mergeable = _call(global_value) is None and _call(local_value) is None
    if mergeable and isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def _apply_globals(raw: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(raw)
    sections = body.pop("Globals", None) or {}
    for logical_id, resource in body["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise TemplateError(f"Resources.{logical_id}: a resource must be a mapping with a Type")
        defaults = sections.get(_GLOBALS_SECTION.get(resource["Type"], ""))
        if defaults:
            resource["Properties"] = _merge(copy.deepcopy(defaults), resource.get("Properties") or {})
    return body


def load_template(path: Path) -> Template:
    """Read a SAM/CloudFormation YAML or JSON template and merge its SAM Globals into the resources."""
    try:
        # A copy of the document parsed from the same text before: every engine of a test run reads template.yaml.
        raw = copy.deepcopy(_parsed(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        raise TemplateError(f"{path}: invalid YAML: {error}") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict):
        raise TemplateError(f"{path}: not a template: no Resources mapping")
    return Template(path=path, raw=raw, body=_apply_globals(raw))


@lru_cache(maxsize=16)
def _parsed(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


@dataclass(frozen=True)
class Template:
    """A parsed template: the raw document and its body with SAM Globals merged (and removed)."""

    path: Path
    raw: dict[str, Any]
    body: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Every resource, whatever its Condition, in template order."""
        resources: dict[str, dict[str, Any]] = self.body["Resources"]
        return resources

    def parameters(self, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Each parameter's value: the override, else its Default; list types become lists of strings.

        Every value is held to its parameter's constraints as CloudFormation holds it at deploy: a ParameterError
        names the first parameter refused (or every undeclared override).
        """
        overrides = overrides or {}
        declared: dict[str, Any] = self.body.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise ParameterError(unknown, f"Parameters: [{', '.join(unknown)}] do not exist in the template")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise ParameterError([name], f"Parameters.{name}: no Default and no override given")
            kind = str(spec.get("Type", "String"))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                items = value if isinstance(value, list) else _text(value).split(",")
                values[name] = [_text(item).strip() for item in items]
                checked = values[name]
            else:
                values[name] = _text(value)
                checked = [values[name]]
            refusal = next(filter(None, (_refusal(spec, kind, item) for item in checked)), None)
            if refusal:
                # The template's own words for the constraint, which CloudFormation quotes when refusing.
                described = spec.get("ConstraintDescription")
                raise ParameterError([name], f"Parameters.{name}: {refusal}" + (f" ({described})" if described else ""))
        return values


class ParameterError(TemplateError):
    """A parameter value CloudFormation would refuse (undeclared, missing, or outside its constraints)."""

    def __init__(self, names: Sequence[str], message: str) -> None:
        super().__init__(message)
        self.names = tuple(names)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _refusal(spec: Mapping[str, Any], kind: str, value: str) -> str | None:
    """Why CloudFormation would refuse this value (one item, for a list type), or None.

    AllowedValues, MinValue and MaxValue hold for Number and List<Number>; AllowedPattern (the whole value must
    match), MinLength and MaxLength for the other types; AllowedValues and AllowedPattern apply to each item of a
    CommaDelimitedList.
    """
    allowed = spec.get("AllowedValues")
    if allowed and value not in [_text(option) for option in allowed]:
        return f"{value!r} is not one of the AllowedValues {', '.join(_text(option) for option in allowed)}"
    if kind in ("Number", "List<Number>"):
        if not _NUMBER.fullmatch(value):
            return f"{value!r} is not a number"
        if "MinValue" in spec and float(value) < float(spec["MinValue"]):
            return f"{value} is less than MinValue {_text(spec['MinValue'])}"
        if "MaxValue" in spec and float(value) > float(spec["MaxValue"]):
            return f"{value} is greater than MaxValue {_text(spec['MaxValue'])}"
        return None
    pattern = spec.get("AllowedPattern")
    # CloudFormation's patterns are Java's, whose \d and \w are ASCII only.
    try:
        matched = pattern is None or re.fullmatch(_text(pattern), value, re.ASCII) is not None
    except re.error as error:
        raise TemplateError(f"AllowedPattern {_text(pattern)!r} is not a regular expression: {error}") from error
    if not matched:
        return f"{value!r} does not match the AllowedPattern {_text(pattern)}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"{value!r} is shorter than MinLength {_text(spec['MinLength'])}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"{value!r} is longer than MaxLength {_text(spec['MaxLength'])}"
    return None


def _unbound_ref(logical_id: str) -> str:
    raise TemplateError(f"Ref {logical_id}: no ref callback given to the Stack")


def _unbound_get_att(logical_id: str, attribute: str) -> Any:
    raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: no get_att callback given to the Stack")


@dataclass(frozen=True)
class Stack:
    """A template bound to parameter values, an account and region, and the engine's resource callbacks."""

    template: Template
    ref: Callable[[str], str] = _unbound_ref
    get_att: Callable[[str, str], Any] = _unbound_get_att
    overrides: Mapping[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "firebreak"

    @cached_property
    def parameter_values(self) -> dict[str, Any]:
        """Parameter values after overrides."""
        return self.template.parameters(self.overrides)

    @cached_property
    def pseudo_parameters(self) -> dict[str, Any]:
        """The AWS:: pseudo parameters; AWS::NoValue maps to a sentinel that removes its key or list element."""
        stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account_id}/{self.region}/{self.stack_name}")
        stack_id = f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/{stack_uuid}"
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": stack_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }

    @cached_property
    def conditions(self) -> dict[str, bool]:
        """Every condition of the Conditions section, evaluated against the parameter values."""
        declared: dict[str, Any] = self.template.body.get("Conditions") or {}
        values: dict[str, bool] = {}

        def condition(name: Any, path: str, pending: tuple[str, ...]) -> bool:
            if name not in declared:
                raise TemplateError(f"{path}: unknown condition {name!r}")
            if name in pending:
                raise TemplateError(f"Circular conditions: {' -> '.join((*pending, name))}")
            if name not in values:
                values[name] = evaluate(declared[name], f"Conditions.{name}", (*pending, name))
            return values[name]

        def evaluate(expression: Any, path: str, pending: tuple[str, ...]) -> bool:
            key, arg = _single(expression) or ("", None)
            if key == "Condition":
                return condition(arg, path, pending)
            if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
                left, right = (self._resolve(item, f"{path}.Fn::Equals[{i}]") for i, item in enumerate(arg))
                return _text(left) == _text(right)
            if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                return not evaluate(arg[0], f"{path}.Fn::Not[0]", pending)
            if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
                results = [evaluate(item, f"{path}.{key}[{i}]", pending) for i, item in enumerate(arg)]
                return all(results) if key == "Fn::And" else any(results)
            raise TemplateError(f"{path}: not a condition expression: {expression!r}")

        for name in declared:
            condition(name, "Conditions", ())
        return values

    @cached_property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Active resources (no Condition, or a true one) in template order, with Globals merged."""
        return {
            logical_id: resource
            for logical_id, resource in self.template.resources.items()
            if self._holds(resource.get("Condition"), f"Resources.{logical_id}.Condition")
        }

    def resources_of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        """Active resources of one type, e.g. `AWS::Serverless::Function`."""
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == type_name}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """An active resource's Properties with every intrinsic function resolved."""
        if logical_id not in self.resources:
            raise TemplateError(f"Resources.{logical_id}: no such active resource")
        properties = self.resources[logical_id].get("Properties") or {}
        resolved: dict[str, Any] = self.resolve(properties, f"Resources.{logical_id}.Properties")
        return resolved

    def outputs(self) -> dict[str, Any]:
        """The Value of every active output, resolved now."""
        declared: dict[str, Any] = self.template.body.get("Outputs") or {}
        return {
            name: self.resolve(output.get("Value"), f"Outputs.{name}.Value")
            for name, output in declared.items()
            if self._holds(output.get("Condition"), f"Outputs.{name}.Condition")
        }

    def resolve(self, value: Any, path: str = "") -> Any:
        """Resolve every intrinsic function in a value tree; a value that is wholly AWS::NoValue becomes None."""
        resolved = self._resolve(value, path)
        return None if resolved is _NO_VALUE else resolved

    def dependency_order(self) -> list[str]:
        """Active logical ids, each after every resource it references or DependsOn; template order otherwise."""
        pending = {logical_id: self._dependencies(logical_id) for logical_id in self.resources}
        order: list[str] = []
        while pending:
            ready = next((logical_id for logical_id, needs in pending.items() if needs.issubset(order)), None)
            if ready is None:
                raise TemplateError(f"Circular dependency between resources: {', '.join(_cycle(pending))}")
            order.append(ready)
            del pending[ready]
        return order

    def _holds(self, condition: Any, path: str) -> bool:
        if condition is None:
            return True
        if condition not in self.conditions:
            raise TemplateError(f"{path}: unknown condition {condition!r}")
        return self.conditions[condition]

    def _resolve(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item, f"{path}[{i}]") for i, item in enumerate(value))
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if call := _call(value):
            return self._intrinsic(*call, _join(path, call[0]))
        resolved = {key: self._resolve(item, _join(path, key)) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _intrinsic(self, name: str, arg: Any, path: str) -> Any:
        if name not in _INTRINSICS:
            raise TemplateError(f"{path}: unsupported intrinsic function {name}")
        match name, arg:
            case "Ref", str():
                return self._ref(arg, path)
            case "Fn::GetAtt", [str() as logical_id, attribute]:
                return self._get_att(logical_id, _text(self._resolve(attribute, path)), path)
            case "Fn::Sub", str():
                return self._sub(arg, {}, path)
            case "Fn::Sub", [str() as text, dict() as variables]:
                return self._sub(text, self._resolve(variables, path), path)
            case "Fn::If", [str() as condition, when_true, when_false]:
                return self._resolve(when_true if self._holds(condition, path) else when_false, path)
            case "Fn::ImportValue", _:
                raise TemplateError(f"{path}: Fn::ImportValue has no other stacks to import from locally")
        args = self._resolve(arg, path)
        match name, args:
            case "Fn::Join", [str() as delimiter, list() as items]:
                return delimiter.join(_text(item) for item in items)
            case "Fn::Select", [int() | str() as index, list() as items] if str(index).isdigit():
                if int(index) >= len(items):
                    raise TemplateError(f"{path}: index {index} is out of range for {items!r}")
                return items[int(index)]
            case "Fn::Split", [str() as delimiter, str() as source]:
                return source.split(delimiter)
            case "Fn::FindInMap", [map_name, top_key, second_key]:
                try:
                    found = self.template.body["Mappings"][map_name][top_key][second_key]
                except (KeyError, TypeError) as error:
                    raise TemplateError(f"{path}: no Mappings entry {map_name}.{top_key}.{second_key}") from error
                return copy.deepcopy(found)
            case "Fn::Base64", _:
                return base64.b64encode(_text(args).encode()).decode()
            case "Fn::GetAZs", str():
                return [f"{args or self.region}{zone}" for zone in "abc"]
            case "Fn::Cidr", [block, count, bits]:
                network = ipaddress.ip_network(_text(block))
                subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
                return [str(subnet) for subnet in itertools.islice(subnets, int(count))]
        raise TemplateError(f"{path}: malformed {name}: {arg!r}")

    def _ref(self, name: str, path: str) -> Any:
        if name in self.pseudo_parameters:
            return self.pseudo_parameters[name]
        if name in self.parameter_values:
            return self.parameter_values[name]
        self._require_active(name, path)
        return self.ref(name)

    def _get_att(self, logical_id: str, attribute: str, path: str) -> Any:
        self._require_active(logical_id, path)
        return self.get_att(logical_id, attribute)

    def _require_active(self, logical_id: str, path: str) -> None:
        # Ids outside the template (SAM-generated ones such as `<Function>Role`) are the engine's to answer.
        if logical_id in self.template.resources and logical_id not in self.resources:
            raise TemplateError(f"{path}: {logical_id} is disabled by its Condition")

    def _sub(self, text: str, variables: Mapping[str, Any], path: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return _text(self._get_att(logical_id, attribute, path))
            return _text(self._ref(name, path))

        return _SUB_VARIABLE.sub(replace, text)

    def _dependencies(self, logical_id: str) -> set[str]:
        resource = self.resources[logical_id]
        depends_on = resource.get("DependsOn") or []
        explicit = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        for name in explicit:
            if name not in self.template.resources:
                raise TemplateError(f"Resources.{logical_id}.DependsOn: unknown resource {name!r}")
        scanned = {key: value for key, value in resource.items() if key not in ("DependsOn", "Condition")}
        referenced = self._references(scanned, f"Resources.{logical_id}")
        return {name for name in (*explicit, *referenced) if name in self.resources}

    def _references(self, value: Any, path: str) -> Iterator[str]:
        match _single(value):
            case ("Ref", str() as name) | ("Fn::GetAtt", [str() as name, *_]):
                yield name
            case ("Fn::Sub", (str() | [str(), dict()]) as arg):
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                for found in _SUB_VARIABLE.finditer(text):
                    name = found.group(1).strip()
                    if not name.startswith("!") and name not in variables:
                        yield name.split(".", 1)[0]
                yield from self._references(variables, path)
            case ("Fn::If", [str() as condition, when_true, when_false]):
                yield from self._references(when_true if self._holds(condition, path) else when_false, path)
            case _ if isinstance(value, dict):
                for key, item in value.items():
                    yield from self._references(item, _join(path, key))
            case _ if isinstance(value, list):
                for i, item in enumerate(value):
                    yield from self._references(item, f"{path}[{i}]")


def _cycle(pending: Mapping[str, set[str]]) -> list[str]:
    stuck = dict(pending)
    while True:
        needed = set().union(*stuck.values())
        downstream = [logical_id for logical_id in stuck if logical_id not in needed]
        if not downstream:
            return list(stuck)
        for logical_id in downstream:
            del stuck[logical_id]
