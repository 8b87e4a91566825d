"""Acting where the workload lives: the stack's own account directly, a member account through its member role."""

from __future__ import annotations

from typing import Any

import pytest

from firebreak.core import aws as clients
from firebreak.core.errors import MemberRoleUnavailable, TransientAwsError
from firebreak.core.members import Organization, member_role_arn, partition_of, session_name, workload_client
from tests.support import refuse_assume_role

SECURITY, MEMBER = "123456789012", "111122223333"
ORG = Organization(stack_account_id=SECURITY, organization_id="o-abcdefghij")


def test_session_name_names_the_incident_within_what_sts_accepts() -> None:
    assert session_name("fb-0123abcd") == "firebreak-fb-0123abcd"
    long = session_name("fb-" + "x" * 100 + " /:")
    assert len(long) == 64 and long.startswith("firebreak-fb-xxx")
    assert set(session_name("fb-a b/c:d")) <= set("firebreak-fbacd")


def test_member_role_arn_is_computed_from_the_fixed_name_and_the_regions_partition() -> None:
    assert (
        member_role_arn(MEMBER, "isolate_instance") == f"arn:aws:iam::{MEMBER}:role/firebreak-member-isolate-instance"
    )
    assert partition_of("cn-north-1") == "aws-cn"
    assert partition_of("us-gov-west-1") == "aws-us-gov"
    assert partition_of("eu-west-1") == partition_of(None) == "aws"


def test_the_stacks_own_account_gets_a_plain_client_and_no_assume_role(aws: None) -> None:
    # GIVEN the finding is about the security account itself
    client = workload_client("ec2", SECURITY, "us-east-1", "isolate_instance", "fb-1", ORG)

    # THEN it is the cached plain client of that Region
    assert client is clients.client("ec2", region="us-east-1")


def test_a_member_account_is_acted_in_through_its_role_and_sees_only_its_own_resources(aws: None) -> None:
    # GIVEN an instance in the member account, made with that account's credentials
    member = workload_client("ec2", MEMBER, "eu-west-1", "isolate_instance", "fb-1", ORG)
    image = member.describe_images()["Images"][0]["ImageId"]
    instance = member.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    # THEN the member client sees it and the security account's client in that Region does not
    ids = {i["InstanceId"] for r in member.describe_instances()["Reservations"] for i in r["Instances"]}
    own = clients.client("ec2", region="eu-west-1").describe_instances()["Reservations"]
    assert instance in ids
    assert instance not in {i["InstanceId"] for r in own for i in r["Instances"]}
    assert member.meta.region_name == "eu-west-1"


def test_a_refused_assume_role_names_the_account_the_role_and_what_to_do(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_assume_role(monkeypatch)

    with pytest.raises(MemberRoleUnavailable) as raised:
        workload_client("ec2", MEMBER, "eu-west-1", "isolate_instance", "fb-2", ORG)

    message = str(raised.value)
    assert MEMBER in message and "firebreak-member-isolate-instance" in message and "AccessDenied" in message
    assert "member stack" in message


def test_throttled_assume_role_is_left_to_the_retry(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_assume_role(monkeypatch, "Throttling", 400)

    with pytest.raises(Exception) as raised:
        workload_client("ec2", MEMBER, "eu-west-1", "isolate_instance", "fb-3", ORG)

    assert not isinstance(raised.value, MemberRoleUnavailable)
    assert not isinstance(raised.value, TransientAwsError)


def test_member_sessions_last_one_invocation(aws: None) -> None:
    opened: list[Any] = []

    @clients.member_sessions
    def invocation() -> None:
        first = workload_client("iam", MEMBER, "us-east-1", "revoke_credentials", "fb-4", ORG)
        again = workload_client("iam", MEMBER, "us-east-1", "revoke_credentials", "fb-4", ORG)
        other = workload_client("iam", MEMBER, "us-east-1", "revoke_credentials", "fb-5", ORG)
        assert first is again and other is not first
        opened.append(first)

    invocation()
    invocation()
    assert opened[0] is not opened[1]


def test_organization_reads_the_templates_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_ACCOUNT_ID", SECURITY)
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")
    monkeypatch.setenv("ALLOWED_ACCOUNT_IDS", f"{MEMBER}, 444455556666,")
    organization = Organization.from_env()
    assert organization == Organization(SECURITY, "o-abcdefghij", frozenset({MEMBER, "444455556666"}))
    assert organization.is_own(SECURITY) and not organization.is_own(MEMBER)
    assert Organization().is_own(MEMBER)
