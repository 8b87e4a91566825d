"""The block list's truth in DynamoDB and the IPSet convergence built on it, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.blocking import blocklist as blocklist_module
from firebreak.blocking.block import FIRST_POLL_SECONDS, await_writer
from firebreak.blocking.blocklist import Blocklist
from firebreak.blocking.writer import write_pending
from firebreak.core.errors import BlockFailed
from firebreak.core.models import Mode
from firebreak.core.settings import Settings
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
    """The lease's clock, moved on by the test instead of waited out."""
    stepped = SteppedClock()
    monkeypatch.setattr(blocklist_module, "time", stepped)
    return stepped


def entry(blocklist: Blocklist, cidr: str) -> Any:
    return next(e for e in blocklist.entries() if e.cidr == cidr)


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


def test_a_pending_mark_lasts_until_the_writer_clears_it(blocklist: Blocklist) -> None:
    # GIVEN one address recorded as pending (an IPSet lacks it) and one recorded as already in place
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY, pending=True)
    blocklist.record("185.220.101.47/32", 4, "fb-2", NOW, DAY)

    # WHEN a step asks which still wait, before and after the writer cleared the first
    before = blocklist.pending(["45.155.205.233/32", "185.220.101.47/32", "198.51.100.7/32"])
    assert blocklist.written("45.155.205.233/32")
    after = blocklist.pending(["45.155.205.233/32", "185.220.101.47/32"])

    # THEN only the marked one waited, a cleared mark is cleared once, and the block itself is untouched
    assert before == {"45.155.205.233/32": ""} and after == {}
    assert not blocklist.written("45.155.205.233/32")
    assert blocklist.active(NOW)[4] == {"45.155.205.233/32", "185.220.101.47/32"}


def test_a_resighting_of_a_placed_address_leaves_another_steps_mark(blocklist: Blocklist) -> None:
    # GIVEN an address one step recorded as pending
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY, pending=True)

    # WHEN another step, which found it in place, records a sighting without a mark
    blocklist.record("45.155.205.233/32", 4, "fb-2", NOW + 1, DAY)

    # THEN the first step's mark still stands: only the writer clears it
    assert blocklist.pending(["45.155.205.233/32"]) == {"45.155.205.233/32": ""}


def test_a_step_waits_for_the_writer_and_then_finds_its_address_placed(
    blocklist: Blocklist, clock: SteppedClock
) -> None:
    # GIVEN a pending address that the writer places after the step's second poll
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY, pending=True)
    polls = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        polls.append(seconds)
        if len(polls) == 2:
            blocklist.written("45.155.205.233/32")

    # WHEN the step waits up to 20 s
    unplaced = await_writer(blocklist, ["45.155.205.233/32"], 20.0, sleep=sleep, monotonic=clock.monotonic)

    # THEN it stops as soon as the mark is gone, polling soon and then less often
    assert unplaced == set()
    assert polls == [0.25, 0.5]


def test_a_step_stops_waiting_at_its_deadline(blocklist: Blocklist, clock: SteppedClock) -> None:
    # GIVEN a pending address no writer ever places
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY, pending=True)

    # WHEN the step waits up to 3 s
    unplaced = await_writer(blocklist, ["45.155.205.233/32"], 3.0, sleep=clock.sleep, monotonic=clock.monotonic)

    # THEN it gives up after exactly that long, still unplaced (it then writes the address itself)
    assert unplaced == {"45.155.205.233/32"}
    assert clock.slept == pytest.approx(3.0)


def writer_settings(v4: IpSetRef, v6: IpSetRef | None = None) -> Settings:
    return Settings(
        incident_table="",
        responder_topic_arn="",
        blocked_ipv4_set_arn=v4.arn,
        blocked_ipv6_set_arn=v6.arn if v6 else "",
        response_mode=Mode.ENFORCE,
        playbook_modes=(),
        allow_list=(),
        max_addresses_per_incident=50,
        blocklist_table="blocklist",
        ipset_writer=True,
    )


