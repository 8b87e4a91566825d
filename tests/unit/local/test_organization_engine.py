"""The engine's organization: member accounts get member.yaml's roles, AssumeRole is checked as AWS checks it, and
each finding's resources live in its own account and Region."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.exceptions import ClientError

from firebreak_local.cli import main
from firebreak_local.engine import ACCOUNT_ID, REGION, Engine
from firebreak_local.organization import Caller, Unevaluable, trust_allows
from firebreak_local.template import load_template
from tests.support import ROOT, TEMPLATE, load_event

MEMBER = "111122223333"
OTHER_MEMBER = "444455556666"
MEMBER_REGION = "eu-west-1"
SCHEMA = json.loads((ROOT / "contracts" / "run-report.schema.json").read_text())
ISOLATE_ROLE = f"arn:aws:iam::{MEMBER}:role/firebreak-member-isolate-instance"
ISOLATE_CALLER = f"arn:aws:iam::{ACCOUNT_ID}:role/firebreak-IsolateInstanceFunctionRole"
BLOCK_IP_CALLER = f"arn:aws:iam::{ACCOUNT_ID}:role/firebreak-BlockIpFunctionRole"


def member_role_names() -> list[str]:
    """Every RoleName member.yaml declares, whatever else it holds."""
    resources = load_template(ROOT / "member.yaml").resources.values()
    return sorted(r["Properties"]["RoleName"] for r in resources if r["Type"] == "AWS::IAM::Role")


def roles_in(engine: Engine, account: str) -> list[str]:
    return sorted(role["RoleName"] for role in engine.client("iam", account=account).list_roles()["Roles"])


def in_account(event: dict[str, Any], account: str, region: str = MEMBER_REGION) -> dict[str, Any]:
    moved = copy.deepcopy(event)
    moved["detail"].update(accountId=account, region=region)
    return moved


def assume_as(engine: Engine, function: str, role_arn: str) -> dict[str, Any]:
    """sts:AssumeRole made from inside function's handler: the credentials, or the error AWS answered."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            response = boto3.client("sts", region_name=REGION).assume_role(
                RoleArn=event["role_arn"], RoleSessionName="firebreak-fb-test"
            )
        except ClientError as error:
            return {
                "code": error.response["Error"]["Code"],
                "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
                "message": error.response["Error"]["Message"],
            }
        return {"credentials": {key: str(value) for key, value in response["Credentials"].items()}}

    engine.dispatcher.override(engine.resources[function].ref, handler)
    try:
        result: dict[str, Any] = engine.invoke(function, {"role_arn": role_arn})
    finally:
        engine.dispatcher.override(engine.resources[function].ref, None)
    return result


def refused_message(function: str, role_arn: str) -> str:
    return (
        f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/firebreak-{function}Role/firebreak-{function} "
        f"is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


@pytest.fixture
def engine() -> Iterator[Engine]:
    with Engine(TEMPLATE, without_member_role=[OTHER_MEMBER]) as running:
        running.prepare_account(MEMBER, MEMBER_REGION)
        yield running


def test_member_account_gets_exactly_the_member_roles_trusting_its_function_in_the_organization(
    engine: Engine,
) -> None:
    # GIVEN a member account prepared before its first event (fixture)
    # THEN its IAM holds member.yaml's roles and nothing else
    assert roles_in(engine, MEMBER) == member_role_names()
    assert sorted(engine.member_roles(MEMBER)) == member_role_names()
    # AND each role trusts the SAM role of its function, within the emulated organization
    trust = engine.client("iam", account=MEMBER).get_role(RoleName="firebreak-member-isolate-instance")["Role"]
    statement = trust["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": ISOLATE_CALLER},
        "StringEquals": {"aws:PrincipalOrgID": engine.organization.id},
    }
    # AND the security account's Organizations answers for the member, by the finding's account id
    account = engine.client("organizations").describe_account(AccountId=MEMBER)["Account"]
    assert (account["Id"], account["State"]) == (MEMBER, "ACTIVE")
    parents = engine.client("organizations").list_parents(ChildId=MEMBER)["Parents"]
    assert parents == [{"Id": engine.organization.unit_id, "Type": "ORGANIZATIONAL_UNIT"}]


def test_account_without_member_role_joins_the_organization_with_no_roles(engine: Engine) -> None:
    # WHEN an account listed in without_member_role is prepared
    engine.prepare_account(OTHER_MEMBER, MEMBER_REGION)

    # THEN it is a member, but has none of the member roles
    assert roles_in(engine, OTHER_MEMBER) == []
    assert engine.member_roles(OTHER_MEMBER) == []
    account = engine.client("organizations").describe_account(AccountId=OTHER_MEMBER)["Account"]
    assert account["State"] == "ACTIVE"


