"""`make iam-check`'s second half, both directions: what fails it (a removed grant, an added call, an unused grant
nobody justified, a stale justification, a false condition) and what passes it."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from firebreak_local import iam_check, iam_coverage
from firebreak_local.conditions import Context, UnsupportedOperator, evaluate, operator_fits
from firebreak_local.iam_coverage import Call, Justification, Run

ROOT = Path(__file__).parents[2]
FUNCTION = "firebreak-BlockIpFunction"
IN_REGION = Context.of({"aws:RequestedRegion": "us-east-1"})


def allow(action: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": "*", **({"Condition": condition} if condition else {})}


def run_of(calls: list[Call], statements: list[dict[str, Any]]) -> Run:
    return Run("test", "CONTAINED", "RELEASED", Counter(calls), {FUNCTION: statements})


def check(runs: list[Run], justified: list[Justification] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    return iam_coverage.check(runs, justified or [], out), out.getvalue()


REGION_HELD = allow("wafv2:UpdateIPSet", {"StringEquals": {"aws:RequestedRegion": "us-east-1"}})
UPDATE = Call(FUNCTION, "wafv2:UpdateIPSet", context=IN_REGION)


def test_every_call_granted_and_every_grant_used_passes() -> None:
    failures, out = check([run_of([UPDATE], [REGION_HELD])])
    assert failures == 0, out
    assert out.splitlines()[-1].startswith("every one of 1 recorded calls is granted; of 1 grants 1 are used")


def test_a_removed_grant_fails() -> None:
    # GIVEN the call, and a policy that lost the statement granting it (a GetIPSet grant stays)
    failures, out = check([run_of([UPDATE], [allow("wafv2:GetIPSet")])])
    # THEN the call is named, and so is the grant nothing uses now
    assert failures == 2
    assert "firebreak-BlockIpFunction  wafv2:UpdateIPSet is not granted" in out
    assert "BlockIpFunction  wafv2:GetIPSet" in out


def test_an_added_call_fails() -> None:
    added = Call(FUNCTION, "ec2:TerminateInstances", context=IN_REGION)
    failures, out = check([run_of([UPDATE, added], [REGION_HELD])])
    assert failures == 1
    assert "firebreak-BlockIpFunction  ec2:TerminateInstances is not granted" in out


def test_an_unused_grant_fails_unless_justified() -> None:
    # GIVEN a grant no recorded call uses
    run = run_of([UPDATE], [REGION_HELD, allow("wafv2:GetIPSet")])
    failures, out = check([run])
    assert failures == 1
    assert "does not justify" in out and "BlockIpFunction  wafv2:GetIPSet" in out
    # WHEN the table says why no local run reaches it, THEN it passes
    why = Justification("BlockIpFunction", "wafv2:GetIPSet", "failure-path", "only when the update races")
    assert check([run], [why])[0] == 0


def test_a_justification_for_a_grant_that_is_used_or_gone_fails() -> None:
    stale = Justification("BlockIpFunction", "wafv2:UpdateIPSet", "option", "no longer true")
    gone = Justification("*", "ec2:RevokeSecurityGroupIngress", "state", "the grant was removed")
    failures, out = check([run_of([UPDATE], [REGION_HELD])], [stale, gone])
    assert failures == 2
    assert "justify no unused grant" in out


def test_a_call_whose_only_allowing_condition_is_false_fails() -> None:
    # GIVEN the call made in a Region the grant's aws:RequestedRegion condition does not name
    elsewhere = Call(FUNCTION, "wafv2:UpdateIPSet", context=Context.of({"aws:RequestedRegion": "eu-west-1"}))
    failures, out = check([run_of([elsewhere], [REGION_HELD])])
    assert failures == 1
    assert "is not granted: the condition of every statement that allows it is false" in out


def test_a_condition_on_a_key_the_engine_cannot_know_is_reported_not_assumed() -> None:
    # GIVEN a grant held to aws:SourceVpc, which the engine's requests never say
    held = allow("wafv2:UpdateIPSet", {"StringEquals": {"aws:SourceVpc": "vpc-1"}})
    decision = iam_coverage.decide([held], UPDATE)
    # THEN it is neither granted nor refused, and the run says so
    assert decision.granted is None and "aws:SourceVpc" in decision.why
    failures, out = check([run_of([UPDATE], [held])])
    assert failures == 0
    assert "granted only under condition keys the engine cannot know" in out


def test_an_explicit_deny_whose_condition_holds_refuses() -> None:
    deny = {
        **allow("wafv2:*"),
        "Effect": "Deny",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
    }
    assert iam_coverage.decide([REGION_HELD, deny], UPDATE).granted is False
    assert iam_coverage.decide([REGION_HELD, {**deny, "Condition": {}}], UPDATE).granted is False


def test_the_justification_table_is_read_and_each_entry_says_why() -> None:
    entries = iam_coverage.justifications()
    assert entries
    assert {entry.reason for entry in entries} <= iam_coverage.REASONS
    assert all(len(entry.why) > 40 for entry in entries)


def test_an_entry_without_a_known_reason_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "grants.toml"
    table.write_text('[[grant]]\nroles = "*"\nactions = ["s3:GetObject"]\nreason = "later"\nwhy = "x"\n')
    with pytest.raises(ValueError, match="needs a reason"):
        iam_coverage.justifications(table)


def test_every_principal_kind_is_held_to_the_table() -> None:
    # GIVEN the labels unused grants are listed under
    assert iam_coverage.role_label("firebreak-BlockIpFunction") == "BlockIpFunction"
    assert iam_coverage.role_label("arn:aws:iam::1:role/firebreak-member-block-ip") == "firebreak-member-block-ip"
    # THEN a grant of a role no scenario runs (a service role) is still a grant to use or justify
    assert iam_coverage.unused([], {("FindingForwarderRole", "events:PutEvents")}) == [
        ("FindingForwarderRole", "events:PutEvents")
    ]


# --- the condition evaluator ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        pytest.param({"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}, IN_REGION, True, id="any"),
        pytest.param({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, IN_REGION, False, id="none"),
        pytest.param({"StringLike": {"s3:prefix": "published/*"}}, {"s3:prefix": "published/x"}, True, id="like"),
        pytest.param({"StringLike": {"s3:prefix": "published/*"}}, {"s3:prefix": "private/x"}, False, id="unlike"),
        pytest.param(
            {"StringNotEqualsIgnoreCase": {"aws:ResourceTag/firebreak:exempt": "true"}},
            {"aws:ResourceTag/firebreak:exempt": "TRUE"},
            False,
            id="exempt-tag",
        ),
        pytest.param(
            {"StringNotEqualsIgnoreCase": {"aws:ResourceTag/firebreak:exempt": "true"}},
            Context.of({}, known_prefixes=("aws:ResourceTag/",)),
            True,
            id="negated-on-a-missing-tag",
        ),
        pytest.param(
            {"StringEquals": {"aws:ResourceOrgID": "o-1"}},
            Context.of({}, ("aws:ResourceOrgID",)),
            False,
            id="positive-on-a-missing-key",
        ),
        pytest.param({"StringEqualsIfExists": {"x:Status": "A"}}, Context.of({}, ("x:Status",)), True, id="if-exists"),
        pytest.param({"Null": {"aws:RequestTag/a": "false"}}, {"aws:RequestTag/a": "1"}, True, id="null-present"),
        pytest.param({"Null": {"aws:RequestTag/a": "true"}}, {"aws:RequestTag/a": "1"}, False, id="null-absent"),
        pytest.param(
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"aws:TagKeys": ["a"]},
            True,
            id="for-all-subset",
        ),
        pytest.param(
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}},
            {"aws:TagKeys": ["a", "c"]},
            False,
            id="for-all-extra",
        ),
        pytest.param(
            {"ForAnyValue:StringLike": {"aws:TagKeys": "fire*"}},
            {"aws:TagKeys": ["x", "firebreak"]},
            True,
            id="for-any",
        ),
        pytest.param(
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/fb-*"}},
            {"aws:PrincipalArn": "arn:aws:iam::1:role/fb-isolate"},
            True,
            id="arn-like",
        ),
        pytest.param({"Bool": {"aws:SecureTransport": False}}, {"aws:SecureTransport": "false"}, True, id="bool"),
        pytest.param({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True, id="ip"),
        pytest.param(
            {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, False, id="not-ip"
        ),
        pytest.param(
            {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
            {"aws:MultiFactorAuthAge": "60"},
            True,
            id="numeric",
        ),
        pytest.param(
            {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-12-06T00:00:00+00:00"},
            True,
            id="date",
        ),
    ],
)
def test_conditions_evaluate_as_iam_does(condition: dict[str, Any], context: Any, holds: bool) -> None:
    carried = context if isinstance(context, Context) else Context.of(context)
    assert evaluate(condition, carried).holds is holds


def test_an_unknown_key_leaves_the_condition_undecided_unless_another_test_is_false() -> None:
    unknown = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
    assert evaluate(unknown, IN_REGION).holds is None
    assert evaluate(unknown, IN_REGION).unknown == ("aws:SourceVpc",)
    both = {"StringEquals": {"aws:SourceVpc": "vpc-1", "aws:RequestedRegion": "eu-west-1"}}
    assert evaluate(both, IN_REGION).holds is False


def test_an_operator_the_evaluator_does_not_know_is_not_guessed() -> None:
    with pytest.raises(UnsupportedOperator):
        evaluate({"BinaryEquals": {"x:Key": "AAAA"}}, Context.of({"x:Key": "AAAA"}))


@pytest.mark.parametrize(
    ("operator", "key", "problem"),
    [
        ("StringEquals", "aws:RequestedRegion", None),
        ("ArnLike", "aws:PrincipalArn", None),
        ("ForAllValues:StringEquals", "aws:TagKeys", None),
        ("StringEquals", "aws:TagKeys", "needs ForAllValues: or ForAnyValue:"),
        ("ForAllValues:StringEquals", "securityhub:ASFFSyntaxPath/Workflow.Status", "on a single-valued key"),
        ("Bool", "aws:RequestedRegion", "Bool on a string key"),
        ("IpAddress", "aws:PrincipalArn", "IpAddress on a arn key"),
        ("StringEqualsIfExists", "securityhub:ASFFSyntaxPath/Workflow.Status", None),
    ],
)
def test_operators_are_held_to_the_key_types_in_iams_data(operator: str, key: str, problem: str | None) -> None:
    misfit = operator_fits(operator, iam_check.key_type(key))
    assert misfit is None if problem is None else problem in str(misfit)


def test_a_statement_with_an_operator_unfit_for_its_key_is_flagged() -> None:
    statement = allow("ec2:CreateTags", {"StringEquals": {"aws:TagKeys": ["firebreak:incident-id"]}})
    statement["Resource"] = "arn:aws:ec2:*:111122223333:instance/*"
    assert [f for f in iam_check.check_statement(statement) if "needs ForAllValues" in f]


def test_every_scenario_names_an_event_that_exists_and_parameters_the_template_declares() -> None:
    declared = set(iam_check.load_template(ROOT / "template.yaml").raw["Parameters"])
    for name, scenario in iam_coverage.EVENTS.items():
        scenario = iam_coverage.Scenario(event=scenario) if isinstance(scenario, str) else scenario
        assert scenario.event or scenario.then, name
        assert not scenario.event or (ROOT / "events" / f"{scenario.event}.json").is_file(), name
        assert set(scenario.overrides) <= declared, name


def ec2_request(region: str, body: str) -> Any:
    return SimpleNamespace(url=f"https://ec2.{region}.amazonaws.com/", body=body.encode(), headers={})


def test_a_recorded_call_carries_the_keys_its_request_and_resource_give() -> None:
    # GIVEN a handler tagging an instance in eu-west-1, in an account of the organization
    request = ec2_request(
        "eu-west-1", "Action=CreateTags&Resources.1=i-0abc&Tag.1.Key=firebreak:incident-id&Tag.1.Value=fb-1"
    )
    role = "arn:aws:iam::123456789012:role/fb-PreserveEvidenceFunctionRole"
    with mock_aws():
        (call,) = iam_coverage.request_calls(
            "before-send.ec2.CreateTags", request, FUNCTION, role, "123456789012", lambda account: "o-1"
        )
    # THEN it names the instance, and says what IAM would see: Region, principal, organization, the request's tags,
    # the instance's tags (none, so the exempt tag is known to be missing), and nothing it cannot know
    assert call.resource == "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc"
    assert call.context.get("aws:RequestedRegion") == ("eu-west-1",) == call.context.get("ec2:Region")
    assert call.context.get("aws:PrincipalArn") == (role,)
    assert call.context.get("aws:ResourceOrgID") == ("o-1",)
    assert call.context.get("aws:TagKeys") == ("firebreak:incident-id",)
    assert call.context.get("aws:ResourceTag/firebreak:exempt") == ()
    assert call.context.get("aws:SourceVpc") is None


def test_tagging_on_create_is_recorded_as_the_create_tags_it_needs() -> None:
    body = (
        "Action=CreateSecurityGroup&VpcId=vpc-1&GroupName=q&GroupDescription=q&TagSpecification.1.ResourceType="
        "security-group&TagSpecification.1.Tag.1.Key=firebreak:purpose&TagSpecification.1.Tag.1.Value=quarantine"
    )
    with mock_aws():
        calls = iam_coverage.request_calls(
            "before-send.ec2.CreateSecurityGroup", ec2_request("us-east-1", body), FUNCTION, "", "123456789012"
        )
    by_action = {(c.action, c.resource.rsplit(":", 1)[-1]): c for c in calls}
    assert set(by_action) == {
        ("ec2:CreateSecurityGroup", "vpc/vpc-1"),
        ("ec2:CreateSecurityGroup", "security-group/*"),
        ("ec2:CreateTags", "security-group/*"),
    }
    tags = by_action[("ec2:CreateTags", "security-group/*")].context
    assert tags.get("ec2:CreateAction") == ("CreateSecurityGroup",)
    assert tags.get("aws:RequestTag/firebreak:purpose") == ("quarantine",)
