"""Security Hub triggers on the real template rules and state machines: imported findings and the custom action."""

from __future__ import annotations

import copy

from firebreak_local.engine import Engine
from tests.support import load_event


def test_custom_action_runs_the_playbook_on_the_selected_finding(engine: Engine) -> None:
    # GIVEN a person chose "Firebreak respond" on an SSH brute-force finding in the Security Hub console
    event = load_event("eventbridge/securityhub_custom_action")

    # WHEN the custom-action event arrives
    rule = engine.matching_rule(event)
    assert rule is not None
    execution = engine.start(rule, event)

    # THEN the custom-action rule started the response and the attacker is blocked
    assert rule.logical_id == "RespondToFindingStateMachineSecurityHubCustomAction"
    assert execution.output is not None
    assert execution.output["status"] == "CONTAINED"
    assert engine.blocked_ips() == ["185.220.101.47/32"]


def test_custom_action_of_another_target_is_not_ours(engine: Engine) -> None:
    # GIVEN a custom-action event for some other action target in the account
    event = copy.deepcopy(load_event("eventbridge/securityhub_custom_action"))
    event["resources"] = ["arn:aws:securityhub:us-east-1:123456789012:action/custom/SomeoneElses"]

    # THEN no rule of the stack matches it
    assert engine.matching_rule(event) is None


def test_guardduty_copy_in_security_hub_is_not_processed_twice(engine: Engine) -> None:
    # GIVEN GuardDuty's own finding as Security Hub re-imports it (GuardDuty events arrive natively already)
    event = load_event("eventbridge/securityhub_guardduty_copy")

    # THEN the Security Hub rule ignores it
    assert engine.matching_rule(event) is None


def test_our_own_write_back_does_not_trigger_us_again(engine: Engine) -> None:
    # GIVEN an imported HIGH finding that a workflow update has moved from NEW to NOTIFIED
    event = copy.deepcopy(load_event("eventbridge/securityhub_inspector_high"))
    assert engine.matching_rule(event) is not None
    event["detail"]["findings"][0]["Workflow"]["Status"] = "NOTIFIED"

    # THEN it no longer matches: BatchUpdateFindings cannot loop the response
    assert engine.matching_rule(event) is None


def test_finding_from_an_untrusted_product_waits_for_approval_and_acts_only_once_approved(engine: Engine) -> None:
    # GIVEN a HIGH brute-force finding imported by a custom integration the stack does not trust (anyone with
    # securityhub:BatchImportFindings can write one)
    event = load_event("eventbridge/securityhub_untrusted_product_brute_force")
    rule = engine.matching_rule(event)
    assert rule is not None and rule.logical_id == "RespondToFindingStateMachineSecurityHubFinding"

    # WHEN it runs and nobody answers
    waiting = engine.start(rule, event)

    # THEN nothing is blocked: it waits for approval, giving the product as the reason
    assert waiting.output is not None
    assert (waiting.output["status"], waiting.output["playbook"]) == ("AWAITING_APPROVAL", "block-ip")
    assert "untrusted product" in waiting.output["reason"]
    assert engine.blocked_ips() == []

    # WHEN a responder approves it
    (request,) = engine.approval_requests(waiting.arn)
    engine.answer_approval(request["approval"]["request"]["token"], "approve")
    done = engine.wait(waiting.arn)

    # THEN the response runs
    assert done.output is not None and done.output["status"] == "CONTAINED"
    assert engine.blocked_ips() == ["92.118.39.12/32"]