def test_security_account_gets_no_member_stack(engine: Engine) -> None:
    # WHEN the security account itself is named by a finding
    engine.prepare_account(ACCOUNT_ID, REGION)

    # THEN it is not given member roles (a StackSet never deploys to its own account)
    assert not any(name.startswith("firebreak-member-") for name in roles_in(engine, ACCOUNT_ID))
    assert ACCOUNT_ID not in engine.member_accounts()


def test_trusted_function_assumes_its_member_role_and_acts_in_the_member_account(engine: Engine) -> None:
    # GIVEN an instance in the member account and one in the security account
    member_event = in_account(load_event("eventbridge/guardduty_crypto_mining"), MEMBER)
    member_instance = engine.world.seed(member_event)["detail"]["resource"]["instanceDetails"]["instanceId"]
    home_instance = engine.world.seed(load_event("eventbridge/guardduty_crypto_mining"))["detail"]["resource"][
        "instanceDetails"
    ]["instanceId"]

    # WHEN the isolate function's handler assumes its member role
    answer = assume_as(engine, "IsolateInstanceFunction", ISOLATE_ROLE)

    # THEN it gets credentials, and clients built from them see the member's instances, not the security account's
    credentials = answer["credentials"]
    ec2 = boto3.client(
        "ec2",
        region_name=MEMBER_REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    seen = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert seen == {member_instance}
    assert home_instance not in seen
    identity = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    ).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/firebreak-member-isolate-instance/firebreak-fb-test"
    assert engine.assume_role_refusals() == []


def test_another_function_is_refused_the_member_role_with_stss_access_denied(engine: Engine) -> None:
    # WHEN the block-ip function's handler assumes the isolate function's member role
    answer = assume_as(engine, "BlockIpFunction", ISOLATE_ROLE)

    # THEN STS answers AccessDenied, 403, with its own message naming the caller's session and the role
    assert answer == {
        "code": "AccessDenied",
        "status": 403,
        "message": refused_message("BlockIpFunction", ISOLATE_ROLE),
    }
    assert [refusal.reason for refusal in engine.assume_role_refusals()] == [
        "the trust policy does not allow the caller"
    ]


def test_missing_role_is_refused(engine: Engine) -> None:
    # GIVEN an account the StackSet has not reached yet
    engine.prepare_account(OTHER_MEMBER, MEMBER_REGION)
    role_arn = f"arn:aws:iam::{OTHER_MEMBER}:role/firebreak-member-isolate-instance"

    # WHEN the isolate function assumes its member role there
    answer = assume_as(engine, "IsolateInstanceFunction", role_arn)

    # THEN it is refused as AWS refuses a role that does not exist: the same AccessDenied
    assert answer == {
        "code": "AccessDenied",
        "status": 403,
        "message": refused_message("IsolateInstanceFunction", role_arn),
    }
    assert engine.assume_role_refusals()[-1].reason == "no such role"


def test_role_in_a_suspended_account_is_refused(engine: Engine) -> None:
    # GIVEN the member account is closed (suspended), its roles still in place
    engine.client("organizations").close_account(AccountId=MEMBER)

    # WHEN the trusted function assumes its member role there
    answer = assume_as(engine, "IsolateInstanceFunction", ISOLATE_ROLE)

    # THEN it is refused, although moto would hand out credentials
    assert answer["code"] == "AccessDenied"
    assert engine.assume_role_refusals()[-1].reason == "the account is suspended"


def trusting(engine: Engine, name: str, principal: str, condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition is not None:
        statement["Condition"] = condition
    document = {"Version": "2012-10-17", "Statement": [statement]}
    role = engine.client("iam", account=MEMBER).create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(document)
    )
    arn: str = role["Role"]["Arn"]
    return arn


def test_trust_policy_naming_another_functions_role_is_refused(engine: Engine) -> None:
    # GIVEN a member role that trusts the block-ip function's role, in the organization
    in_org = {"StringEquals": {"aws:PrincipalOrgID": engine.organization.id}}
    role_arn = trusting(engine, "trusts-block-ip", BLOCK_IP_CALLER, in_org)

    # WHEN the isolate function assumes it
    answer = assume_as(engine, "IsolateInstanceFunction", role_arn)

    # THEN it is refused; the function it trusts gets in
    assert answer["code"] == "AccessDenied"
    assert answer["message"] == refused_message("IsolateInstanceFunction", role_arn)
    assert "credentials" in assume_as(engine, "BlockIpFunction", role_arn)


