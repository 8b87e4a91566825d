"""incident_id_for / final_status: incident identity, and the table that turns actions into the final status."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from firebreak.core.models import Action, ActionType, Incident, IncidentStatus, Mode, Outcome, Playbook, Source
from firebreak.triage.incidents import CONTAINMENT_ACTIONS, final_status, incident_id_for

BLOCK, ENRICH, NOTIFY, RECORD = ActionType.BLOCK_IP, ActionType.ENRICH_IP, ActionType.NOTIFY, ActionType.RECORD


def incident(**fields: Any) -> Incident:
    base: dict[str, Any] = {
        "source": Source.GUARDDUTY,
        "finding_id": "62c8f1a3b5d94e7f8a2b6c0d1e3f4a5b",
        "account_id": "123456789012",
        "region": "us-east-1",
        "finding_type": "UnauthorizedAccess:EC2/SSHBruteForce",
        "severity": 5.0,
        "severity_label": "MEDIUM",
    }
    return Incident(**{**base, **fields})


def act(outcome: Outcome, type_: ActionType = BLOCK, target: str = "45.155.205.233/32") -> Action:
    return Action(type_, target, outcome)


# --- incident_id_for ---------------------------------------------------------------------------------------------


def test_incident_id_is_stable_for_the_same_finding() -> None:
    # GIVEN two deliveries of one finding that differ in everything but account, region and finding id
    first = incident(count=1, severity=2.0, updated_at="2026-03-14T09:14:02Z", title="first")
    again = incident(count=5, severity=8.0, updated_at="2026-03-14T09:29:40Z", title="again", sample=True)

    # WHEN their incident ids are computed
    # THEN they are the same, shaped fb- and 20 hex digits
    assert incident_id_for(first) == incident_id_for(again)
    assert re.fullmatch(r"fb-[0-9a-f]{20}", incident_id_for(first))


def test_incident_id_is_a_known_value() -> None:
    # GIVEN a finding
    # WHEN its id is computed
    # THEN it is the same value as in every past release (a change would split redeliveries from their records)
    assert incident_id_for(incident()) == "fb-081cbe48499609d3334d"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"account_id": "210987654321"}, id="account"),
        pytest.param({"region": "eu-west-1"}, id="region"),
        pytest.param({"finding_id": "62c8f1a3b5d94e7f8a2b6c0d1e3f4a5c"}, id="finding"),
    ],
)
def test_incident_id_differs_by_account_region_and_finding(change: dict[str, str]) -> None:
    # GIVEN a finding and a copy that differs in one identifying field
    # WHEN both ids are computed
    # THEN they differ
    assert incident_id_for(incident(**change)) != incident_id_for(incident())


def test_incident_id_fields_cannot_be_shifted_into_one_another() -> None:
    # GIVEN two findings whose identifying fields concatenate to the same text without a separator
    a = incident(region="us-east-1", finding_id="1abc")
    b = incident(region="us-east-11", finding_id="abc")

    # WHEN both ids are computed
    # THEN they differ
    assert incident_id_for(a) != incident_id_for(b)


# --- final_status ------------------------------------------------------------------------------------------------

ENFORCE, DRY_RUN = Mode.ENFORCE, Mode.DRY_RUN
BLOCK_IP, NOTIFY_ONLY = Playbook.BLOCK_IP, Playbook.NOTIFY_ONLY
S = IncidentStatus

TABLE = [
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.APPLIED), act(Outcome.APPLIED, target="2a0e::1/128")], False,
                 S.CONTAINED, id="all-applied-contained"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.ALREADY_APPLIED)], False, S.CONTAINED, id="already-applied-contained"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.APPLIED), act(Outcome.ALREADY_APPLIED, target="8.8.8.8/32")], False,
                 S.CONTAINED, id="applied-and-already-applied-contained"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.FAILED), act(Outcome.APPLIED, target="8.8.8.8/32")], False,
                 S.PARTIALLY_CONTAINED, id="one-failed-one-applied-partial"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.ALREADY_APPLIED), act(Outcome.FAILED, target="8.8.8.8/32")], False,
                 S.PARTIALLY_CONTAINED, id="one-failed-one-already-applied-partial"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.FAILED), act(Outcome.FAILED, target="8.8.8.8/32")], False,
                 S.FAILED, id="all-failed-failed"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.FAILED), act(Outcome.SKIPPED, target="10.0.0.9")], False,
                 S.FAILED, id="failed-and-skipped-failed"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.SKIPPED), act(Outcome.SKIPPED, target="10.0.0.9")], False,
                 S.NOTIFIED, id="only-skipped-notified"),
    pytest.param(BLOCK_IP, ENFORCE, [], False, S.NOTIFIED, id="no-actions-notified"),
    pytest.param(BLOCK_IP, DRY_RUN, [act(Outcome.PLANNED), act(Outcome.PLANNED, target="8.8.8.8/32")], False,
                 S.DRY_RUN, id="dry-run-planned"),
    pytest.param(BLOCK_IP, DRY_RUN, [act(Outcome.SKIPPED)], False, S.DRY_RUN, id="dry-run-only-skipped"),
    pytest.param(BLOCK_IP, DRY_RUN, [act(Outcome.FAILED)], False, S.FAILED, id="dry-run-failure-still-failed"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.APPLIED)], True, S.SUPPRESSED, id="suppressed-wins-over-applied"),
    pytest.param(NOTIFY_ONLY, ENFORCE, [], True, S.SUPPRESSED, id="suppressed-notify-only"),
    pytest.param(NOTIFY_ONLY, ENFORCE, [], False, S.NOTIFIED, id="notify-only-notified"),
    pytest.param(NOTIFY_ONLY, DRY_RUN, [], False, S.NOTIFIED, id="notify-only-in-dry-run-still-notified"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.PLANNED)], False, S.NOTIFIED, id="planned-is-not-contained"),
    pytest.param(BLOCK_IP, ENFORCE, [act(Outcome.AWAITING_APPROVAL)], False, S.AWAITING_APPROVAL,
                 id="awaiting-approval-is-not-contained"),
]  # fmt: skip


@pytest.mark.parametrize(("playbook", "mode", "actions", "suppressed", "expected"), TABLE)
def test_final_status_table(
    playbook: Playbook, mode: Mode, actions: list[Action], suppressed: bool, expected: IncidentStatus
) -> None:
    # GIVEN a playbook run in a mode that produced these actions
    # WHEN the final status is decided
    status = final_status(playbook, mode, actions, suppressed)

    # THEN it is the status of the table row
    assert status is expected


@pytest.mark.parametrize("type_", [ENRICH, NOTIFY, RECORD])
@pytest.mark.parametrize("outcome", [Outcome.APPLIED, Outcome.ALREADY_APPLIED])
def test_non_containment_actions_never_count_as_containment(type_: ActionType, outcome: Outcome) -> None:
    # GIVEN a block-ip run in enforce mode whose only done actions enriched, notified or recorded
    actions = [act(outcome, type_, target="45.155.205.233")]

    # WHEN the final status is decided
    status = final_status(BLOCK_IP, ENFORCE, actions, suppressed=False)

    # THEN nothing was contained, so responders are only notified
    assert status is S.NOTIFIED


@pytest.mark.parametrize("type_", [ENRICH, NOTIFY])
def test_failed_non_containment_actions_do_not_fail_the_incident(type_: ActionType) -> None:
    # GIVEN one block that took effect and a failed enrich or notify action
    actions = [act(Outcome.APPLIED), act(Outcome.FAILED, type_, target="x")]

    # WHEN the final status is decided
    # THEN the incident is contained: enrichment and notification are not steps that contain
    assert final_status(BLOCK_IP, ENFORCE, actions, suppressed=False) is S.CONTAINED


# --- evidence records: never containment, but a failed one is a failed step -------------------------------------

DATABASE, TASK = Playbook.CONTAIN_DATABASE, Playbook.CONTAIN_TASK


def snapshot(outcome: Outcome) -> Action:
    return act(outcome, RECORD, target="orders")


def quarantine(outcome: Outcome) -> Action:
    return act(outcome, ActionType.CONTAIN_DATABASE, target="orders")


EVIDENCE_TABLE = [
    pytest.param(DATABASE, [snapshot(Outcome.FAILED), quarantine(Outcome.APPLIED), act(Outcome.APPLIED)],
                 S.PARTIALLY_CONTAINED, id="snapshot-failed-quarantined-partial"),
    pytest.param(DATABASE, [snapshot(Outcome.FAILED), quarantine(Outcome.SKIPPED)], S.FAILED,
                 id="snapshot-failed-nothing-done-failed"),
    pytest.param(TASK, [act(Outcome.FAILED, RECORD, "task"), act(Outcome.APPLIED, ActionType.CONTAIN_TASK, "task")],
                 S.PARTIALLY_CONTAINED, id="task-record-failed-isolated-partial"),
    pytest.param(DATABASE, [snapshot(Outcome.APPLIED), quarantine(Outcome.SKIPPED), act(Outcome.APPLIED)],
                 S.PARTIALLY_CONTAINED, id="snapshot-and-block-without-quarantine-partial"),
    pytest.param(DATABASE, [snapshot(Outcome.APPLIED), quarantine(Outcome.SKIPPED)], S.NOTIFIED,
                 id="snapshot-alone-is-not-containment-notified"),
    pytest.param(DATABASE, [snapshot(Outcome.APPLIED), quarantine(Outcome.APPLIED), act(Outcome.APPLIED)],
                 S.CONTAINED, id="snapshot-quarantine-block-contained"),
    pytest.param(NOTIFY_ONLY, [act(Outcome.FAILED, RECORD, "x")], S.NOTIFIED,
                 id="notify-only-keeps-no-evidence-steps"),
]  # fmt: skip


@pytest.mark.parametrize(("playbook", "actions", "expected"), EVIDENCE_TABLE)
def test_evidence_records_count_only_when_they_fail(
    playbook: Playbook, actions: list[Action], expected: IncidentStatus
) -> None:
    # GIVEN a playbook run in enforce mode whose evidence (type record) was kept or not, next to its other steps
    # WHEN the final status is decided
    status = final_status(playbook, ENFORCE, actions, suppressed=False)

    # THEN evidence never contains anything, and evidence that could not be kept is never hidden
    assert status is expected


@pytest.mark.parametrize("type_", sorted(CONTAINMENT_ACTIONS))
def test_every_containment_action_type_counts(type_: ActionType) -> None:
    # GIVEN a single applied containment action of each kind
    # WHEN the final status is decided
    # THEN the incident is contained
    assert final_status(BLOCK_IP, ENFORCE, [act(Outcome.APPLIED, type_)], suppressed=False) is S.CONTAINED


def test_containment_actions_are_exactly_the_ones_that_change_the_account() -> None:
    # GIVEN the action types
    # WHEN the containment set is read
    # THEN it names isolation, revocation and blocking, and each new playbook's own action, and nothing else
    assert {
        ActionType.ISOLATE_INSTANCE,
        ActionType.REVOKE_CREDENTIALS,
        ActionType.BLOCK_IP,
        ActionType.PROTECT_BUCKET,
        ActionType.CONTAIN_FUNCTION,
        ActionType.CONTAIN_DATABASE,
        ActionType.CONTAIN_TASK,
    } == CONTAINMENT_ACTIONS


PROTECT_BUCKET = Playbook.PROTECT_BUCKET


def bucket_action(outcome: Outcome, target: str, left_open: bool = False) -> Action:
    return Action(ActionType.PROTECT_BUCKET, target, outcome, "r", left_open=left_open)


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        pytest.param([bucket_action(Outcome.APPLIED, "a"), bucket_action(Outcome.SKIPPED, "b", left_open=True)],
                     S.PARTIALLY_CONTAINED, id="one-protected-one-left-open"),
        pytest.param([bucket_action(Outcome.SKIPPED, "b", left_open=True)], S.NOTIFIED, id="only-left-open"),
        pytest.param([bucket_action(Outcome.APPLIED, "a"), bucket_action(Outcome.SKIPPED, "b")], S.CONTAINED,
                     id="one-protected-one-exempt"),
    ],
)  # fmt: skip
def test_a_target_left_open_for_a_person_keeps_the_incident_from_reading_contained(
    actions: list[Action], expected: IncidentStatus
) -> None:
    # GIVEN a playbook that protected one target and left another for a person (over a cap, tagged for approval
    # since the finding), or skipped it because there is nothing to contain (exempt)
    # WHEN the final status is decided
    # THEN only the skip that leaves something open keeps it from CONTAINED
    assert final_status(PROTECT_BUCKET, ENFORCE, actions, suppressed=False) is expected


def test_left_open_survives_the_trip_between_steps_and_is_said_only_where_true() -> None:
    # GIVEN an action left open and one not
    left, closed = bucket_action(Outcome.SKIPPED, "b", left_open=True), bucket_action(Outcome.APPLIED, "a")
    # WHEN they pass between steps as JSON
    # THEN the mark comes back, and an ordinary action carries no such key
    assert Action.from_dict(left.to_dict()).left_open is True
    assert "left_open" not in closed.to_dict()


def test_final_status_reads_a_one_shot_iterable() -> None:
    # GIVEN actions passed as a generator, as a caller streaming them might
    actions = (a for a in [act(Outcome.FAILED), act(Outcome.APPLIED, target="8.8.8.8/32")])

    # WHEN the final status is decided
    # THEN every action is seen, so a failure next to a success is partial containment
    assert final_status(BLOCK_IP, ENFORCE, actions, suppressed=False) is S.PARTIALLY_CONTAINED


def test_incident_is_frozen() -> None:
    # GIVEN an incident
    # WHEN a field is assigned
    # THEN it refuses, so an id computed once stays valid
    with pytest.raises(dataclasses.FrozenInstanceError):
        incident().finding_id = "other"  # type: ignore[misc]
