"""One security account answering an organization: the real playbooks act in the finding's member account and
Region through the member roles member.yaml deploys, and end truthfully where they cannot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from firebreak_local.engine import Engine, Execution
from tests.support import TEMPLATE, incident_record, load_event, records, report_of, start

SECURITY = "123456789012"
MEMBER_A, REGION_A = "111122223333", "eu-west-1"
MEMBER_B, REGION_B = "222233334444", "us-west-2"
STRANGER = "999988887777"
C2_INSTANCE = "i-0a1b2c3d4e5f60003"


@pytest.fixture
def organization() -> Iterator[Engine]:
    with Engine(TEMPLATE) as running:
        yield running


def actions(execution: Execution, outcome: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = report_of(execution)["actions"]
    return [action for action in found if outcome is None or action["outcome"] == outcome]


def groups_of(engine: Engine, account: str, region: str) -> dict[str, str]:
    groups = engine.client("ec2", account=account, region=region).describe_security_groups()["SecurityGroups"]
    return {group["GroupId"]: group["GroupName"] for group in groups}


def interface_groups(engine: Engine, account: str, region: str) -> list[list[str]]:
    ec2 = engine.client("ec2", account=account, region=region)
    interfaces = ec2.describe_network_interfaces()["NetworkInterfaces"]
    return [sorted(group["GroupId"] for group in interface["Groups"]) for interface in interfaces]


def quarantined_in(engine: Engine, account: str, region: str) -> bool:
    names = groups_of(engine, account, region)
    return any(
        names.get(groups[0], "").startswith("firebreak-quarantine")
        for groups in interface_groups(engine, account, region)
        if len(groups) == 1
    )


def in_account(event: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    """The event as if its finding were about account and region (every mention of the member's ids replaced)."""
    text = json.dumps(event)
    old_account, old_region = event["detail"]["accountId"], event["detail"]["region"]
    return dict(json.loads(text.replace(old_account, account).replace(old_region, region)))


def test_an_instance_in_a_member_account_of_another_region_is_contained_there(organization: Engine) -> None:
    # GIVEN a C2 finding about an instance of member A in eu-west-1, delivered to the security account
    event = load_event("eventbridge/guardduty_member_c2_outbound")

    # WHEN it runs
    execution = start(organization, event)

    # THEN the instance is quarantined in member A's eu-west-1, the attacker blocked in the shared IPSets
    report = report_of(execution)
    assert report["status"] == "CONTAINED", actions(execution, "failed")
    assert quarantined_in(organization, MEMBER_A, REGION_A)
    # AND nothing of it happened in the security account or in member A's other Regions
    assert not quarantined_in(organization, SECURITY, REGION_A)
    assert not any(name.startswith("firebreak-") for name in groups_of(organization, MEMBER_A, "us-east-1").values())
    assert "193.233.20.15/32" in organization.blocked_ips()
    world = organization.world.report()["instances"][C2_INSTANCE]
    assert (world["account"], world["region"], world["quarantined"]) == (MEMBER_A, REGION_A, True)
    # AND each acting step assumed its member role once: isolation, evidence, and block-ip's own-address guard
    assert execution.api_calls.get("sts.AssumeRole") == 3
    assert organization.assume_role_refusals() == []


def test_a_member_accounts_key_is_revoked_in_that_account_and_released(organization: Engine) -> None:
    event = load_event("eventbridge/guardduty_member_iam_user_key_compromised")
    key = event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]

    execution = start(organization, event)

    assert report_of(execution)["status"] == "CONTAINED", actions(execution, "failed")
    by_account = organization.accounts_report()
    assert by_account[MEMBER_B]["access_keys"] == {key: "Inactive"}
    assert organization.client("iam").list_users()["Users"] == []
    # WHEN the incident is released THEN the member's key is active again and its deny policy gone
    release = organization.release(report_of(execution)["incident_id"])
    assert report_of(release)["status"] == "RELEASED", report_of(release)
    iam = organization.client("iam", account=MEMBER_B)
    assert organization.accounts_report()[MEMBER_B]["access_keys"] == {key: "Active"}
    assert iam.list_user_policies(UserName="ci-deployer")["PolicyNames"] == []