def test_trust_policy_of_another_organization_is_refused(engine: Engine) -> None:
    # GIVEN a member role that trusts the isolate function's role, but only inside another organization
    role_arn = trusting(
        engine, "other-org", ISOLATE_CALLER, {"StringEquals": {"aws:PrincipalOrgID": "o-someoneelse12"}}
    )

    # WHEN the isolate function assumes it
    answer = assume_as(engine, "IsolateInstanceFunction", role_arn)

    # THEN it is refused
    assert answer == {
        "code": "AccessDenied",
        "status": 403,
        "message": refused_message("IsolateInstanceFunction", role_arn),
    }


def test_trust_policy_the_engine_cannot_evaluate_is_refused_saying_why(engine: Engine) -> None:
    # GIVEN a role whose trust condition uses an operator the engine does not evaluate
    role_arn = trusting(engine, "binary", ISOLATE_CALLER, {"BinaryEquals": {"aws:PrincipalArn": "YXJu"}})

    # WHEN the isolate function assumes it
    answer = assume_as(engine, "IsolateInstanceFunction", role_arn)

    # THEN it fails closed, and the message says what the engine could not evaluate
    assert answer["code"] == "AccessDenied"
    assert answer["message"].startswith(refused_message("IsolateInstanceFunction", role_arn))
    assert "cannot evaluate the condition operator BinaryEquals" in answer["message"]


