"""The triage decision Parse Finding returns: playbook, mode, suppression, escalation and the circuit breaker's say."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from firebreak.core import aws
from firebreak.core.addresses import partition
from firebreak.core.errors import FindingRejected
from firebreak.core.members import Organization
from firebreak.core.models import (
    EXEMPT_TAG,
    MAX_BUCKETS_PER_INCIDENT,
    Approval,
    Incident,
    Mode,
    Playbook,
    Triage,
    says_exempt,
)
from firebreak.core.settings import Settings
from firebreak.triage.accounts import account_refusal
from firebreak.triage.approvals import decide_mode
from firebreak.triage.breaker import ADDRESSES, WORKLOADS, Budget, alert_once, open_message, take_slot
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from firebreak.triage.routing import route

logger = Logger(child=True)

# The playbooks this stack has a state machine for; a finding routed elsewhere is escalated to a person.
DEPLOYED_PLAYBOOKS = frozenset(
    {
        Playbook.BLOCK_IP,
        Playbook.CONTAIN_INSTANCE,
        Playbook.REVOKE_CREDENTIALS,
        Playbook.PROTECT_BUCKET,
        Playbook.CONTAIN_FUNCTION,
        Playbook.CONTAIN_DATABASE,
        Playbook.CONTAIN_TASK,
        Playbook.NOTIFY_ONLY,
    }
)
# What a person must do for principals that no policy in this account can restrict.
MANUAL_STEPS = {
    "Root": (
        "root credentials cannot be restricted by any IAM policy: sign in as root, change the password, delete every "
        "root access key, check the MFA device, and review CloudTrail for what the caller did; only an SCP from the "
        "management account can fence root programmatically"
    ),
    "AWSService": (
        "an AWS service acted, so there is no key to disable: find the resource or integration acting through the "
        "service (CloudTrail invokedBy), and fix its configuration or the role it uses"
    ),
    "Federated": (
        "federated sessions are not revoked by Firebreak: for GetFederationToken sessions deny the IAM user who "
        "issued them (an aws:TokenIssueTime deny policy), for an identity provider disable the user there or in "
        "IAM Identity Center, then review CloudTrail for what the sessions did"
    ),
}


def manual_steps(incident: Incident) -> str | None:
    """What a person must do about the finding's principal, when Firebreak cannot act on it; else None."""
    steps = MANUAL_STEPS.get(incident.principal_type or "")
    return f"{incident.principal_type} principal: {steps}" if steps else None


def escalation_for(playbook: Playbook, rule: str) -> str | None:
    """Why a person, not Firebreak, must act on this incident; None when Firebreak may act itself."""
    if playbook not in DEPLOYED_PLAYBOOKS:
        return f"routed to {playbook.value} (rule {rule}), which this stack does not run: act by hand"
    return None


def triage(incident: Incident, settings: Settings) -> Triage:
    """Route the incident; exempt resources are never touched, and decide_mode says whether it plans, acts or waits."""
    routed = route(incident)
    exempt = says_exempt(incident.tag(EXEMPT_TAG))
    escalation = escalation_for(routed.playbook, routed.name)
    playbook = Playbook.NOTIFY_ONLY if exempt or escalation else routed.playbook
    if escalation is None and playbook is Playbook.NOTIFY_ONLY:
        # Root, AWS service and federated principals: no policy here can stop them, so tell a person what to do.
        escalation = manual_steps(incident)
    mode, approval = decide_mode(incident, playbook, settings)
    return Triage(
        incident_id=incident_id_for(incident),
        incident=incident,
        playbook=playbook,
        mode=mode,
        suppressed_reason=f"resource tagged {EXEMPT_TAG}=true" if exempt else None,
        escalation=escalation,
        approval=approval,
    )


def destructive(result: Triage) -> bool:
    """Whether the playbook will change the account on its own: anything but notify-only, in enforce mode."""
    return result.playbook is not Playbook.NOTIFY_ONLY and result.mode is Mode.ENFORCE


def charge(result: Triage, settings: Settings) -> tuple[Budget, int, int]:
    """Which budget a destructive incident draws on, its hourly limit, and how many units the incident takes.

    block-ip takes one unit per address it will try to block (the finding's blockable remote addresses, capped by
    MaxAddressesPerIncident, as block-ip itself selects them; the account's own addresses and enrichment's verdicts
    are only known later, so the count errs high). contain-instance and revoke-credentials take one workload unit;
    the addresses they also block ride along on it, so a storm of scanners using up the address budget can never
    hold back the isolation of a compromised instance, and they stay bounded by the workload budget and the cap.
    contain-function takes one workload unit the same way: it stops a function and revokes its role's sessions.
    protect-bucket takes one workload unit per bucket it will change (up to MAX_BUCKETS_PER_INCIDENT), since each
    is a workload changed as an instance is.
    """
    if result.playbook is Playbook.BLOCK_IP:
        addresses, _ = partition(result.incident.remote_ips, settings.allow_list, settings.max_addresses_per_incident)
        return ADDRESSES, settings.max_blocked_addresses_per_hour, len(addresses)
    if result.playbook is Playbook.PROTECT_BUCKET:
        buckets = len(result.incident.bucket_names[:MAX_BUCKETS_PER_INCIDENT])
        return WORKLOADS, settings.max_containments_per_hour, max(buckets, 1)
    return WORKLOADS, settings.max_containments_per_hour, 1


def through_breaker(result: Triage, settings: Settings) -> Triage:
    """The triage unchanged while its budget for the hour lasts; past it, it waits for a person's approval."""
    if not destructive(result) or not settings.breaker_table:
        return result
    budget, limit, count = charge(result, settings)
    if count == 0:
        # Nothing the playbook could block: it changes nothing, so it takes nothing from the budget.
        return result
    dynamodb = aws.client("dynamodb")
    now = datetime.now(UTC)
    account = result.incident.account_id
    slot = take_slot(dynamodb, settings.breaker_table, account, limit, now, budget, count)
    if slot.granted:
        return result
    logger.warning(
        "Circuit breaker open",
        extra={"incident_id": result.incident_id, "budget": budget.parameter, "used": slot.used, "count": count},
    )
    # One alert per account, hour and budget; every incident past it also carries the reason in its approval request.
    alert_once(dynamodb, aws.client("sns"), settings.breaker_table, settings.responder_topic_arn, account, now, budget)
    reason = open_message(slot.used, budget, count)
    approval = Approval(reason, settings.approval_window_seconds, settings.approval_on_timeout)
    return dataclasses.replace(result, mode=Mode.APPROVAL, approval=approval)


def triage_finding(finding: Mapping[str, Any], settings: Settings) -> Triage:
    """The finding normalised, its account vouched for (FindingRejected otherwise), triaged, then past the circuit
    breaker."""
    incident = normalise(finding)
    refusal = account_refusal(incident.account_id, Organization.from_env(), lambda: aws.client("organizations"))
    if refusal is not None:
        raise FindingRejected(f"finding {incident.finding_id}: {refusal}")
    return through_breaker(triage(incident, settings), settings)
