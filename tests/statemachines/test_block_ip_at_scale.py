"""block-ip at scale on the local engine: guards, expiry and its sweep, drift, network ACLs, scopes, finding storms."""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from firebreak.intel.remote_config import forget
from firebreak_local.engine import Engine, Execution
from firebreak_local.storm import attackers, findings, run_storm
from firebreak_local.template import Stack, load_template
from tests.support import TEMPLATE, load_event, start

BRUTE_FORCE = "eventbridge/guardduty_ssh_brute_force"
ATTACKED_SUBNET = "subnet-0a1b2c3d4e5f60001"
BLOCK_FUNCTION = "firebreak-BlockIpFunction"


def attack_from(address: str, finding: str) -> dict[str, Any]:
    """The SSH brute force sample, from another address and as another finding."""
    [event] = findings(load_event(BRUTE_FORCE), 1, [address])
    event["detail"]["id"] = f"{finding}{event['detail']['id'][len(finding) :]}"
    return event


def actions(execution: Execution) -> dict[str, dict[str, Any]]:
    assert execution.status == "SUCCEEDED", execution.cause
    return {a["target"]: a for a in execution.output["actions"] if a["type"] == "block_ip"}


def blocklist_item(engine: Engine, cidr: str) -> dict[str, Any]:
    table = engine.resources["BlocklistTable"].ref
    item = engine.client("dynamodb").get_item(TableName=table, Key={"cidr": {"S": cidr}}).get("Item")
    return item or {}


def set_expiry(engine: Engine, cidr: str, expires_at: int) -> None:
    """Time passing, without waiting: the block's expiry is moved instead."""
    engine.client("dynamodb").update_item(
        TableName=engine.resources["BlocklistTable"].ref,
        Key={"cidr": {"S": cidr}},
        UpdateExpression="SET expires_at = :at",
        ExpressionAttributeValues={":at": {"N": str(expires_at)}},
    )


