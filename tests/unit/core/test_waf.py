"""add_addresses / IpSetRef: read-merge-write of WAFv2 IPSets under the LockToken, on moto's wafv2."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from firebreak.core.errors import BlockFailed
from firebreak.core.waf import IPSET_CAPACITY, LOCK_ATTEMPTS, AddResult, IpSetRef, add_addresses

ACCOUNT = "123456789012"


class CountingWaf:
    """The real (moto) client, counting UpdateIPSet calls; `compete` runs as another writer just before ours."""

    def __init__(self, client: Any, compete: Any = None) -> None:
        self._client = client
        self._compete = compete
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_ip_set(self, **kwargs: Any) -> Any:
        if self._compete is not None:
            self._compete(self._client, kwargs, len(self.updates))
        self.updates.append(kwargs)
        return self._client.update_ip_set(**kwargs)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def waf(aws: None) -> Iterator[Any]:
    yield boto3.client("wafv2", region_name="us-east-1")


def create_ipset(
    waf: Any, version: str = "IPV4", addresses: list[str] | None = None, name: str = "blocked"
) -> IpSetRef:
    summary = waf.create_ip_set(
        Name=f"{name}-{version.lower()}", Scope="REGIONAL", IPAddressVersion=version, Addresses=addresses or []
    )["Summary"]
    return IpSetRef.from_arn(summary["ARN"])


def addresses_in(waf: Any, ipset: IpSetRef) -> list[str]:
    addresses: list[str] = waf.get_ip_set(Name=ipset.name, Scope=ipset.scope, Id=ipset.id)["IPSet"]["Addresses"]
    return addresses


def never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}s without a lock conflict")


# --- IpSetRef ----------------------------------------------------------------------------------------------------


def test_ipset_ref_from_regional_arn() -> None:
    # GIVEN the ARN of a regional IPSet
    arn = f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/ipset/firebreak-blocked-ipv4/a1b2c3d4-5678-90ab-cdef-EXAMPLE1"

    # WHEN it is parsed
    ref = IpSetRef.from_arn(arn)

    # THEN name, id and scope come from the resource part
    assert ref == IpSetRef(
        name="firebreak-blocked-ipv4", id="a1b2c3d4-5678-90ab-cdef-EXAMPLE1", scope="REGIONAL", arn=arn
    )


def test_ipset_ref_from_global_arn_is_cloudfront_scope() -> None:
    # GIVEN the ARN of a CloudFront (global) IPSet
    arn = f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/firebreak-blocked-ipv6/0f1e2d3c-4b5a-6978-8a9b-EXAMPLE2"

    # WHEN it is parsed
    ref = IpSetRef.from_arn(arn)

    # THEN its scope is CLOUDFRONT
    assert (ref.name, ref.id, ref.scope, ref.arn) == (
        "firebreak-blocked-ipv6",
        "0f1e2d3c-4b5a-6978-8a9b-EXAMPLE2",
        "CLOUDFRONT",
        arn,
    )


def test_ipset_ref_from_the_arn_wafv2_returns_addresses_the_same_set(waf: Any) -> None:
    # GIVEN an IPSet created in WAF
    created = waf.create_ip_set(Name="blocked-ipv4", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=[])

    # WHEN a reference is parsed from the ARN WAF returned
    ref = IpSetRef.from_arn(created["Summary"]["ARN"])

    # THEN it names the same set
    assert (ref.name, ref.id, ref.scope) == ("blocked-ipv4", created["Summary"]["Id"], "REGIONAL")
    assert waf.get_ip_set(Name=ref.name, Scope=ref.scope, Id=ref.id)["IPSet"]["ARN"] == ref.arn


# --- add_addresses -----------------------------------------------------------------------------------------------


def test_adding_to_an_empty_ipset_adds_with_exactly_one_update(waf: Any) -> None:
    # GIVEN an empty IPv4 IPSet
    ipset = create_ipset(waf)
    counting = CountingWaf(waf)

    # WHEN two addresses are added
    result = add_addresses(counting, ipset, ["45.155.205.233/32", "8.8.8.8/32"], sleep=never_sleep)

    # THEN both are added with a single UpdateIPSet, and the set holds exactly them
    assert result == AddResult(added=("45.155.205.233/32", "8.8.8.8/32"), already_present=(), update_calls=1)
    assert len(counting.updates) == 1
    assert sorted(addresses_in(waf, ipset)) == ["45.155.205.233/32", "8.8.8.8/32"]


def test_adding_keeps_what_the_set_already_holds(waf: Any) -> None:
    # GIVEN an IPSet holding addresses someone else put there
    ipset = create_ipset(waf, addresses=["193.142.146.35/32", "194.26.29.0/24"])

    # WHEN a new address is added
    result = add_addresses(waf, ipset, ["45.155.205.233/32"], sleep=never_sleep)

    # THEN nothing is removed
    assert result.added == ("45.155.205.233/32",)
    assert sorted(addresses_in(waf, ipset)) == ["193.142.146.35/32", "194.26.29.0/24", "45.155.205.233/32"]


def test_adding_an_address_already_present_makes_no_update(waf: Any) -> None:
    # GIVEN an IPSet that already holds the address
    ipset = create_ipset(waf, addresses=["45.155.205.233/32"])
    counting = CountingWaf(waf)

    # WHEN it is added again
    result = add_addresses(counting, ipset, ["45.155.205.233/32"], sleep=never_sleep)

    # THEN it is reported as already present and UpdateIPSet is never called
    assert result == AddResult(added=(), already_present=("45.155.205.233/32",), update_calls=0)
    assert counting.updates == []
    assert addresses_in(waf, ipset) == ["45.155.205.233/32"]


def test_adding_a_mix_reports_new_and_present_apart_and_writes_once(waf: Any) -> None:
    # GIVEN an IPSet that holds one of two addresses
    ipset = create_ipset(waf, addresses=["8.8.8.8/32"])
    counting = CountingWaf(waf)

    # WHEN both are added
    result = add_addresses(counting, ipset, ["45.155.205.233/32", "8.8.8.8/32"], sleep=never_sleep)

    # THEN only the new one is written, in one update, and the present one is reported as such
    assert result == AddResult(added=("45.155.205.233/32",), already_present=("8.8.8.8/32",), update_calls=1)
    assert len(counting.updates) == 1
    assert sorted(addresses_in(waf, ipset)) == ["45.155.205.233/32", "8.8.8.8/32"]


@pytest.mark.parametrize(
    ("stored", "wanted"),
    [
        pytest.param("2a0e:97c0:3e3:2a2::1/128", "2a0e:97c0:03e3:02a2:0000:0000:0000:0001/128", id="stored-compressed"),
        pytest.param("2A0E:97C0:03E3:02A2:0:0:0:1/128", "2a0e:97c0:3e3:2a2::1/128", id="stored-expanded-upper"),
    ],
)
def test_ipv6_spellings_of_one_address_count_as_the_same(waf: Any, stored: str, wanted: str) -> None:
    # GIVEN an IPv6 IPSet holding an address in one spelling
    ipset = create_ipset(waf, version="IPV6", addresses=[stored])
    counting = CountingWaf(waf)

    # WHEN the same address is added in another spelling
    result = add_addresses(counting, ipset, [wanted], sleep=never_sleep)

    # THEN it is already present (reported compressed) and nothing is written
    assert result == AddResult(added=(), already_present=("2a0e:97c0:3e3:2a2::1/128",), update_calls=0)
    assert counting.updates == []
    assert len(addresses_in(waf, ipset)) == 1


def test_ipv6_address_is_written_in_compressed_form(waf: Any) -> None:
    # GIVEN an empty IPv6 IPSet
    ipset = create_ipset(waf, version="IPV6")

    # WHEN an address in expanded form is added
    result = add_addresses(waf, ipset, ["2A0E:97C0:03E3:02A2:0000:0000:0000:0001/128"], sleep=never_sleep)

    # THEN the set holds the compressed form, which a later compressed add will find
    assert result.added == ("2a0e:97c0:3e3:2a2::1/128",)
    assert addresses_in(waf, ipset) == ["2a0e:97c0:3e3:2a2::1/128"]
    again = add_addresses(waf, ipset, ["2a0e:97c0:3e3:2a2::1/128"], sleep=never_sleep)
    assert again.already_present == ("2a0e:97c0:3e3:2a2::1/128",)


def test_adding_nothing_reads_once_and_writes_nothing(waf: Any) -> None:
    # GIVEN an IPSet with addresses in it
    ipset = create_ipset(waf, addresses=["8.8.8.8/32"])
    counting = CountingWaf(waf)

    # WHEN an empty list is added
    result = add_addresses(counting, ipset, [], sleep=never_sleep)

    # THEN no update is made and nothing is removed
    assert result == AddResult(added=(), already_present=(), update_calls=0)
    assert counting.updates == []
    assert addresses_in(waf, ipset) == ["8.8.8.8/32"]


def test_lock_conflict_is_retried_and_no_update_is_lost(waf: Any) -> None:
    # GIVEN an IPSet, and another writer that adds its own address with the very token we read, just before our write
    ipset = create_ipset(waf, addresses=["193.142.146.35/32"])

    def other_writer(client: Any, ours: dict[str, Any], calls_before: int) -> None:
        if calls_before == 0:
            client.update_ip_set(
                Name=ipset.name,
                Scope=ipset.scope,
                Id=ipset.id,
                Addresses=["193.142.146.35/32", "194.26.29.102/32"],
                LockToken=ours["LockToken"],
            )

    counting = CountingWaf(waf, compete=other_writer)
    sleeps = Sleeps()

    # WHEN our address is added
    result = add_addresses(counting, ipset, ["45.155.205.233/32"], sleep=sleeps)

    # THEN our first write is refused, we back off once, re-read and write again,
    # and the set holds the original, the other writer's and our address
    assert result == AddResult(added=("45.155.205.233/32",), already_present=(), update_calls=2)
    assert len(counting.updates) == 2
    assert counting.updates[0]["LockToken"] != counting.updates[1]["LockToken"]
    assert "194.26.29.102/32" in counting.updates[1]["Addresses"]
    assert len(sleeps.calls) == 1
    assert 0.05 <= sleeps.calls[0] <= 0.2
    assert sorted(addresses_in(waf, ipset)) == ["193.142.146.35/32", "194.26.29.102/32", "45.155.205.233/32"]


def test_lock_conflict_where_the_other_writer_added_ours_needs_no_second_write(waf: Any) -> None:
    # GIVEN another writer that adds the same address just before our first write
    ipset = create_ipset(waf)

    def other_writer(client: Any, ours: dict[str, Any], calls_before: int) -> None:
        client.update_ip_set(
            Name=ipset.name,
            Scope=ipset.scope,
            Id=ipset.id,
            Addresses=["45.155.205.233/32"],
            LockToken=ours["LockToken"],
        )

    counting = CountingWaf(waf, compete=other_writer)

    # WHEN our address is added
    result = add_addresses(counting, ipset, ["45.155.205.233/32"], sleep=Sleeps())

    # THEN after the conflict the re-read finds it present, and no second update is made
    assert result == AddResult(added=(), already_present=("45.155.205.233/32",), update_calls=1)
    assert len(counting.updates) == 1
    assert addresses_in(waf, ipset) == ["45.155.205.233/32"]


def test_lock_conflict_on_every_attempt_raises_block_failed_after_backing_off(waf: Any) -> None:
    # GIVEN another writer that always changes the set between our read and our write
    ipset = create_ipset(waf)

    def other_writer(client: Any, ours: dict[str, Any], calls_before: int) -> None:
        client.update_ip_set(
            Name=ipset.name,
            Scope=ipset.scope,
            Id=ipset.id,
            Addresses=[f"194.26.29.{calls_before + 1}/32"],
            LockToken=ours["LockToken"],
        )

    counting = CountingWaf(waf, compete=other_writer)
    sleeps = Sleeps()

    # WHEN our address is added
    with pytest.raises(BlockFailed, match=f"stayed locked by other writers after {LOCK_ATTEMPTS} attempts"):
        add_addresses(counting, ipset, ["45.155.205.233/32"], sleep=sleeps)

    # THEN every attempt wrote once and backed off with growing, jittered waits; our address never landed
    assert len(counting.updates) == LOCK_ATTEMPTS
    assert len(sleeps.calls) == LOCK_ATTEMPTS
    for attempt, seconds in enumerate(sleeps.calls):
        assert 0.05 * 2**attempt <= seconds <= 0.2 * 2**attempt
    assert "45.155.205.233/32" not in addresses_in(waf, ipset)


def stub_conflicts(ipset: IpSetRef, conflicts: int, then: str | None) -> tuple[Any, Stubber]:
    """A wafv2 client whose UpdateIPSet raises WAFOptimisticLockException `conflicts` times, then `then`."""
    client = boto3.client("wafv2", region_name="us-east-1")
    stubber = Stubber(client)
    ids = {"Name": ipset.name, "Scope": ipset.scope, "Id": ipset.id}
    ipset_body = {"Name": ipset.name, "Id": ipset.id, "ARN": ipset.arn, "IPAddressVersion": "IPV4", "Addresses": []}
    for attempt in range(conflicts + (then is not None)):
        token = f"token-{attempt}"
        stubber.add_response("get_ip_set", {"IPSet": ipset_body, "LockToken": token}, ids)
        expected = {**ids, "Addresses": ["45.155.205.233/32"], "LockToken": token}
        if attempt < conflicts:
            stubber.add_client_error(
                "update_ip_set",
                service_error_code="WAFOptimisticLockException",
                service_message="AWS WAF couldn't save your changes because someone changed the resource",
                http_status_code=400,
                expected_params=expected,
            )
        elif then == "ok":
            stubber.add_response("update_ip_set", {"NextLockToken": "token-next"}, expected)
        else:
            stubber.add_client_error(
                "update_ip_set", service_error_code=then, http_status_code=400, expected_params=expected
            )
    return client, stubber


REF = IpSetRef.from_arn(f"arn:aws:wafv2:us-east-1:{ACCOUNT}:regional/ipset/blocked-ipv4/11111111-2222-3333-4444")


def test_stubbed_lock_exception_is_retried_until_the_write_lands(aws: None) -> None:
    # GIVEN WAF that answers WAFOptimisticLockException twice, then accepts the write
    client, stubber = stub_conflicts(REF, conflicts=2, then="ok")
    sleeps = Sleeps()

    # WHEN an address is added
    with stubber:
        result = add_addresses(client, REF, ["45.155.205.233/32"], sleep=sleeps)
        stubber.assert_no_pending_responses()

    # THEN it lands on the third write, each with the token of its own read, after two back-offs
    assert result == AddResult(added=("45.155.205.233/32",), already_present=(), update_calls=3)
    assert len(sleeps.calls) == 2


def test_stubbed_lock_exception_every_time_raises_block_failed(aws: None) -> None:
    # GIVEN WAF that answers WAFOptimisticLockException to every write
    client, stubber = stub_conflicts(REF, conflicts=LOCK_ATTEMPTS, then=None)
    sleeps = Sleeps()

    # WHEN an address is added
    with stubber, pytest.raises(BlockFailed, match="blocked-ipv4"):
        add_addresses(client, REF, ["45.155.205.233/32"], sleep=sleeps)

    # THEN it gave up after the bounded number of attempts, having tried every one
    stubber.assert_no_pending_responses()
    assert len(sleeps.calls) == LOCK_ATTEMPTS


@pytest.mark.parametrize(
    "code", ["WAFLimitsExceededException", "AccessDeniedException", "WAFInvalidParameterException"]
)
def test_errors_other_than_lock_conflicts_propagate_untouched_without_retry(aws: None, code: str) -> None:
    # GIVEN WAF that refuses the write for a reason other than a lock conflict
    client, stubber = stub_conflicts(REF, conflicts=0, then=code)

    # WHEN an address is added
    with stubber, pytest.raises(ClientError) as raised:
        add_addresses(client, REF, ["45.155.205.233/32"], sleep=never_sleep)

    # THEN the AWS error reaches the caller as it is, after a single attempt, for ASL Retry/Catch to handle
    assert raised.value.response["Error"]["Code"] == code
    assert not isinstance(raised.value, BlockFailed)
    stubber.assert_no_pending_responses()


def full_set(count: int) -> list[str]:
    start = int(ipaddress.IPv4Address("11.0.0.0"))
    return [f"{ipaddress.IPv4Address(start + i)}/32" for i in range(count)]


def test_exceeding_the_capacity_raises_block_failed_before_writing(waf: Any) -> None:
    # GIVEN an IPSet already holding the maximum number of addresses
    ipset = create_ipset(waf, addresses=full_set(IPSET_CAPACITY))
    counting = CountingWaf(waf)

    # WHEN one more address is added
    with pytest.raises(BlockFailed, match=f"would exceed {IPSET_CAPACITY} addresses"):
        add_addresses(counting, ipset, ["45.155.205.233/32"], sleep=never_sleep)

    # THEN nothing was written: the set is unchanged
    assert counting.updates == []
    assert len(addresses_in(waf, ipset)) == IPSET_CAPACITY


def test_filling_the_last_free_slot_is_allowed(waf: Any) -> None:
    # GIVEN an IPSet one address short of full
    ipset = create_ipset(waf, addresses=full_set(IPSET_CAPACITY - 1))

    # WHEN one address is added
    result = add_addresses(waf, ipset, ["45.155.205.233/32"], sleep=never_sleep)

    # THEN it fits exactly
    assert result.added == ("45.155.205.233/32",)
    assert len(addresses_in(waf, ipset)) == IPSET_CAPACITY


def test_capacity_counts_only_missing_addresses(waf: Any) -> None:
    # GIVEN a full IPSet
    addresses = full_set(IPSET_CAPACITY)
    ipset = create_ipset(waf, addresses=addresses)

    # WHEN an address it already holds is added
    result = add_addresses(waf, ipset, [addresses[0]], sleep=never_sleep)

    # THEN that is not over capacity: it is simply already present
    assert result == AddResult(added=(), already_present=(addresses[0],), update_calls=0)
