"""Allow and deny lists from SSM and provider keys from Secrets Manager: parsed, cached with a TTL, failures degrade."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from firebreak.intel import remote_config
from firebreak.intel.remote_config import CONFIG_TTL_SECONDS, address_lists, parse_provider_keys, provider_keys

ALLOW, DENY = "/firebreak/allow-list", "/firebreak/deny-list"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    remote_config.forget()
    yield
    remote_config.forget()


@pytest.fixture
def ssm(aws: None) -> Any:
    client = boto3.client("ssm", region_name="us-east-1")
    client.put_parameter(Name=ALLOW, Type="StringList", Value="203.0.113.0/24,2001:db8::/32")
    client.put_parameter(Name=DENY, Type="StringList", Value="none")
    return client


@pytest.fixture
def secrets(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


def test_lists_are_read_from_ssm_with_none_meaning_empty(ssm: Any) -> None:
    # GIVEN an allow list of two ranges and an empty deny list ("none", since SSM refuses empty values)
    # WHEN the lists are read
    lists = address_lists(ssm, ALLOW, DENY)

    # THEN both ranges are allowed and nothing is denied
    assert [str(n) for n in lists.allow] == ["203.0.113.0/24", "2001:db8::/32"]
    assert (lists.deny, lists.problems) == ((), ())


def test_the_stack_allow_list_is_added_to_the_ssm_one(ssm: Any) -> None:
    # GIVEN the stack's AllowListCidrs names a range SSM does not
    # WHEN the lists are read
    lists = address_lists(ssm, ALLOW, DENY, (ipaddress.ip_network("198.51.100.0/24"),))

    # THEN the allow list holds both, as block_ip's own guard does
    assert "198.51.100.0/24" in [str(n) for n in lists.allow]


def test_lists_are_cached_until_the_ttl_passes(ssm: Any) -> None:
    # GIVEN the lists were read once
    clock = Clock()
    address_lists(ssm, ALLOW, DENY, clock=clock)
    ssm.put_parameter(Name=DENY, Type="StringList", Value="192.0.2.0/24", Overwrite=True)

    # WHEN they are read again before and after the TTL
    before = address_lists(ssm, ALLOW, DENY, clock=clock)
    clock.now += CONFIG_TTL_SECONDS + 1
    after = address_lists(ssm, ALLOW, DENY, clock=clock)

    # THEN the edit shows only once the cached copy expired
    assert before.deny == ()
    assert [str(n) for n in after.deny] == ["192.0.2.0/24"]


def test_a_typo_in_a_list_is_reported_and_the_rest_still_applies(ssm: Any) -> None:
    # GIVEN a deny list with one entry that is no CIDR
    ssm.put_parameter(Name=DENY, Type="StringList", Value="192.0.2.0/24,192.0.2.300,none", Overwrite=True)

    # WHEN the lists are read
    lists = address_lists(ssm, ALLOW, DENY)

    # THEN the good entry applies and the bad one is reported
    assert [str(n) for n in lists.deny] == ["192.0.2.0/24"]
    assert lists.problems == ("deny list: '192.0.2.300' is not a CIDR, ignored",)


def test_unreadable_lists_fall_back_to_the_stack_allow_list_and_are_not_cached(aws: None) -> None:
    # GIVEN the parameters do not exist (deleted, or a wrong name)
    ssm = boto3.client("ssm", region_name="us-east-1")
    stack_allow = (ipaddress.ip_network("198.51.100.0/24"),)

    # WHEN the lists are read
    lists = address_lists(ssm, ALLOW, DENY, stack_allow)

    # THEN the stack's allow list is used, the problem reported, and the next read tries SSM again
    assert lists.allow == stack_allow
    assert lists.problems == (f"{ALLOW}: parameter not found", f"{DENY}: parameter not found")
    ssm.put_parameter(Name=ALLOW, Type="StringList", Value="203.0.113.0/24")
    ssm.put_parameter(Name=DENY, Type="StringList", Value="none")
    assert address_lists(ssm, ALLOW, DENY, stack_allow).problems == ()


def test_provider_keys_take_a_key_or_a_key_and_base_url(secrets: Any) -> None:
    # GIVEN a secret with both forms
    value = {"virustotal": "vt-key", "otx": {"key": "otx-key", "base_url": "http://127.0.0.1:9"}}
    arn = secrets.create_secret(Name="firebreak/provider-keys", SecretString=json.dumps(value))["ARN"]

    # WHEN the keys are read
    keys = provider_keys(secrets, arn)

    # THEN each provider has its key, and OTX its own base URL
    assert keys.configs["virustotal"].key == "vt-key"
    assert (keys.configs["otx"].key, keys.configs["otx"].base_url) == ("otx-key", "http://127.0.0.1:9")
    assert keys.problems == ()


def test_a_bad_entry_is_reported_by_name_without_echoing_the_secret() -> None:
    # GIVEN an entry whose value is neither a key nor {key, base_url}
    keys = parse_provider_keys(json.dumps({"abuseipdb": ["s3cr3t"], "otx": "k"}))

    # THEN it is skipped, and the report names the provider but not the value
    assert list(keys.configs) == ["otx"]
    assert keys.problems == ("provider keys: entry 'abuseipdb' is neither a key nor {key, base_url}",)
    assert "s3cr3t" not in repr(keys)


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_a_secret_that_is_not_a_json_object_switches_providers_off(text: str) -> None:
    # WHEN the secret's value is not a JSON object
    keys = parse_provider_keys(text)

    # THEN no provider runs, and the problem is said
    assert keys.configs == {}
    assert "providers off" in keys.problems[0]


def test_an_unreadable_secret_switches_providers_off(secrets: Any) -> None:
    # GIVEN the secret does not exist
    # WHEN the keys are read
    keys = provider_keys(secrets, "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")

    # THEN no provider runs and the reason is given
    assert keys.configs == {}
    assert keys.problems == ("provider keys unreadable (ResourceNotFoundException): providers off",)
