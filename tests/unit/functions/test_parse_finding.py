"""Parse Finding handler: EventBridge detail -> Triage (incident id, playbook, mode), or FindingRejected."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from firebreak.core.errors import FindingRejected
from firebreak.core.models import Playbook, Triage
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from firebreak_local.runtime import LambdaContext
from functions.parse_finding.app import lambda_handler
from tests.support import load_event

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:firebreak-respond-to-finding:test"
SETTINGS_ENV = (
    "RESPONSE_MODE",
    "BLOCK_IP_MODE",
    "ALLOW_LIST_CIDRS",
    "MAX_ADDRESSES_PER_INCIDENT",
    "BLOCKED_IPV4_SET_ARN",
    "BLOCKED_IPV6_SET_ARN",
    "RESPONDER_TOPIC_ARN",
    "INCIDENT_TABLE_NAME",
)


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def detail(name: str) -> dict[str, Any]:
    """What the state machine receives: the EventBridge target uses InputPath $.detail."""
    event: dict[str, Any] = load_event(f"eventbridge/{name}")["detail"]
    return event


def invoke(finding: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The handler's result as the state machine sees it: through JSON, as Lambda returns it."""
    result: dict[str, Any] = json.loads(
        json.dumps(lambda_handler({"input": finding, "executionId": EXECUTION_ID}, context))
    )
    return result


