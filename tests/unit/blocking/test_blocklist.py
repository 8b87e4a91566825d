"""The block list's truth in DynamoDB and the IPSet convergence built on it, against moto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.blocking import block as block_module
from firebreak.blocking import blocklist as blocklist_module
from firebreak.blocking.block import converge_as_writer
from firebreak.blocking.blocklist import Blocklist
from firebreak.core.errors import BlockFailed
from firebreak.core.waf import IpSetRef, converge, present_addresses
from tests.support import SteppedClock, create_blocklist_table

NOW = 1_800_000_000
DAY = 86_400


@pytest.fixture
def blocklist(aws: None) -> Iterator[Blocklist]:
    dynamodb = boto3.client("dynamodb")
    create_blocklist_table(dynamodb, "blocklist")
    yield Blocklist(dynamodb, "blocklist")


@pytest.fixture
def ipset(aws: None) -> IpSetRef:
    summary = boto3.client("wafv2").create_ip_set(
        Name="blocked-ipv4", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=[]
    )["Summary"]
    return IpSetRef.from_arn(summary["ARN"])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    """The lease's and the waiting writer's clock, moved on by the test instead of waited out."""
    stepped = SteppedClock()
    monkeypatch.setattr(blocklist_module, "time", stepped)
    monkeypatch.setattr(block_module, "time", stepped)
    return stepped


def entry(blocklist: Blocklist, cidr: str) -> Any:
    return next(e for e in blocklist.entries() if e.cidr == cidr)


def soon(seconds: float = 5.0) -> float:
    """A writer's deadline, on the clock converge_as_writer reads."""
    return time.monotonic() + seconds


def test_first_sighting_is_new_and_a_resighting_extends_the_expiry(blocklist: Blocklist) -> None:
    # GIVEN an address blocked for a day
    first = blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY)

    # WHEN it is seen attacking again twelve hours later, in another incident
    again = blocklist.record("45.155.205.233/32", 4, "fb-2", NOW + DAY // 2, DAY)

    # THEN the first sighting started the block, the second only extended it by a full TTL from its own time
    assert first.new and first.expires_at == NOW + DAY
    assert not again.new and again.expires_at == NOW + DAY // 2 + DAY
    stored = entry(blocklist, "45.155.205.233/32")
    assert (stored.first_blocked, stored.last_seen, stored.expires_at) == (NOW, NOW + DAY // 2, NOW + DAY + DAY // 2)
    assert stored.incidents == ("fb-1", "fb-2")


def test_a_ttl_of_zero_never_expires(blocklist: Blocklist) -> None:
    # GIVEN a stack with BlockTtlHours 0
    recorded = blocklist.record("2a0e:97c0:3e3:2a2::1/128", 6, "fb-1", NOW, 0)

    # THEN the block has no expiry and is still active ten years on
    assert recorded.expires_at == 0
    assert blocklist.active(NOW + 3650 * DAY)[6] == {"2a0e:97c0:3e3:2a2::1/128"}


def test_an_expired_entry_seen_again_starts_a_new_block(blocklist: Blocklist) -> None:
    # GIVEN a block that expired but was not swept yet
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, 60)

    # WHEN the address attacks again
    again = blocklist.record("45.155.205.233/32", 4, "fb-2", NOW + 120, 60)

    # THEN that sighting counts as a new block
    assert again.new


def test_the_sweep_does_not_delete_an_entry_a_resighting_extended(blocklist: Blocklist) -> None:
    # GIVEN an entry read as expired by the sweep
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, 60)
    stale = entry(blocklist, "45.155.205.233/32")

    # WHEN a re-sighting extends it before the sweep deletes
    blocklist.record("45.155.205.233/32", 4, "fb-2", NOW + 120, 60)

    # THEN the delete is refused and the block stays
    assert not blocklist.delete_expired(stale, NOW + 121)
    assert blocklist.active(NOW + 121)[4] == {"45.155.205.233/32"}


def test_a_lease_has_one_holder_at_a_time(blocklist: Blocklist) -> None:
    # GIVEN one writer holding the lease, WHEN a second writer asks for it
    with blocklist.lease("ipset#a") as first, blocklist.lease("ipset#a") as second:
        # THEN only the first holds it
        assert first and not second
    # AND once released the next writer gets it; leases never show up as blocked addresses
    with blocklist.lease("ipset#a") as third:
        assert third
        assert blocklist.active(NOW) == {4: set(), 6: set()}


def test_converge_with_prune_empties_the_set_when_nothing_is_blocked(ipset: IpSetRef) -> None:
    # GIVEN an IPSet holding one address that is no longer blocked
    waf = boto3.client("wafv2")
    converge(waf, ipset, lambda: {"45.155.205.233/32"}, prune=True)

    # WHEN the set is converged to an empty block list
    result = converge(waf, ipset, set, prune=True)

    # THEN the last address is removed (WAF accepts an empty list) in one write
    assert present_addresses(waf, ipset) == frozenset()
    assert result.removed == {"45.155.205.233/32"} and result.update_calls == 1


def test_converge_skips_the_write_when_the_required_addresses_are_there(ipset: IpSetRef) -> None:
    # GIVEN a set that already holds this incident's address, while the table has another one not yet written
    waf = boto3.client("wafv2")
    converge(waf, ipset, lambda: {"45.155.205.233/32"}, prune=False)

    # WHEN a block step converges for its own address
    result = converge(
        waf, ipset, lambda: {"45.155.205.233/32", "194.26.29.102/32"}, prune=False, required=["45.155.205.233/32"]
    )

    # THEN it does not write: the writer whose address is missing will write both
    assert result.update_calls == 0
    assert present_addresses(waf, ipset) == {"45.155.205.233/32"}


