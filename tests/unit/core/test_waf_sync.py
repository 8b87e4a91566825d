"""sync_addresses: the IPSet ends exactly as wanted, with one UpdateIPSet at most and none when nothing differs."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.core.errors import BlockFailed
from firebreak.core.waf import IPSET_CAPACITY, IpSetRef, sync_addresses


@pytest.fixture
def ipset(aws: None) -> tuple[Any, IpSetRef]:
    waf = boto3.client("wafv2", region_name="us-east-1")
    summary = waf.create_ip_set(
        Name="feed-ipv4", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=["45.155.205.10/32", "1.2.3.0/24"]
    )["Summary"]
    return waf, IpSetRef.from_arn(summary["ARN"])


def addresses(waf: Any, ref: IpSetRef) -> set[str]:
    return set(waf.get_ip_set(Name=ref.name, Scope=ref.scope, Id=ref.id)["IPSet"]["Addresses"])


def test_applies_the_difference_and_reports_it(ipset: tuple[Any, IpSetRef]) -> None:
    # GIVEN a set with two entries
    waf, ref = ipset
    # WHEN it is synced to one of them and a new one
    result = sync_addresses(waf, ref, ["1.2.3.0/24", "185.220.101.0/24"])
    # THEN exactly those are left, in one update, with the change reported
    assert addresses(waf, ref) == {"1.2.3.0/24", "185.220.101.0/24"}
    assert (result.added, result.removed, result.unchanged, result.update_calls) == (
        ("185.220.101.0/24",),
        ("45.155.205.10/32",),
        1,
        1,
    )


def test_makes_no_update_call_when_the_set_already_matches(ipset: tuple[Any, IpSetRef]) -> None:
    # GIVEN a set that already holds what is wanted (written differently: a bare address)
    waf, ref = ipset

    class NoUpdates:
        def get_ip_set(self, **kwargs: Any) -> Any:
            return waf.get_ip_set(**kwargs)

        def update_ip_set(self, **kwargs: Any) -> Any:
            raise AssertionError("UpdateIPSet called although nothing changed")

    # WHEN it is synced
    result = sync_addresses(NoUpdates(), ref, ["45.155.205.10", "1.2.3.0/24"])  # type: ignore[arg-type]
    # THEN nothing is written
    assert (result.added, result.removed, result.update_calls) == ((), (), 0)


def test_retries_the_whole_cycle_after_a_lock_conflict(ipset: tuple[Any, IpSetRef]) -> None:
    # GIVEN another writer that changes the set between our read and our write, once
    waf, ref = ipset
    conflicts = iter([True])

    class Racing:
        def get_ip_set(self, **kwargs: Any) -> Any:
            return waf.get_ip_set(**kwargs)

        def update_ip_set(self, **kwargs: Any) -> Any:
            if next(conflicts, False):
                current = waf.get_ip_set(Name=ref.name, Scope=ref.scope, Id=ref.id)
                waf.update_ip_set(
                    Name=ref.name,
                    Scope=ref.scope,
                    Id=ref.id,
                    Addresses=[*current["IPSet"]["Addresses"], "80.82.77.33/32"],
                    LockToken=current["LockToken"],
                )
            return waf.update_ip_set(**kwargs)

    # WHEN the sync runs
    result = sync_addresses(Racing(), ref, ["1.2.3.0/24"], sleep=lambda _: None)  # type: ignore[arg-type]
    # THEN it re-read and still ended exactly as wanted, the other writer's entry removed too
    assert addresses(waf, ref) == {"1.2.3.0/24"}
    assert result.update_calls == 2
    assert "80.82.77.33/32" in result.removed


def test_refuses_more_than_waf_allows(ipset: tuple[Any, IpSetRef]) -> None:
    waf, ref = ipset
    too_many = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(IPSET_CAPACITY + 1)]
    with pytest.raises(BlockFailed):
        sync_addresses(waf, ref, too_many)


def test_other_errors_are_not_retried(ipset: tuple[Any, IpSetRef]) -> None:
    waf, ref = ipset

    class Denied:
        def get_ip_set(self, **kwargs: Any) -> Any:
            return waf.get_ip_set(**kwargs)

        def update_ip_set(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateIPSet")

    with pytest.raises(ClientError):
        sync_addresses(Denied(), ref, ["1.2.3.0/24"])  # type: ignore[arg-type]