def test_a_member_accounts_attacker_is_blocked_in_the_security_accounts_ipsets_and_released(
    organization: Engine,
) -> None:
    event = load_event("eventbridge/guardduty_member_ssh_brute_force")

    execution = start(organization, event)

    assert report_of(execution)["status"] == "CONTAINED"
    assert organization.blocked_ips() == ["45.155.205.233/32"]
    # The block lists live in the security account: only the own-address guard reads the member, in one session.
    assert execution.api_calls.get("sts.AssumeRole") == 1
    release = organization.release(report_of(execution)["incident_id"])
    assert report_of(release)["status"] == "RELEASED"
    assert organization.blocked_ips() == []


def test_a_contained_member_instance_is_released_through_the_member_role(organization: Engine) -> None:
    execution = start(organization, load_event("eventbridge/guardduty_member_c2_outbound"))
    assert quarantined_in(organization, MEMBER_A, REGION_A)

    release = organization.release(report_of(execution)["incident_id"])

    assert report_of(release)["status"] == "RELEASED", [a["reason"] for a in report_of(release)["actions"]]
    assert not quarantined_in(organization, MEMBER_A, REGION_A)
    assert ["sg-0a1b2c3d4e5f60001"] in [
        [organization.world.finding_id(group) for group in groups]
        for groups in interface_groups(organization, MEMBER_A, REGION_A)
    ]
    assert organization.blocked_ips() == []
    assert release.api_calls.get("sts.AssumeRole", 0) >= 1


def test_an_account_without_the_member_role_is_blocked_and_says_what_it_could_not_do() -> None:
    # GIVEN member A has not received the member stack yet
    with Engine(TEMPLATE, without_member_role=[MEMBER_A]) as engine:
        # WHEN its C2 finding runs
        execution = start(engine, load_event("eventbridge/guardduty_member_c2_outbound"))

        # THEN the attacker is blocked, isolation and evidence failed naming the account and role, and the status
        # and the notification say so
        report = report_of(execution)
        assert report["status"] == "PARTIALLY_CONTAINED"
        failed = {action["reason"] for action in actions(execution, "failed")}
        assert any("firebreak-member-isolate-instance" in reason and MEMBER_A in reason for reason in failed)
        assert any("firebreak-member-preserve-evidence" in reason for reason in failed)
        assert all("member stack" in reason for reason in failed)
        assert engine.blocked_ips() == ["193.233.20.15/32"]
        assert not quarantined_in(engine, MEMBER_A, REGION_A)
        assert incident_record(engine, report["incident_id"])["status"] == "PARTIALLY_CONTAINED"
        notification = engine.notifications()[-1]
        assert notification["subject"].startswith("Firebreak PARTIALLY_CONTAINED")
        assert "firebreak-member-isolate-instance" in notification["message"]
        refused = engine.assume_role_refusals()
        assert {refusal.role_arn.rsplit("/", 1)[-1] for refusal in refused} >= {"firebreak-member-isolate-instance"}