def test_converge_rereads_after_a_lock_conflict_and_keeps_the_other_writers_address(ipset: IpSetRef) -> None:
    # GIVEN another writer that updates the set between this writer's read and its write (once)
    waf = boto3.client("wafv2")
    table = {"45.155.205.233/32"}

    class Racing:
        raced = False

        def get_ip_set(self, **kwargs: Any) -> Any:
            response = waf.get_ip_set(**kwargs)
            if not self.raced:
                self.raced = True
                table.add("194.26.29.102/32")
                converge(waf, ipset, lambda: table, prune=False)
            return response

        def update_ip_set(self, **kwargs: Any) -> Any:
            return waf.update_ip_set(**kwargs)

    # WHEN this writer converges
    result = converge(Racing(), ipset, lambda: table, prune=False, sleep=lambda _: None)  # type: ignore[arg-type]

    # THEN its stale LockToken failed once, it re-read, and both addresses are in the set
    assert present_addresses(waf, ipset) == {"45.155.205.233/32", "194.26.29.102/32"}
    assert result.update_calls == 1


def test_converge_refuses_to_pass_the_limit(ipset: IpSetRef) -> None:
    # GIVEN a limit of two addresses
    waf = boto3.client("wafv2")

    # WHEN three are wanted
    with pytest.raises(BlockFailed, match="over its limit of 2"):
        converge(waf, ipset, lambda: {"1.1.1.1/32", "8.8.8.8/32", "9.9.9.9/32"}, prune=False, limit=2)

    # THEN nothing was written
    assert present_addresses(waf, ipset) == frozenset()


def test_non_lock_errors_are_not_retried(ipset: IpSetRef) -> None:
    # GIVEN WAF refusing the write for a reason other than the LockToken
    class Denied:
        def get_ip_set(self, **kwargs: Any) -> Any:
            return boto3.client("wafv2").get_ip_set(**kwargs)

        def update_ip_set(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateIPSet")

    # WHEN converging, THEN the error reaches the caller (and the ASL Retry/Catch) untouched
    with pytest.raises(ClientError, match="AccessDenied"):
        converge(Denied(), ipset, lambda: {"1.1.1.1/32"}, prune=False)  # type: ignore[arg-type]


def test_a_lingering_lease_keeps_the_next_writer_out_until_the_spacing_passed(
    blocklist: Blocklist, clock: SteppedClock
) -> None:
    # GIVEN a writer that asks its lease to linger for 0.3 s, and another writer turned away while it held it
    with blocklist.lease("ipset#a") as lease:
        lease.linger_seconds = 0.3
        with blocklist.lease("ipset#a") as turned_away:
            assert not turned_away

    # WHEN the next writer asks at once, and again after the spacing
    with blocklist.lease("ipset#a") as at_once:
        assert not at_once
    clock.advance(0.35)

    # THEN only the later try gets it
    with blocklist.lease("ipset#a") as later:
        assert later


def test_a_lease_nobody_waited_for_does_not_linger(blocklist: Blocklist) -> None:
    # GIVEN a writer that asks its lease to linger, with no other writer trying meanwhile
    with blocklist.lease("ipset#a") as lease:
        lease.linger_seconds = 30.0

    # WHEN the next writer asks at once
    # THEN it gets it: nobody was queued, so there was nothing to batch
    with blocklist.lease("ipset#a") as next_writer:
        assert next_writer


def test_a_lone_write_does_not_hold_up_the_next_writer(blocklist: Blocklist, ipset: IpSetRef) -> None:
    # GIVEN one incident's address recorded, and written as the one writer of the moment
    waf = boto3.client("wafv2")
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY)
    converge_as_writer(waf, ipset, lambda: {"45.155.205.233/32"}, ["45.155.205.233/32"], blocklist, soon())

    # WHEN the next incident's writer asks for the lease at once
    # THEN it gets it: nobody waited behind the write, so it spaces nothing
    with blocklist.lease(f"ipset#{ipset.arn}") as next_writer:
        assert next_writer


def test_a_write_other_writers_waited_for_spaces_the_next_one(blocklist: Blocklist, ipset: IpSetRef) -> None:
    # GIVEN a storm: while one incident's writer holds the lease, another incident's writer is turned away
    waf = boto3.client("wafv2")
    turned_away = []

    def desired() -> set[str]:
        with blocklist.lease(f"ipset#{ipset.arn}") as other:
            turned_away.append(not other)
        return {"45.155.205.233/32", "185.220.101.47/32"}

    converge_as_writer(waf, ipset, desired, ["45.155.205.233/32"], blocklist, soon())

    # WHEN the next writer asks for the lease at once
    # THEN it waits out the spacing, so the storm's later addresses go out together in the next write
    assert turned_away == [True]
    assert present_addresses(waf, ipset) == {"45.155.205.233/32", "185.220.101.47/32"}
    with blocklist.lease(f"ipset#{ipset.arn}") as next_writer:
        assert not next_writer


def test_a_writer_still_waiting_at_its_deadline_writes_anyway(
    blocklist: Blocklist, ipset: IpSetRef, clock: SteppedClock
) -> None:
    # GIVEN another writer holding the lease for longer than this writer can wait
    waf = boto3.client("wafv2")
    with blocklist.lease(f"ipset#{ipset.arn}", seconds=60) as other:
        assert other

        # WHEN this writer's deadline passes while it waits
        deadline = clock.monotonic() + 0.3
        result = converge_as_writer(
            waf, ipset, lambda: {"45.155.205.233/32"}, ["45.155.205.233/32"], blocklist, deadline, sleep=clock.sleep
        )
        assert clock.slept >= 0.3

    # THEN it wrote its address itself (the LockToken keeps the write safe) rather than leave it out
    assert result.update_calls == 1
    assert present_addresses(waf, ipset) == {"45.155.205.233/32"}
