"""Hardening rules that hold for every playbook as it lands: bounded Maps, reasoned checkov skips, the breaker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import load_template
from tests.definitions.test_state_machine_definitions import ASL_FILES, all_states, load_definition
from tests.support import TEMPLATE


@pytest.mark.parametrize("path", ASL_FILES, ids=[path.name for path in ASL_FILES])
def test_every_map_bounds_its_concurrency(path: Path) -> None:
    # GIVEN every Map state of an ASL file, nested ones included
    maps = [(where, state) for where, _, state in all_states(load_definition(path)) if state["Type"] == "Map"]
    # THEN each sets MaxConcurrency to a positive bound (0 means unbounded)
    unbounded = [where for where, state in maps if not isinstance(state.get("MaxConcurrency"), int | str)]
    unbounded += [where for where, state in maps if state.get("MaxConcurrency") == 0]
    assert not unbounded, f"Maps without a MaxConcurrency bound: {unbounded}"


def resources() -> dict[str, Any]:
    return load_template(TEMPLATE).raw["Resources"]  # type: ignore[no-any-return]


def test_every_checkov_skip_carries_its_reason() -> None:
    # GIVEN every checkov skip in the template
    skips = [
        (logical_id, skip)
        for logical_id, resource in resources().items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    # THEN each names a check and says why, in a sentence
    assert skips
    unexplained = [(logical_id, skip) for logical_id, skip in skips if len(str(skip.get("comment", ""))) < 20]
    assert not unexplained
    assert all(str(skip["id"]).startswith("CKV_") for _, skip in skips)


def test_parse_finding_may_only_count_on_the_breaker_table_alert_the_responders_and_look_up_members() -> None:
    # GIVEN the parse function's policies, the organization-only one apart
    policies = resources()["ParseFindingFunction"]["Properties"]["Policies"]
    organization_only = [policy["Fn::If"] for policy in policies if "Fn::If" in policy]
    policies = [policy for policy in policies if "Fn::If" not in policy]
    statements = [statement for policy in policies for statement in policy.get("Statement", [])]
    templates = [policy for policy in policies if "Statement" not in policy]
    # THEN it may update the circuit breaker table, and publish (encrypted) to the responder topic, nothing else
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": {"Fn::GetAtt": ["CircuitBreakerTable", "Arn"]},
        },
        {
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": {"Fn::GetAtt": ["ResponderTopicKey", "Arn"]},
        },
    ]
    assert templates == [{"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["ResponderTopic", "TopicName"]}}}]
    # AND in an organization it may also ask whether the finding's account is a member, nothing more
    assert organization_only == [
        [
            "HasOrganization",
            {
                "Statement": [
                    {
                        "Sid": "DescribeTheOrganizationsAccounts",
                        "Effect": "Allow",
                        "Action": "organizations:DescribeAccount",
                        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:organizations::*:account/${OrganizationId}/*"},
                    }
                ]
            },
            {"Ref": "AWS::NoValue"},
        ]
    ]


def test_log_groups_are_encrypted_with_the_stack_key() -> None:
    log_groups = {k: v for k, v in resources().items() if v["Type"] == "AWS::Logs::LogGroup"}
    assert log_groups
    assert all(v["Properties"].get("KmsKeyId") == {"Fn::GetAtt": ["LogsKey", "Arn"]} for v in log_groups.values())