def edit_ipset(engine: Engine, logical_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
    """A person editing an IPSet in the console."""
    name, ipset_id, scope = engine.resources[logical_id].ref.split("|")
    waf = engine.client("wafv2")
    current = waf.get_ip_set(Name=name, Scope=scope, Id=ipset_id)
    addresses = (set(current["IPSet"]["Addresses"]) | set(add)) - set(remove)
    waf.update_ip_set(Name=name, Scope=scope, Id=ipset_id, Addresses=sorted(addresses), LockToken=current["LockToken"])


def ipset(engine: Engine, logical_id: str) -> list[str]:
    name, ipset_id, scope = engine.resources[logical_id].ref.split("|")
    return sorted(engine.client("wafv2").get_ip_set(Name=name, Scope=scope, Id=ipset_id)["IPSet"]["Addresses"])


@pytest.fixture(autouse=True)
def fresh_address_lists() -> Iterator[None]:
    # Enrichment caches the SSM allow list per process; the guarded stack's list must not judge the next test's.
    forget()
    yield
    forget()


@pytest.fixture
def guarded() -> Iterator[Engine]:
    """A stack with an allow list, a cap of 2 per incident and room for one address per IPSet (headroom 9999)."""
    overrides = {"AllowListCidrs": "45.155.205.0/24", "MaxAddressesPerIncident": "2", "IpSetHeadroom": "9999"}
    with Engine(TEMPLATE, overrides) as running:
        yield running


def test_every_guard_refuses_with_a_clear_reason_in_the_report(guarded: Engine) -> None:
    # GIVEN the account's own Elastic IP and NAT gateway, and a port probe from them, a private address, an
    # allow-listed one and three public attackers
    ec2 = guarded.client("ec2")
    ec2.allocate_address(Domain="vpc", Address="52.95.110.1")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    nat_eip = ec2.allocate_address(Domain="vpc", Address="3.5.140.2")
    ec2.create_nat_gateway(SubnetId=subnet, AllocationId=nat_eip["AllocationId"])
    ec2.release_address(AllocationId=nat_eip["AllocationId"])
    event = load_event("eventbridge/guardduty_port_probe_high")
    probes = event["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"]
    template = probes[0]
    probes[:] = []
    for address in ("10.0.0.9", "45.155.205.7", "52.95.110.1", "3.5.140.2", "194.26.29.102", "185.220.101.47"):
        probe = copy.deepcopy(template)
        probe["remoteIpDetails"] = {"ipAddressV4": address}
        probes.append(probe)
    probes.append({**copy.deepcopy(template), "remoteIpDetails": {"ipAddressV4": "103.145.13.7"}})

    # WHEN it runs
    outcome = actions(start(guarded, event))

    # THEN one attacker is blocked and every other address is skipped with the guard that stopped it
    assert outcome["194.26.29.102/32"]["outcome"] == "applied"
    reasons = {target: a["reason"] for target, a in outcome.items() if a["outcome"] == "skipped"}
    assert reasons["10.0.0.9"].startswith("not a globally routable address")
    assert reasons["45.155.205.7"].startswith("allow-listed by 45.155.205.0/24")
    assert reasons["52.95.110.1"].startswith("the account's own Elastic IP eipalloc-")
    assert reasons["3.5.140.2"].startswith("the account's own NAT gateway nat-")
    assert reasons["1 more addresses (103.145.13.7)"] == "over the cap of 2 addresses per incident"
    assert reasons["185.220.101.47/32"] == (
        "IPv4 block list is full: 1 of 1 addresses (9999 kept free below WAF's 10,000 per IPSet)"
    )
    assert guarded.blocked_ips() == ["194.26.29.102/32"]


def test_expiry_removes_the_last_address_from_the_ipset(engine: Engine) -> None:
    # GIVEN the only blocked address, whose block has expired
    start(engine, load_event(BRUTE_FORCE))
    assert engine.blocked_ips() == ["45.155.205.233/32"]
    set_expiry(engine, "45.155.205.233/32", int(time.time()) - 1)

    # WHEN the scheduled sweep runs
    swept = engine.invoke("SweepBlocklistFunction", {})

    # THEN the IPSet is empty, the table forgot the block, and the sweep reports it lifted, not as drift
    assert engine.blocked_ips() == []
    assert blocklist_item(engine, "45.155.205.233/32") == {}
    assert swept["expired"] == ["45.155.205.233/32"]
    assert swept["lifted"] == ["45.155.205.233/32 in firebreak-blocked-ipv4"]
    assert swept["drift_removed"] == swept["drift_restored"] == swept["failures"] == []


def test_resighting_extends_the_block(engine: Engine) -> None:
    # GIVEN a block about to expire
    first = actions(start(engine, load_event(BRUTE_FORCE)))
    assert first["45.155.205.233/32"]["outcome"] == "applied"
    set_expiry(engine, "45.155.205.233/32", int(time.time()) + 60)

    # WHEN the same address attacks again, in a new finding
    again = actions(start(engine, attack_from("45.155.205.233", "resighted")))

    # THEN the block is reported as already in place and extended by the full 24 hours, and a sweep keeps it
    assert again["45.155.205.233/32"]["outcome"] == "already_applied"
    assert "block extended" in again["45.155.205.233/32"]["reason"]
    item = blocklist_item(engine, "45.155.205.233/32")
    assert int(item["expires_at"]["N"]) > time.time() + 23 * 3600
    assert int(item["sightings"]["N"]) == 2
    assert engine.invoke("SweepBlocklistFunction", {})["expired"] == []
    assert engine.blocked_ips() == ["45.155.205.233/32"]


def test_sweep_repairs_and_reports_drift(engine: Engine) -> None:
    # GIVEN two blocked addresses, then a person adds one address to the IPv4 set and removes the IPv6 one
    start(engine, load_event("eventbridge/guardduty_port_probe_high"))
    edit_ipset(engine, "BlockedIpv4Set", add=("8.8.8.8/32",))
    edit_ipset(engine, "BlockedIpv6Set", remove=("2a0e:97c0:3e3:2a2::1/128",))
    engine.notifications()

    # WHEN the sweep runs
    swept = engine.invoke("SweepBlocklistFunction", {})

    # THEN the sets match the table again, and the repair is reported and told to the responders
    assert engine.blocked_ips() == ["194.26.29.102/32", "2a0e:97c0:3e3:2a2::1/128"]
    assert swept["drift_removed"] == ["8.8.8.8/32 in firebreak-blocked-ipv4"]
    assert swept["drift_restored"] == ["2a0e:97c0:3e3:2a2::1/128 in firebreak-blocked-ipv6"]
    assert swept["expired"] == []
    told = engine.notifications()[-1]
    assert told["subject"] == "Firebreak DRIFT: block lists changed by hand were repaired"
    assert "8.8.8.8/32 in firebreak-blocked-ipv4" in told["message"]


def test_nacl_blocking_denies_in_the_attacked_subnets_acl_and_evicts_the_oldest() -> None:
    # GIVEN network ACL blocking in rules 71-72, and the attacked subnet's ACL with rules of its own at 70 and 73
    with Engine(TEMPLATE, {"NaclBlocking": "true", "NaclRuleRange": "71-72"}) as engine:
        engine.world.seed(load_event(BRUTE_FORCE))
        ec2 = engine.client("ec2")
        [reservation] = ec2.describe_instances(
            Filters=[{"Name": "tag:firebreak:finding-id", "Values": ["i-0a1b2c3d4e5f60001"]}]
        )["Reservations"]
        subnet = reservation["Instances"][0]["SubnetId"]
        acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][
            0
        ]["NetworkAclId"]
        for rule, egress in ((70, False), (70, True), (73, False), (73, True)):
            ec2.create_network_acl_entry(
                NetworkAclId=acl, RuleNumber=rule, Protocol="-1", RuleAction="deny", Egress=egress,
                CidrBlock=f"192.0.2.{rule}/32",
            )  # fmt: skip

        def entries() -> list[dict[str, Any]]:
            acls = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"]
            return sorted(acls[0]["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"]))

        foreign = [e for e in entries() if e["RuleNumber"] not in (71, 72)]
        # AND a sample finding (always dry-run) against the same subnet first, which must only plan
        sample = attack_from("185.220.101.47", "sample")
        sample["detail"]["service"]["additionalInfo"] = {"sample": True, "type": "default", "value": '{"sample":true}'}
        planned = actions(start(engine, sample))[f"185.220.101.47/32 in network ACL of {ATTACKED_SUBNET}"]
        assert planned["outcome"] == "planned"
        assert entries() == foreign  # nothing written inside the range

        # WHEN three attackers (IPv4, IPv6, IPv4) are seen one after the other
        runs = [
            start(engine, attack_from(address, f"nacl{index}"))
            for index, address in enumerate(("45.155.205.233", "2a0e:97c0:3e3:2a2::1", "194.26.29.102"))
        ]

        # THEN each was denied in the ACL of the finding's subnet, in both directions, IPv6 as Ipv6CidrBlock
        assert "Block In Network Acls" in runs[0].states
        last = actions(runs[2])[f"194.26.29.102/32 in network ACL of {ATTACKED_SUBNET}"]
        assert last["outcome"] == "applied"
        assert last["reason"] == f"denied inbound and outbound by rule 71 of {acl}"
        assert runs[2].output["status"] == "CONTAINED"
        denied = {(e["RuleNumber"], e["Egress"]): e.get("CidrBlock") or e.get("Ipv6CidrBlock") for e in entries()}
        # AND the third took the rule of the first, seen longest ago; rules 70 and 73 are exactly as they were
        assert {key: value for key, value in denied.items() if key[0] in (71, 72)} == {
            (71, False): "194.26.29.102/32",
            (71, True): "194.26.29.102/32",
            (72, False): "2a0e:97c0:3e3:2a2::1/128",
            (72, True): "2a0e:97c0:3e3:2a2::1/128",
        }
        assert [e for e in entries() if e["RuleNumber"] not in (71, 72)] == foreign
        # AND the evicted attacker is still blocked in WAF
        assert "45.155.205.233/32" in engine.blocked_ips()