def test_assume_role_outside_a_handler_is_not_the_stacks_and_is_not_checked(engine: Engine) -> None:
    # WHEN a test (no handler running) assumes the member role
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=ISOLATE_ROLE, RoleSessionName="setup")

    # THEN moto answers as usual
    assert credentials["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert engine.assume_role_refusals() == []


def test_two_accounts_naming_the_same_instance_keep_their_own(engine: Engine) -> None:
    # GIVEN the same finding (same instance, interface and group ids) in two member accounts
    event = load_event("eventbridge/guardduty_crypto_mining")
    engine.prepare_account(OTHER_MEMBER, MEMBER_REGION)
    first = engine.world.seed(in_account(event, MEMBER))
    second = engine.world.seed(in_account(event, OTHER_MEMBER))
    again = engine.world.seed(in_account(event, MEMBER))

    # THEN each account got its own instance, delivered to its own findings
    ids = [e["detail"]["resource"]["instanceDetails"]["instanceId"] for e in (first, second, again)]
    assert ids[0] != ids[1]
    assert ids[0] == ids[2]
    for account, instance in ((MEMBER, ids[0]), (OTHER_MEMBER, ids[1])):
        ec2 = engine.client("ec2", account=account, region=MEMBER_REGION)
        seen = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
        assert seen == {instance}
    # AND the report shows both, each with its account and Region
    finding_instance = event["detail"]["resource"]["instanceDetails"]["instanceId"]
    instances = engine.world.report()["instances"]
    assert sorted(instances) == [
        f"{MEMBER}/{MEMBER_REGION}/{finding_instance}",
        f"{OTHER_MEMBER}/{MEMBER_REGION}/{finding_instance}",
    ]
    assert {(i["account"], i["region"]) for i in instances.values()} == {
        (MEMBER, MEMBER_REGION),
        (OTHER_MEMBER, MEMBER_REGION),
    }


def test_by_account_shows_a_members_keys_roles_and_network_acl_blocks(engine: Engine) -> None:
    # GIVEN a key finding in the member account, and a network ACL deny entry there
    event = in_account(load_event("eventbridge/guardduty_iam_user_key_compromised"), MEMBER)
    engine.world.seed(event)
    finding_key = event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
    ec2 = engine.client("ec2", account=MEMBER, region=MEMBER_REGION)
    acl = ec2.describe_network_acls()["NetworkAcls"][0]["NetworkAclId"]
    ec2.create_network_acl_entry(
        NetworkAclId=acl, RuleNumber=71, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="198.51.100.7/32"
    )

    # WHEN the accounts are reported
    by_account = engine.accounts_report()

    # THEN the member's entry holds its key, its member roles and the blocked address; the security account none
    assert set(by_account) == {MEMBER}
    assert by_account[MEMBER]["access_keys"] == {finding_key: "Active"}
    assert by_account[MEMBER]["network_acl_blocked"] == ["198.51.100.7/32"]
    assert sorted(by_account[MEMBER]["member_roles"]) == member_role_names()


def test_report_of_member_and_security_findings_validates_with_account_and_region(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one finding in a member account and one in the security account
    monkeypatch.chdir(ROOT)
    member = tmp_path / "member.json"
    member.write_text(json.dumps(in_account(load_event("eventbridge/guardduty_port_probe_low"), MEMBER)))
    home = "events/eventbridge/guardduty_ssh_brute_force.json"

    # WHEN they run with --json, the member's StackSet not deployed yet
    status = main(["run", "--json", str(member), home, "--without-member-role", MEMBER])
    document = json.loads(capsys.readouterr().out)

    # THEN the report validates, each result names its finding's account and Region, and the member is reported
    jsonschema.validate(document, SCHEMA)
    assert status == 0
    assert [(r["account"], r["region"]) for r in document["results"]] == [
        (MEMBER, MEMBER_REGION),
        (ACCOUNT_ID, REGION),
    ]
    assert document["world"]["by_account"][MEMBER]["member_roles"] == []
    assert all(i["account"] == ACCOUNT_ID for i in document["world"]["instances"].values())


@pytest.mark.parametrize("account", ["12345", "1234567890123", "abcdefghijkl"])
def test_without_member_role_takes_only_a_12_digit_account(capsys: pytest.CaptureFixture[str], account: str) -> None:
    # WHEN the option names something that is not an account id
    status = main(
        ["run", str(ROOT / "events/eventbridge/guardduty_ssh_brute_force.json"), "--without-member-role", account]
    )

    # THEN the command exits 2 with one line saying so, and runs nothing
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.strip().splitlines() == [
        f"firebreak: --without-member-role {account}: not a 12-digit account id"
    ]
    assert captured.out == ""


# --- trust policy evaluation, without an engine -------------------------------------------------------------------

CALLER = Caller(ISOLATE_CALLER, "firebreak-IsolateInstanceFunction")
IN_ORG = {"aws:principalorgid": "o-abcdefghij", "aws:principalarn": ISOLATE_CALLER, "aws:principalaccount": ACCOUNT_ID}
NO_ORG = {**IN_ORG, "aws:principalorgid": None}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": ISOLATE_CALLER}, "Action": "sts:AssumeRole", **fields}


@pytest.mark.parametrize(
    ("document", "context", "allowed"),
    [
        (policy(allow()), IN_ORG, True),
        (policy(allow(Principal={"AWS": [BLOCK_IP_CALLER, ISOLATE_CALLER]})), IN_ORG, True),
        (policy(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"})), IN_ORG, True),
        (policy(allow(Principal={"Service": "ec2.amazonaws.com"})), IN_ORG, False),
        (policy(allow(Action=["sts:TagSession", "sts:AssumeRole"])), IN_ORG, True),
        (policy(allow(Action="sts:*")), IN_ORG, True),
        (policy(allow(Action="sts:AssumeRoleWithSAML")), IN_ORG, False),
        (policy(allow(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}})), IN_ORG, True),
        (policy(allow(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}})), NO_ORG, False),
        (policy(allow(Condition={"StringEquals": {"aws:PrincipalArn": [BLOCK_IP_CALLER]}})), IN_ORG, False),
        (
            policy(allow(Principal={"AWS": ACCOUNT_ID}, Condition={"ArnEquals": {"aws:PrincipalArn": ISOLATE_CALLER}})),
            IN_ORG,
            True,
        ),
        (
            policy(
                allow(Principal={"AWS": ACCOUNT_ID}, Condition={"ArnEquals": {"aws:PrincipalArn": BLOCK_IP_CALLER}})
            ),
            IN_ORG,
            False,
        ),
        (
            policy(allow(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/firebreak-Isolate*"}})),
            IN_ORG,
            True,
        ),
        (policy(allow(), {**allow(), "Effect": "Deny"}), IN_ORG, False),
        (policy(allow(Principal={"AWS": BLOCK_IP_CALLER})), IN_ORG, False),
        (policy(), IN_ORG, False),
    ],
)
def test_trust_policy_evaluation(document: dict[str, Any], context: dict[str, Any], allowed: bool) -> None:
    assert trust_allows(document, CALLER, context) is allowed


@pytest.mark.parametrize(
    "document",
    [
        policy(allow(Condition={"BinaryEquals": {"aws:PrincipalArn": "YXJu"}})),
        policy(allow(Condition={"StringEquals": {"aws:SourceIp": "10.0.0.1"}})),
        policy({"Effect": "Allow", "NotPrincipal": {"AWS": BLOCK_IP_CALLER}, "Action": "sts:AssumeRole"}),
        policy(allow(Principal={"AWS": "arn:aws:iam::123456789012:role/firebreak-*"})),
        policy(allow(Effect="Maybe")),
        "not a policy",
    ],
)
def test_trust_policy_the_engine_cannot_evaluate_raises(document: Any) -> None:
    with pytest.raises(Unevaluable):
        trust_allows(document, CALLER, IN_ORG)


# --- the stack in organization mode, with a template that declares it ------------------------------------------

ORGANIZATION_TEMPLATE = """
Parameters:
  OrganizationId: {Type: String, Default: ""}
  OrganizationUnitIds: {Type: CommaDelimitedList, Default: ""}
  ResponseRegions: {Type: CommaDelimitedList, Default: "eu-west-1,us-east-1"}
Conditions:
  HasUnits: !Not [!Equals [!Join [",", !Ref OrganizationUnitIds], ""]]
Resources:
  IsolateInstanceFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/isolate_instance/, Handler: app.lambda_handler}
  OrganizationParameter:
    Type: AWS::SSM::Parameter
    Properties: {Type: String, Value: !Join ["|", [!Ref OrganizationId, !Join [",", !Ref OrganizationUnitIds]]]}
  MemberRoles:
    Type: AWS::CloudFormation::StackSet
    Condition: HasUnits
    Properties:
      StackSetName: firebreak-members
      PermissionModel: SERVICE_MANAGED
      Parameters:
        - {ParameterKey: OrganizationId, ParameterValue: !Ref OrganizationId}
        - {ParameterKey: ResponseRegions, ParameterValue: !Join [",", !Ref ResponseRegions]}
        - {ParameterKey: IsolateInstanceFunctionRoleArn, ParameterValue: !GetAtt IsolateInstanceFunctionRole.Arn}
"""


@pytest.fixture
def organization_template(tmp_path: Any) -> Any:
    (tmp_path / "template.yaml").write_text(ORGANIZATION_TEMPLATE)
    (tmp_path / "member.yaml").write_text((ROOT / "member.yaml").read_text())
    return tmp_path / "template.yaml"


def test_stack_runs_in_the_emulated_organization_and_its_stack_set_passes_the_member_parameters(
    organization_template: Any,
) -> None:
    with Engine(organization_template) as engine:
        # THEN the stack's organization parameters name the emulated organization and its member unit
        value = engine.resources["OrganizationParameter"].attributes["Value"]
        assert value == f"{engine.organization.id}|{engine.organization.unit_id}"

        # WHEN a member account is prepared
        engine.prepare_account(MEMBER, MEMBER_REGION)

        # THEN its roles trust what the StackSet passed: Fn::GetAtt of the function's SAM role
        iam = engine.client("iam", account=MEMBER)
        trust = iam.get_role(RoleName="firebreak-member-isolate-instance")["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Condition"]["ArnEquals"]["aws:PrincipalArn"] == ISOLATE_CALLER
        assert trust["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == engine.organization.id
        policy = iam.get_role_policy(RoleName="firebreak-member-isolate-instance", PolicyName="isolate-instance")
        condition = policy["PolicyDocument"]["Statement"][0]["Condition"]
        assert condition == {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}


def test_overridden_organization_parameters_are_kept_and_an_inactive_stack_set_deploys_nothing(
    organization_template: Any,
) -> None:
    # GIVEN the caller turns the organization off: no units, so no StackSet
    with Engine(organization_template, {"OrganizationUnitIds": ""}) as engine:
        # THEN the stack keeps the caller's value, and its id still the emulated organization's
        value = engine.resources["OrganizationParameter"].attributes["Value"]
        assert value == f"{engine.organization.id}|"

        # AND a member account joins the organization with no member roles, as no StackSet reaches it
        engine.prepare_account(MEMBER, MEMBER_REGION)
        assert roles_in(engine, MEMBER) == []
        assert engine.client("organizations").describe_account(AccountId=MEMBER)["Account"]["Id"] == MEMBER


def test_concurrent_handlers_each_assume_as_their_own_function(engine: Engine) -> None:
    # GIVEN two functions' handlers that assume the isolate role at the same moment, on two threads
    barrier = threading.Barrier(2, timeout=10)
    answers: dict[str, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        barrier.wait()
        try:
            boto3.client("sts", region_name=REGION).assume_role(RoleArn=ISOLATE_ROLE, RoleSessionName="storm")
        except ClientError as error:
            return {"code": error.response["Error"]["Code"]}
        return {"code": "OK"}

    functions = ("IsolateInstanceFunction", "BlockIpFunction")
    for function in functions:
        engine.dispatcher.override(engine.resources[function].ref, handler)

    def run(function: str) -> None:
        answers[function] = engine.invoke(function, {})["code"]

    # WHEN both run together
    threads = [threading.Thread(target=run, args=(function,)) for function in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # THEN each was judged as its own function: the trusted one in, the other refused
    assert answers == {"IsolateInstanceFunction": "OK", "BlockIpFunction": "AccessDenied"}
