"""containment.function against moto Lambda: the guards, the two steps, their records, and the undo of the first."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from firebreak.containment.function import (
    ContainmentStatus,
    LambdaFunction,
    contain_function,
    describe_function,
    evidence,
    firebreak_own,
    publish_evidence,
    stop_invocations,
)
from firebreak.core.errors import FindingRejected
from firebreak.core.models import Action, ActionType, IncidentStatus, Mode, Outcome, Playbook, PlaybookRequest, Triage
from firebreak.incident.notifications import summary, undo_hint
from firebreak.incident.undo import ReleaseContext, kept, undo
from firebreak.triage.findings import normalise
from firebreak.triage.incidents import incident_id_for
from tests.support import load_event

NAME = "thumbnailer"
STACK = "firebreak"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def client(aws: None) -> Any:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="thumbnailer-role", Path="/service-role/", AssumeRolePolicyDocument=TRUST)
    lam = boto3.client("lambda", region_name="us-east-1")
    lam.create_function(
        FunctionName=NAME,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": package()},
        Environment={"Variables": {"DB_PASSWORD": "hunter2", "STAGE": "prod"}},
        Tags={"Team": "media"},
    )
    return lam


def request(mode: Mode = Mode.ENFORCE, **incident: Any) -> PlaybookRequest:
    finding = normalise(load_event("eventbridge/guardduty_lambda_crypto_mining"))
    return PlaybookRequest("fb-0123456789abcdef0123", replace(finding, **incident), mode)


def tag(client: Any, key: str, value: str) -> None:
    arn = client.get_function(FunctionName=NAME)["Configuration"]["FunctionArn"]
    client.tag_resource(Resource=arn, Tags={key: value})


def concurrency(client: Any) -> Any:
    return client.get_function_concurrency(FunctionName=NAME).get("ReservedConcurrentExecutions")


# --- reading and the evidence record ------------------------------------------------------------------------------


def test_evidence_names_environment_variables_but_never_their_values(client: Any) -> None:
    # GIVEN a function with a secret in its environment
    function = describe_function(client, NAME)
    assert function is not None

    # WHEN its evidence is taken
    kept_evidence = evidence(function)

    # THEN the names are there, the values nowhere, and the code is identified by its SHA-256
    assert kept_evidence["environment_variable_names"] == ["DB_PASSWORD", "STAGE"]
    assert "hunter2" not in json.dumps(kept_evidence)
    assert kept_evidence["code_sha256"] == function.configuration["CodeSha256"]
    assert kept_evidence["configuration"]["Handler"] == "app.handler"


def test_evidence_keeps_the_code_location_without_its_presigned_query() -> None:
    # GIVEN GetFunction's presigned code URL
    function = LambdaFunction(
        NAME,
        {"CodeSha256": "abc="},
        {"Location": "https://bucket.s3.amazonaws.com/fn?X-Amz-Signature=secret"},
        {},
        None,
    )
    # THEN only the object's address is kept: the signature lets anyone download the code
    assert evidence(function)["code_location"] == "https://bucket.s3.amazonaws.com/fn"


def test_role_name_drops_the_roles_path(client: Any) -> None:
    function = describe_function(client, NAME)
    assert function is not None and function.role_name == "thumbnailer-role"


def test_a_function_lambda_does_not_know_is_none(client: Any) -> None:
    assert describe_function(client, "no-such-function") is None


# --- the guards ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tags", "stack", "refused"),
    [
        ("firebreak-ParseFindingFunction-AbC123", {}, STACK, True),
        ("FIREBREAK-parse", {}, STACK, True),
        ("renamed", {"aws:cloudformation:stack-name": STACK}, STACK, True),
        ("thumbnailer", {}, "", True),
        ("thumbnailer", {"aws:cloudformation:stack-name": "media"}, STACK, False),
        ("firebreaker", {}, STACK, False),
    ],
)
def test_firebreaks_own_functions_are_recognised_by_name_and_stack_tag(
    name: str, tags: dict[str, str], stack: str, refused: bool
) -> None:
    function = LambdaFunction(name, {}, {}, tags, None)
    assert (firebreak_own(function, stack) is not None) is refused


def test_exempt_function_is_never_touched(client: Any) -> None:
    # GIVEN a function tagged exempt (any case)
    tag(client, "firebreak:exempt", "TRUE")
    # WHEN contained THEN it is EXEMPT with the reason for the suppression, and its concurrency untouched
    result = contain_function(client, request(), STACK)
    assert result.status is ContainmentStatus.EXEMPT
    assert result.suppressed_reason == "function tagged firebreak:exempt=true"
    assert concurrency(client) is None


def test_a_live_approval_tag_stops_an_enforce_run_but_not_one_a_person_approved(client: Any) -> None:
    tag(client, "firebreak:approval", "required")
    assert contain_function(client, request(), STACK).status is ContainmentStatus.REFUSED
    assert contain_function(client, request(), STACK, approved=True).status is ContainmentStatus.CONTAINED


def test_a_finding_naming_no_function_is_not_found(client: Any) -> None:
    result = contain_function(client, request(function_name=None), STACK)
    assert (result.status, result.actions[0].target) == (ContainmentStatus.NOT_FOUND, "unknown")


# --- the steps ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "outcome"), [(None, Outcome.APPLIED), (7, Outcome.APPLIED), (0, Outcome.ALREADY_APPLIED)]
)
def test_stop_invocations_records_the_previous_reserved_concurrency(
    client: Any, previous: int | None, outcome: Outcome
) -> None:
    # GIVEN a function with that reserved concurrency (None: none reserved)
    if previous is not None:
        client.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=previous)
    function = describe_function(client, NAME)
    assert function is not None

    # WHEN its invocations are stopped
    action = stop_invocations(client, function, Mode.ENFORCE)

    # THEN it is at 0 and the record holds what it was
    assert action.outcome is outcome
    assert action.before == {"function": NAME, "reserved_concurrency": previous}
    assert action.after == {"function": NAME, "reserved_concurrency": 0}
    assert concurrency(client) == 0


def test_dry_run_plans_both_steps_with_their_calls_and_changes_nothing(client: Any) -> None:
    result = contain_function(client, request(Mode.DRY_RUN), STACK)
    assert result.status is ContainmentStatus.PLANNED
    assert [a.outcome for a in result.actions] == [Outcome.PLANNED, Outcome.PLANNED]
    assert (
        "PutFunctionConcurrency(FunctionName=thumbnailer, ReservedConcurrentExecutions=0)" in result.actions[0].reason
    )
    assert "PublishVersion(FunctionName=thumbnailer" in result.actions[1].reason
    assert concurrency(client) is None
    assert [v["Version"] for v in client.list_versions_by_function(FunctionName=NAME)["Versions"]] == ["$LATEST"]


def test_publishing_twice_keeps_one_version_and_says_already_applied(client: Any) -> None:
    # GIVEN the function
    function = describe_function(client, NAME)
    assert function is not None

    # WHEN its evidence is published twice
    first = publish_evidence(client, function, request())
    second = publish_evidence(client, function, request())

    # THEN the first published version 1, the second found Lambda had nothing new to publish
    assert (first.outcome, first.after["evidence_version"]) == (Outcome.APPLIED, "1")
    assert first.after["finding_version"] == "$LATEST"
    assert (second.outcome, second.after["evidence_version"]) == (Outcome.ALREADY_APPLIED, "1")
    assert kept(first) == f"version 1 of function {NAME} (evidence)"


def test_a_second_containment_is_already_contained(client: Any) -> None:
    contain_function(client, request(), STACK)
    again = contain_function(client, request(), STACK)
    assert again.status is ContainmentStatus.ALREADY_CONTAINED
    assert again.role_name == "thumbnailer-role"
    assert again.block_addresses == ("45.9.148.108",)


def throttled(**kwargs: Any) -> Any:
    raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Lambda")


def test_throttling_before_any_change_propagates_for_the_state_machines_retry(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "put_function_concurrency", throttled)
    with pytest.raises(ClientError):
        contain_function(client, request(), STACK)


def test_throttling_after_a_change_is_a_failed_step_so_the_change_stays_recorded(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Lambda throttles the version after the concurrency was set
    monkeypatch.setattr(client, "publish_version", throttled)
    # WHEN contained THEN the concurrency change is on the record with its before-state, the version failed
    result = contain_function(client, request(), STACK)
    assert result.status is ContainmentStatus.FAILED
    assert [a.outcome for a in result.actions] == [Outcome.APPLIED, Outcome.FAILED]
    assert result.actions[0].before["reserved_concurrency"] is None
    assert "TooManyRequestsException" in result.actions[1].reason


# --- the undo -----------------------------------------------------------------------------------------------------


def recorded(previous: int | None) -> Action:
    before = {"function": NAME, "reserved_concurrency": previous}
    after = {"function": NAME, "reserved_concurrency": 0}
    return Action(ActionType.CONTAIN_FUNCTION, NAME, Outcome.APPLIED, "", before, after)


def context(client: Any) -> ReleaseContext:
    return ReleaseContext("fb-0123456789abcdef0123", lambda service: client)


@pytest.mark.parametrize("previous", [None, 7])
def test_undo_puts_the_previous_reserved_concurrency_back(client: Any, previous: int | None) -> None:
    client.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=0)
    entry = undo(recorded(previous), context(client))
    assert entry.outcome is Outcome.RELEASED
    assert concurrency(client) == previous


def test_undo_leaves_a_value_a_person_set_since(client: Any) -> None:
    client.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=3)
    entry = undo(recorded(None), context(client))
    assert entry.outcome is Outcome.SKIPPED and entry.reason.startswith("conflict:")
    assert concurrency(client) == 3


def test_undo_of_a_deleted_function_is_a_conflict_not_a_crash(client: Any) -> None:
    client.delete_function(FunctionName=NAME)
    entry = undo(recorded(5), context(client))
    assert entry.outcome is Outcome.SKIPPED and "no longer exists" in entry.reason


# --- the finding --------------------------------------------------------------------------------------------------


def test_guardduty_lambda_finding_names_the_function_its_role_vpc_and_tags() -> None:
    incident = normalise(load_event("eventbridge/guardduty_lambda_crypto_mining"))
    assert (incident.resource_type, incident.function_name) == ("Lambda", NAME)
    assert incident.function_role_arn == "arn:aws:iam::123456789012:role/thumbnailer-role"
    assert incident.vpc_id == "vpc-0a1b2c3d4e5f60001"
    assert incident.resource_tags == (("Team", "media"),)
    assert incident.principal_type is None


def test_security_hub_copy_of_a_lambda_finding_names_the_function_by_its_arn() -> None:
    # GIVEN the ASFF copy of a Lambda Protection finding, whose resource is an AwsLambdaFunction with no details
    event = load_event("eventbridge/securityhub_guardduty_copy")
    finding = event["detail"]["findings"][0]
    finding["Types"] = ["TTPs/Command and Control/Backdoor:Lambda-C&CActivity.B"]
    finding["Resources"] = [
        {
            "Type": "AwsLambdaFunction",
            "Id": "arn:aws:lambda:us-east-1:123456789012:function:thumbnailer",
            "Tags": {"firebreak:approval": "required"},
        }
    ]
    # WHEN normalised THEN the function's name comes from the ARN and its tags are read
    incident = normalise(event)
    assert (incident.resource_type, incident.function_name) == ("Lambda", NAME)
    assert incident.tag("firebreak:approval") == "required"


# --- what responders read -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "command"),
    [
        (None, "aws lambda delete-function-concurrency --function-name thumbnailer"),
        (7, "aws lambda put-function-concurrency --function-name thumbnailer --reserved-concurrent-executions 7"),
    ],
)
def test_the_notification_names_the_function_its_role_and_how_to_undo_the_stop(
    previous: int | None, command: str
) -> None:
    # GIVEN a contained function's incident
    finding = normalise(load_event("eventbridge/guardduty_lambda_crypto_mining"))
    triage = Triage(incident_id_for(finding), finding, Playbook.CONTAIN_FUNCTION, Mode.ENFORCE)

    # WHEN the responders' message is written
    text = summary(IncidentStatus.CONTAINED, triage, [recorded(previous)], "arn:aws:states:::execution:x")

    # THEN it names the function and its role, and the by-hand undo of the concurrency
    assert "Function:  thumbnailer (execution role arn:aws:iam::123456789012:role/thumbnailer-role)" in text
    assert command in (undo_hint([recorded(previous)]) or "")


def test_a_lambda_finding_without_the_function_is_kept_and_one_with_a_garbled_name_refused() -> None:
    # GIVEN a Lambda finding whose details lack the function, and one whose name is not a function name
    event = load_event("eventbridge/guardduty_lambda_crypto_mining")
    event["detail"]["resource"]["lambdaDetails"] = {}
    garbled = load_event("eventbridge/guardduty_lambda_crypto_mining")
    garbled["detail"]["resource"]["lambdaDetails"]["functionName"] = "thumbnailer; rm -rf /"

    # THEN the first is an incident naming no function (the playbook then says so), the second is rejected
    assert normalise(event).function_name is None
    with pytest.raises(FindingRejected, match="lambdaDetails.functionName is missing or not a Lambda function name"):
        normalise(garbled)