def test_a_trust_policy_naming_another_functions_role_is_refused(organization: Engine) -> None:
    # GIVEN member A's isolation role trusts the network ACL function's role instead of the isolation function's
    organization.prepare_account(MEMBER_A, REGION_A)
    iam = organization.client("iam", account=MEMBER_A)
    trust = iam.get_role(RoleName="firebreak-member-isolate-instance")["Role"]["AssumeRolePolicyDocument"]
    statement = trust["Statement"][0]
    caller = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] = caller.replace("IsolateInstance", "BlockInNetworkAcl")
    iam.update_assume_role_policy(RoleName="firebreak-member-isolate-instance", PolicyDocument=json.dumps(trust))

    execution = start(organization, load_event("eventbridge/guardduty_member_c2_outbound"))

    # THEN isolation is refused with STS's AccessDenied, evidence (its own role) still kept, the status truthful
    [isolation] = [a for a in actions(execution, "failed") if "isolate-instance" in a["reason"]]
    assert "AccessDenied" in isolation["reason"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert not quarantined_in(organization, MEMBER_A, REGION_A)
    [refusal] = organization.assume_role_refusals()
    assert refusal.role_arn == f"arn:aws:iam::{MEMBER_A}:role/firebreak-member-isolate-instance"


def test_two_members_findings_about_resources_with_the_same_names_do_not_cross(organization: Engine) -> None:
    # GIVEN member A (eu-west-1) and member B (us-west-2) each report an instance with the same id, ENIs and groups
    first = start(organization, load_event("eventbridge/guardduty_member_c2_outbound"))
    second = start(organization, load_event("eventbridge/guardduty_member_c2_outbound_same_names"))

    # THEN each is contained in its own account and Region, as its own incident
    assert [report_of(first)["status"], report_of(second)["status"]] == ["CONTAINED", "CONTAINED"]
    assert report_of(first)["incident_id"] != report_of(second)["incident_id"]
    assert quarantined_in(organization, MEMBER_A, REGION_A) and quarantined_in(organization, MEMBER_B, REGION_B)
    instances = organization.world.report()["instances"]
    assert set(instances) == {f"{MEMBER_A}/{REGION_A}/{C2_INSTANCE}", f"{MEMBER_B}/{REGION_B}/{C2_INSTANCE}"}
    # AND releasing one leaves the other contained
    organization.release(report_of(first)["incident_id"])
    assert not quarantined_in(organization, MEMBER_A, REGION_A)
    assert quarantined_in(organization, MEMBER_B, REGION_B)


def test_a_finding_about_an_account_outside_the_organization_is_rejected_and_notified() -> None:
    event = in_account(load_event("eventbridge/guardduty_member_c2_outbound"), STRANGER, REGION_A)
    with Engine(TEMPLATE, outside_organization=[STRANGER]) as engine:
        execution = start(engine, event)

        rejected = [record for record in records(engine) if record.get("status") == "REJECTED"]
        assert len(rejected) == 1 and STRANGER in rejected[0]["reason"]
        assert "not a member" in rejected[0]["reason"]
        assert engine.blocked_ips() == []
        assert engine.notifications()[-1]["subject"].startswith("Firebreak REJECTED")
        assert execution.status == "SUCCEEDED"


def test_allowed_account_ids_answer_an_outsider_that_deployed_the_member_stack() -> None:
    event = in_account(load_event("eventbridge/guardduty_member_ssh_brute_force"), STRANGER, REGION_A)
    with Engine(TEMPLATE, outside_organization=[STRANGER], overrides={"AllowedAccountIds": STRANGER}) as engine:
        assert report_of(start(engine, event))["status"] == "CONTAINED"
        assert engine.blocked_ips() == ["45.155.205.233/32"]


def test_a_single_account_stack_rejects_another_accounts_finding() -> None:
    with Engine(TEMPLATE, overrides={"OrganizationId": "", "OrganizationUnitIds": ""}) as engine:
        start(engine, load_event("eventbridge/guardduty_member_c2_outbound"))

        [rejected] = [record for record in records(engine) if record.get("status") == "REJECTED"]
        assert MEMBER_A in rejected["reason"] and "AllowedAccountIds" in rejected["reason"]
        assert not quarantined_in(engine, MEMBER_A, REGION_A)


def test_a_member_accounts_own_elastic_ip_is_never_blocked(organization: Engine) -> None:
    # GIVEN member A's brute force comes from one of member A's own Elastic IPs in that Region
    organization.prepare_account(MEMBER_A, REGION_A)
    ec2 = organization.client("ec2", account=MEMBER_A, region=REGION_A)
    assert ec2.allocate_address(Domain="vpc", Address="45.155.205.233")["PublicIp"] == "45.155.205.233"
    event = load_event("eventbridge/guardduty_member_ssh_brute_force")

    # WHEN it runs
    execution = start(organization, event)

    # THEN the address is refused by the guard, read through block-ip's member role, and nothing is blocked
    assert organization.blocked_ips() == []
    [refused] = [a for a in actions(execution) if a["type"] == "block_ip"]
    assert refused["outcome"] == "skipped" and "Elastic IP" in refused["reason"]