def test_the_writer_puts_everything_pending_in_one_update_per_ipset_and_clears_the_marks(
    blocklist: Blocklist, ipset: IpSetRef, clock: SteppedClock
) -> None:
    # GIVEN three addresses of a storm pending, of two IP versions, and one block already in place
    waf = boto3.client("wafv2")
    v6 = IpSetRef.from_arn(
        waf.create_ip_set(Name="blocked-ipv6", Scope="REGIONAL", IPAddressVersion="IPV6", Addresses=[])["Summary"][
            "ARN"
        ]
    )
    for cidr, family in (("45.155.205.233/32", 4), ("185.220.101.47/32", 4), ("2a0e:97c0:3e3:2a2::1/128", 6)):
        blocklist.record(cidr, family, "fb-1", NOW, DAY, pending=True)

    # WHEN the writer runs once
    written = write_pending(
        blocklist, lambda _: waf, writer_settings(ipset, v6), NOW, sleep=clock.sleep, monotonic=clock.monotonic
    )

    # THEN one UpdateIPSet per set placed them all, the second write a second after the first (WAF's rate), and
    # no mark is left for a waiting step
    assert written.update_ip_set_calls == 2 and not written.failures
    assert present_addresses(waf, ipset) == {"45.155.205.233/32", "185.220.101.47/32"}
    assert present_addresses(waf, v6) == {"2a0e:97c0:3e3:2a2::1/128"}
    assert clock.slept == pytest.approx(1.0)
    assert blocklist.pending(written.placed) == {} and len(written.placed) == 3


def test_the_writer_leaves_the_marks_of_a_set_it_cannot_write(blocklist: Blocklist, ipset: IpSetRef) -> None:
    # GIVEN a pending address and an IPSet that refuses every write with a lock conflict
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY, pending=True)
    waf = boto3.client("wafv2")

    class Locked:
        def get_ip_set(self, **kwargs: Any) -> Any:
            return waf.get_ip_set(**kwargs)

        def update_ip_set(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "WAFOptimisticLockException", "Message": "x"}}, "UpdateIPSet")

    # WHEN the writer runs
    written = write_pending(blocklist, lambda _: Locked(), writer_settings(ipset), NOW, sleep=lambda _: None)

    # THEN it reports the set, and the address stays pending with the reason, so its block step stops waiting and
    # writes (and reports) it itself; a new sighting asks the writer again
    assert written.failures and not written.placed
    [reason] = blocklist.pending(["45.155.205.233/32"]).values()
    assert "stayed locked" in reason
    clock = SteppedClock()
    assert await_writer(blocklist, ["45.155.205.233/32"], 20.0, clock.sleep, clock.monotonic) == {"45.155.205.233/32"}
    assert clock.slept == pytest.approx(FIRST_POLL_SECONDS)  # one poll, not the 20 s
    blocklist.record("45.155.205.233/32", 4, "fb-2", NOW, DAY, pending=True)
    assert blocklist.pending(["45.155.205.233/32"]) == {"45.155.205.233/32": ""}


def test_the_writer_reads_the_table_once_and_again_only_for_a_write_retried_after_a_lock_conflict(
    blocklist: Blocklist, ipset: IpSetRef
) -> None:
    # GIVEN a pending address, a count of the table's scans, and a set whose first write meets a lock conflict,
    # meanwhile another step recording a second address
    blocklist.record("45.155.205.233/32", 4, "fb-1", NOW, DAY, pending=True)
    scans: list[str] = []
    blocklist.dynamodb.meta.events.register("before-call.dynamodb.Scan", lambda **_: scans.append("scan"))
    waf = boto3.client("wafv2")

    class ConflictOnce:
        conflicts = 0

        def get_ip_set(self, **kwargs: Any) -> Any:
            return waf.get_ip_set(**kwargs)

        def update_ip_set(self, **kwargs: Any) -> Any:
            if not self.conflicts:
                self.conflicts += 1
                blocklist.record("185.220.101.47/32", 4, "fb-2", NOW, DAY, pending=True)
                raise ClientError({"Error": {"Code": "WAFOptimisticLockException", "Message": "x"}}, "UpdateIPSet")
            return waf.update_ip_set(**kwargs)

    # WHEN the writer runs with no conflict, then again with one
    first = write_pending(blocklist, lambda _: waf, writer_settings(ipset), NOW, sleep=lambda _: None)
    scans_without_conflict = len(scans)
    blocklist.record("146.70.119.82/32", 4, "fb-3", NOW, DAY, pending=True)
    scans.clear()
    second = write_pending(blocklist, lambda _: ConflictOnce(), writer_settings(ipset), NOW, sleep=lambda _: None)

    # THEN the first run's one scan served both the pending marks and the set's contents; the retried write read
    # the table again, so it also holds what was recorded meanwhile
    assert first.placed == ("45.155.205.233/32",) and scans_without_conflict == 1
    assert second.placed == ("146.70.119.82/32",) and len(scans) == 2
    assert present_addresses(waf, ipset) == {"45.155.205.233/32", "146.70.119.82/32", "185.220.101.47/32"}