def test_cloudfront_scope_blocks_in_its_own_ipsets_when_enabled() -> None:
    # GIVEN a stack with CLOUDFRONT-scope IPSets as well
    with Engine(TEMPLATE, {"CloudFrontBlocking": "true"}) as engine:
        # WHEN a brute force runs
        outcome = actions(start(engine, load_event(BRUTE_FORCE)))

        # THEN the address is in the REGIONAL and the CLOUDFRONT IPv4 sets, and the action names both
        assert ipset(engine, "BlockedIpv4Set") == ipset(engine, "BlockedCloudFrontIpv4Set") == ["45.155.205.233/32"]
        assert engine.resources["BlockedCloudFrontIpv4Set"].ref.endswith("|CLOUDFRONT")
        assert "firebreak-blocked-cloudfront-ipv4" in outcome["45.155.205.233/32"]["reason"]


def test_finding_storm_loses_no_address_and_fails_no_execution(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 20 findings from 8 attackers, IPv4 and IPv6 mixed (metrics off: in one process, concurrent handlers
    # would flush each other's metrics, which Lambda never does)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    events = findings(load_event(BRUTE_FORCE), 20, attackers(8))

    # WHEN they all start at once
    storm = run_storm(engine, events)

    # THEN every attacker is blocked exactly once, none is lost, every incident is contained,
    # and the writes were batched: far fewer UpdateIPSet calls than blocks
    assert not storm.lost
    assert not storm.duplicated
    assert sorted(set(storm.blocked)) == sorted(storm.expected) and len(storm.expected) == 8
    assert not storm.failed, [json.dumps(e.output)[:300] for e in storm.failed]
    assert {e.output["status"] for e in storm.executions} == {"CONTAINED"}
    assert sum(storm.applied.values()) == 8
    assert storm.update_ip_set_calls <= len(events) // 2


def test_blocks_past_the_functions_reserved_concurrency_are_throttled_and_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a stack that reserves the block function's concurrency (the default reserves none), held full: each of
    # the first invocations holds its slot until four more have been turned away (or a minute), then runs the real
    # handler. Held only until all slots were taken, fast first runs freed them before the rest arrived.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    from functions.block_ip.app import lambda_handler

    overrides = {"BlockIpReservedConcurrency": "4"}
    stack = Stack(
        load_template(TEMPLATE), ref=lambda logical_id: logical_id, get_att=lambda a, b: f"{a}.{b}", overrides=overrides
    )
    reserved = int(stack.properties("BlockIpFunction")["ReservedConcurrentExecutions"])
    arrivals = itertools.count()

    def crowded(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if next(arrivals) < reserved:
            for _ in range(6000):
                if engine.dispatcher.throttled[BLOCK_FUNCTION] - throttled_before >= 4:
                    break
                time.sleep(0.01)
        return lambda_handler(event, context)

    with Engine(TEMPLATE, overrides) as engine:
        engine.dispatcher.override(BLOCK_FUNCTION, crowded)
        events = findings(load_event(BRUTE_FORCE), reserved + 4, attackers(reserved + 4))
        throttled_before = engine.dispatcher.throttled[BLOCK_FUNCTION]

        # WHEN more block-ip playbooks than that start at once
        storm = run_storm(engine, events)

        # THEN Lambda throttled the extra invocations, the playbooks' Retry waited for a slot, and every address is
        # blocked with every incident contained
        assert engine.dispatcher.throttled[BLOCK_FUNCTION] - throttled_before >= 4
    assert not storm.failed, [json.dumps(e.output)[:300] for e in storm.failed]
    assert not storm.lost
    assert {e.output["status"] for e in storm.executions} == {"CONTAINED"}


def test_a_storm_on_the_simulated_clock_is_blocked_within_seconds_in_one_write_per_ipset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 20 findings from 8 attackers, IPv4 and IPv6 mixed, on an engine whose waits take simulated time
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    events = findings(load_event(BRUTE_FORCE), 20, attackers(8))
    with Engine(TEMPLATE, simulated_time=True) as engine:
        # WHEN they all start at once
        storm = run_storm(engine, events)

    # THEN the block steps only recorded, and the one writer put every address in with one UpdateIPSet per IPSet,
    # within its batch window (the IPv6 write a second after the IPv4 one): every attacker blocked in seconds
    assert not storm.lost and not storm.duplicated and not storm.failed
    assert {e.output["status"] for e in storm.executions} == {"CONTAINED"}
    assert storm.update_ip_set_calls == 2
    assert sorted(storm.time_to_block) == sorted(storm.expected)
    assert max(storm.time_to_block.values()) < 5.0
