"""Configuration that changes without a deploy: the allow and deny lists (SSM StringList parameters) and the provider
keys (one Secrets Manager secret). Read on first use in a cold Lambda, then kept for CONFIG_TTL_SECONDS.

A read that fails is not cached and never fails enrichment: the lists fall back to the stack's AllowListCidrs
parameter and the providers stay off, and the problem is reported with the evidence.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from firebreak.core.settings import IpNetwork
from firebreak.intel.providers import ProviderConfig

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

CONFIG_TTL_SECONDS = 300.0
# SSM refuses an empty parameter value, so an empty list is stored as this word.
EMPTY_LIST = "none"

_cache: dict[tuple[str, ...], tuple[float, Any]] = {}


def forget() -> None:
    """Drop everything cached: the next read goes to SSM and Secrets Manager again."""
    _cache.clear()


def _cached(key: tuple[str, ...], load: Callable[[], tuple[Any, bool]], clock: Callable[[], float]) -> Any:
    held = _cache.get(key)
    if held is not None and clock() - held[0] < CONFIG_TTL_SECONDS:
        return held[1]
    value, keep = load()
    if keep:
        _cache[key] = (clock(), value)
    return value


@dataclass(frozen=True)
class AddressLists:
    """The stack's allow list (never blocked) and deny list (always malicious), and what went wrong reading them."""

    allow: tuple[IpNetwork, ...] = ()
    deny: tuple[IpNetwork, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderKeys:
    """Provider name -> key (and optional base URL) from the secret, and what went wrong reading it."""

    configs: dict[str, ProviderConfig]
    problems: tuple[str, ...] = ()


def parse_list(text: str, name: str) -> tuple[tuple[IpNetwork, ...], tuple[str, ...]]:
    """CIDRs of a StringList value; an entry that is no CIDR is skipped and reported, not fatal to every incident."""
    networks: list[IpNetwork] = []
    problems: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry or entry.lower() == EMPTY_LIST:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            printable = "".join(ch for ch in entry if ch.isprintable())[:64]
            problems.append(f"{name}: {printable!r} is not a CIDR, ignored")
    return tuple(networks), tuple(problems)


def address_lists(
    ssm: SSMClient,
    allow_parameter: str,
    deny_parameter: str,
    stack_allow_list: Iterable[IpNetwork] = (),
    clock: Callable[[], float] = time.monotonic,
) -> AddressLists:
    """The lists in SSM, with the stack's AllowListCidrs added to the allow list (block_ip refuses those anyway)."""
    stack_allow = tuple(stack_allow_list)
    if not allow_parameter or not deny_parameter:
        return AddressLists(allow=stack_allow, problems=("no list parameters configured",))

    def load() -> tuple[AddressLists, bool]:
        try:
            answer = ssm.get_parameters(Names=[allow_parameter, deny_parameter])
        except (ClientError, BotoCoreError) as error:
            problem = f"lists in SSM unreadable ({_code(error)}): stack allow list only, no deny list"
            return AddressLists(allow=stack_allow, problems=(problem,)), False
        values = {parameter["Name"]: parameter.get("Value", "") for parameter in answer.get("Parameters", [])}
        problems = [f"{name}: parameter not found" for name in answer.get("InvalidParameters", [])]
        allow, allow_problems = parse_list(values.get(allow_parameter, ""), "allow list")
        deny, deny_problems = parse_list(values.get(deny_parameter, ""), "deny list")
        merged_allow = tuple(dict.fromkeys((*allow, *stack_allow)))
        lists = AddressLists(merged_allow, deny, (*problems, *allow_problems, *deny_problems))
        return lists, not problems

    lists: AddressLists = _cached(("lists", allow_parameter, deny_parameter), load, clock)
    return lists


def provider_keys(
    secrets: SecretsManagerClient, secret_id: str, clock: Callable[[], float] = time.monotonic
) -> ProviderKeys:
    """The secret's JSON object: {"virustotal": "KEY"} or {"virustotal": {"key": "KEY", "base_url": "https://..."}}."""
    if not secret_id:
        return ProviderKeys({}, ("no provider-keys secret configured",))

    def load() -> tuple[ProviderKeys, bool]:
        try:
            text = secrets.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
        except (ClientError, BotoCoreError) as error:
            return ProviderKeys({}, (f"provider keys unreadable ({_code(error)}): providers off",)), False
        return parse_provider_keys(text), True

    keys: ProviderKeys = _cached(("keys", secret_id), load, clock)
    return keys


def parse_provider_keys(text: str) -> ProviderKeys:
    """Entries that cannot be read are reported by provider name only: the secret's values must never be echoed."""
    try:
        document = json.loads(text)
    except ValueError:
        return ProviderKeys({}, ("provider keys: the secret is not JSON: providers off",))
    if not isinstance(document, dict):
        return ProviderKeys({}, ("provider keys: the secret is not a JSON object: providers off",))
    configs: dict[str, ProviderConfig] = {}
    problems: list[str] = []
    for name, value in document.items():
        if isinstance(value, str):
            configs[name] = ProviderConfig(key=value)
        elif (
            isinstance(value, dict)
            and isinstance(value.get("key"), str)
            and isinstance(value.get("base_url"), str | None)
        ):
            configs[name] = ProviderConfig(key=value["key"], base_url=value.get("base_url"))
        else:
            problems.append(f"provider keys: entry {str(name)[:32]!r} is neither a key nor {{key, base_url}}")
    return ProviderKeys(configs, tuple(problems))


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