def tag_instance(finding: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    tagged = copy.deepcopy(finding)
    tagged["resource"]["instanceDetails"]["tags"].append({"key": key, "value": value})
    return tagged


def test_ssh_brute_force_blocks_the_ip_in_enforce_mode(lambda_context: LambdaContext) -> None:
    # GIVEN an SSH brute force against our instance, and a stack in its default (enforce) mode
    finding = detail("guardduty_ssh_brute_force")

    # WHEN Parse Finding triages it
    result = invoke(finding, lambda_context)

    # THEN it runs block-ip in enforce mode on the normalised incident, with nothing suppressed or escalated
    assert (result["playbook"], result["mode"]) == ("block-ip", "enforce")
    assert (result["suppressed_reason"], result["escalation"]) == (None, None)
    assert result["incident"]["remote_ips"] == ["45.155.205.233"]
    assert result["incident"]["finding_type"] == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert Triage.from_dict(result).incident == normalise(finding)


def test_incident_id_is_stable_across_invocations_and_redeliveries(lambda_context: LambdaContext) -> None:
    # GIVEN the SSH brute force finding, and its redelivery with a higher count and a later updatedAt
    first, redelivered = detail("guardduty_ssh_brute_force"), detail("guardduty_ssh_brute_force_redelivered")

    # WHEN each is triaged (the first twice)
    ids = [invoke(e, lambda_context)["incident_id"] for e in (first, first, redelivered)]

    # THEN all three map to the one incident, identified by account, region and finding id
    assert ids == ["fb-081cbe48499609d3334d"] * 3
    assert ids[0] == incident_id_for(normalise(first))


def test_incident_id_differs_for_another_finding(lambda_context: LambdaContext) -> None:
    # GIVEN two different findings
    # WHEN both are triaged
    ids = {
        invoke(detail(name), lambda_context)["incident_id"]
        for name in ("guardduty_ssh_brute_force", "guardduty_c2_outbound")
    }

    # THEN they are two incidents
    assert len(ids) == 2


def test_envelope_and_detail_triage_the_same(lambda_context: LambdaContext) -> None:
    # GIVEN the whole EventBridge event rather than its detail (a target without InputPath)
    envelope = load_event("eventbridge/guardduty_ssh_brute_force")

    # WHEN both are triaged
    # THEN the results are the same
    assert invoke(envelope, lambda_context) == invoke(envelope["detail"], lambda_context)


def test_sample_finding_is_only_ever_a_dry_run(lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a GuardDuty sample (generated) RDP brute force, and block-ip explicitly set to enforce
    monkeypatch.setenv("BLOCK_IP_MODE", "enforce")

    # WHEN it is triaged
    result = invoke(detail("guardduty_sample_rdp_brute_force"), lambda_context)

    # THEN it runs block-ip but as a dry run, because samples never act
    assert (result["playbook"], result["mode"]) == ("block-ip", "dry-run")
    assert result["incident"]["sample"] is True


def test_response_mode_dry_run_makes_block_ip_a_dry_run(
    lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stack set to dry-run
    monkeypatch.setenv("RESPONSE_MODE", "dry-run")

    # WHEN a real SSH brute force is triaged
    result = invoke(detail("guardduty_ssh_brute_force"), lambda_context)

    # THEN block-ip runs as a dry run
    assert (result["playbook"], result["mode"]) == ("block-ip", "dry-run")


def test_block_ip_mode_enforce_overrides_a_dry_run_stack(
    lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a dry-run stack whose block-ip playbook is explicitly enforced
    monkeypatch.setenv("RESPONSE_MODE", "dry-run")
    monkeypatch.setenv("BLOCK_IP_MODE", "enforce")

    # WHEN an SSH brute force and a crypto-mining finding are triaged
    blocked = invoke(detail("guardduty_ssh_brute_force"), lambda_context)
    notified = invoke(detail("guardduty_crypto_mining"), lambda_context)

    # THEN block-ip enforces, while other playbooks keep the stack's dry-run mode
    assert (blocked["playbook"], blocked["mode"]) == ("block-ip", "enforce")
    assert (notified["playbook"], notified["mode"]) == ("contain-instance", "dry-run")


def test_block_ip_mode_dry_run_overrides_an_enforcing_stack(
    lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an enforcing stack whose block-ip playbook is held at dry-run
    monkeypatch.setenv("RESPONSE_MODE", "enforce")
    monkeypatch.setenv("BLOCK_IP_MODE", "dry-run")

    # WHEN an SSH brute force is triaged
    result = invoke(detail("guardduty_ssh_brute_force"), lambda_context)

    # THEN block-ip only plans
    assert (result["playbook"], result["mode"]) == ("block-ip", "dry-run")


def test_finding_for_an_undeployed_playbook_is_escalated_to_people(
    lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a crypto-mining finding, which calls for containing the instance, on a stack without that playbook
    from firebreak.triage import decision

    monkeypatch.setattr(decision, "DEPLOYED_PLAYBOOKS", decision.DEPLOYED_PLAYBOOKS - {Playbook.CONTAIN_INSTANCE})

    # WHEN it is triaged
    result = invoke(detail("guardduty_crypto_mining"), lambda_context)

    # THEN it only notifies, and the escalation says what should happen and that a person must do it
    assert (result["playbook"], result["mode"], result["suppressed_reason"]) == ("notify-only", "enforce", None)
    assert result["escalation"] == (
        "routed to contain-instance (rule instance-compromised), which this stack does not run: act by hand"
    )


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_exempt_instance_is_only_notified_with_the_reason(lambda_context: LambdaContext, value: str) -> None:
    # GIVEN an SSH brute force against an instance tagged firebreak:exempt=true
    finding = tag_instance(detail("guardduty_ssh_brute_force"), "firebreak:exempt", value)

    # WHEN it is triaged
    result = invoke(finding, lambda_context)

    # THEN nothing is blocked: it only notifies, and says the resource is exempt
    assert result["playbook"] == "notify-only"
    assert result["suppressed_reason"] == "resource tagged firebreak:exempt=true"
    assert result["escalation"] is None


@pytest.mark.parametrize(
    ("key", "value"), [("firebreak:exempt", "false"), ("firebreak:exempt", ""), ("exempt", "true")]
)
def test_other_tags_do_not_exempt(lambda_context: LambdaContext, key: str, value: str) -> None:
    # GIVEN an instance with a tag that is not firebreak:exempt=true
    finding = tag_instance(detail("guardduty_ssh_brute_force"), key, value)

    # WHEN it is triaged
    result = invoke(finding, lambda_context)

    # THEN the attacker is still blocked
    assert (result["playbook"], result["suppressed_reason"]) == ("block-ip", None)


def test_malformed_finding_is_rejected(lambda_context: LambdaContext) -> None:
    # GIVEN a finding without an id and with a resource that is not an object
    finding = detail("guardduty_malformed")

    # WHEN it is triaged
    # THEN FindingRejected (the error the ASL Catch matches) names the field
    with pytest.raises(FindingRejected, match=r"detail\.id"):
        invoke(finding, lambda_context)


@pytest.mark.parametrize("finding", [None, {}, []], ids=["none", "empty", "list"])
def test_missing_or_empty_input_is_rejected(lambda_context: LambdaContext, finding: Any) -> None:
    # GIVEN an invocation with no usable finding
    # WHEN it is triaged
    # THEN it is rejected, not a crash of another kind
    with pytest.raises(FindingRejected):
        lambda_handler({"input": finding, "executionId": EXECUTION_ID}, lambda_context)
