"""Parameter overrides as `sam deploy` reads them: `--parameter-overrides` and samconfig.toml's `parameter_overrides`.

The parsing is SAM CLI's own (samcli/cli/types.py, CfnParameterOverridesType): `KEY=VALUE` pairs separated by spaces,
a value quoted with " or ' to hold spaces, the long form `ParameterKey=KEY,ParameterValue=VALUE`, a list of such
strings, a table of keys to values (a list value joined with commas), and `file://` references to a TOML, YAML or
JSON file holding any of these. Later values win, key by key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

FILE_NAME = "samconfig.toml"
ENVIRONMENT = "default"
# `sam deploy` reads its section over the global one, key by key; a run stands for a deployment.
SECTIONS = ("global", "deploy")
_KEY = r"""([A-Za-z0-9\"']+)"""
_VALUE = r"""(\"(?:\\.|[^\"\\]+)*\"|'(?:\\.|[^'\\]+)*'|(?:\\.|[^ \"\\]+)+)"""
# Tried in this order on each string, as SAM CLI does: the first form that matches anything is the string's form.
_FORMS = (
    re.compile(rf"(?:ParameterKey={_KEY},ParameterValue={_VALUE})"),
    re.compile(rf"(?:(?: ){_KEY}={_VALUE})"),
)
_EXAMPLES = (
    "'KeyPairName=MyKey InstanceType=t1.micro', 'ParameterKey=KeyPairName,ParameterValue=MyKey' or 'file://params.toml'"
)


class OverridesError(Exception):
    """Parameter overrides SAM CLI would refuse to read; the message says where and why."""


def parse(values: Any, current_file: Path | None = None) -> dict[str, str]:
    """Every key and value in values, as strings, the way `sam deploy` parses `--parameter-overrides`."""
    return {_unquote(key): _unquote(value) for key, value in _pairs(values, current_file, frozenset()).items()}


def _pairs(values: Any, current_file: Path | None, including: frozenset[Path]) -> dict[str, str]:
    if values in ("", None) or values == {} or values == ("",):
        return {}
    pairs: dict[str, str] = {}
    for value in _flat([values]):
        if isinstance(value, str) and value.startswith("file://"):
            pairs.update(_included(value, current_file, including))
        elif isinstance(value, str):
            pairs.update(_key_values(value))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if key == "$include":
                    if not isinstance(item, str | list):
                        raise OverridesError(f"$include must be a string or list of strings, got {type(item).__name__}")
                    pairs.update(_pairs(item, current_file, including))
                elif item is None:
                    pairs[str(key)] = ""
                elif isinstance(item, list):
                    pairs[str(key)] = ",".join(str(part).strip() for part in item if part not in (None, ""))
                else:
                    pairs[str(key)] = str(item)
        elif value is not None:
            raise OverridesError(f"{value!r} is not a parameter override")
    return pairs


def _flat(values: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for value in values:
        flat.extend(_flat(list(value)) if isinstance(value, list | tuple) else [value])
    return flat


def _key_values(text: str) -> dict[str, str]:
    # Each form starts its pairs with a space, so the first one is given one too.
    normalised = " " + text.strip()
    for form in _FORMS:
        found = form.findall(normalised)
        if found:
            return dict(found)
    raise OverridesError(f"{text} is not a valid format. It must look something like {_EXAMPLES}")


def _included(reference: str, current_file: Path | None, including: frozenset[Path]) -> dict[str, str]:
    path = Path(reference.removeprefix("file://"))
    # Relative to the file that names it (SAM CLI: only inside included files; a run's cwd need not be the project).
    if not path.is_absolute() and current_file is not None:
        path = current_file.parent / path
    path = path.resolve()
    if not path.is_file():
        raise OverridesError(f"{reference} was not found or is a directory")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise OverridesError(f"{reference} uses an unsupported extension")
    if path in including:
        raise OverridesError(f"Infinite recursion detected in file references: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        content = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise OverridesError(f"{reference}: cannot read: {error}") from error
    return _pairs(content, path, including | {path})


def _unquote(value: str) -> str:
    """SAM CLI's unquoting: one pair of wrapping quotes goes, and escaped spaces and quotes lose their backslash."""
    if value and value[0] == value[-1] and value[0] in ('"', "'"):
        value = value[1:-1]
    return value.replace("\\ ", " ").replace('\\"', '"').replace("\\'", "'")


def default_overrides(directory: Path) -> dict[str, str]:
    """The `parameter_overrides` samconfig.toml beside the template gives its default environment's deployments.

    Empty when there is no samconfig.toml or it sets none; OverridesError when the file is not TOML or its
    overrides cannot be read.
    """
    path = directory / FILE_NAME
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise OverridesError(f"{path}: cannot read: {error}") from error
    environment = document.get(ENVIRONMENT) or {}
    merged: dict[str, Any] = {}
    for section in SECTIONS:
        merged.update((environment.get(section) or {}).get("parameters") or {})
    try:
        return parse(merged.get("parameter_overrides"), path)
    except OverridesError as error:
        raise OverridesError(f"{path} [{ENVIRONMENT}] parameter_overrides: {error}") from error
