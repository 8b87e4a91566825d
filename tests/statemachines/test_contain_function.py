"""The real contain-function playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from firebreak_local.cli import main
from firebreak_local.engine import Approvals, Engine, Execution
from tests.support import ROOT, TEMPLATE, incident_record, load_event, out_of_memory, report_of, start

FUNCTION = "thumbnailer"
ROLE = "thumbnailer-role"
MEMBER, MEMBER_REGION = "111122223333", "eu-west-1"
CONTAIN_STATES = [
    "Parse Finding",
    "Open Incident",
    "Which Playbook?",
    "Run Contain Function Playbook",
    "Contain Function",
    "Is Function Containable?",
    "Revoke Role Sessions",
    "Any Addresses To Block?",
    "Enrich Addresses",
    "Block Addresses",
    "Containment Complete",
    "Notify Responders",
    "Record Outcome",
    "Export Stix Bundle",
    "Did Response Fail?",
    "Response Complete",
]
CONTAIN_FUNCTION = "firebreak-ContainFunctionFunction"
MUTATING = ("Create", "Put", "Publish", "Update", "Delete", "Attach")


def crypto_mining() -> dict[str, Any]:
    return load_event("eventbridge/guardduty_lambda_crypto_mining")


def seed(engine: Engine, event: dict[str, Any]) -> Any:
    """The finding's function seeded in its account and Region; that place's Lambda client."""
    engine.world.seed(event)
    detail = event["detail"]
    return engine.client("lambda", account=detail["accountId"], region=detail["region"])


def actions(execution: Execution, action_type: str = "contain_function") -> list[dict[str, Any]]:
    return [action for action in report_of(execution)["actions"] if action["type"] == action_type]


def mutating_calls(execution: Execution, service: str) -> list[str]:
    calls = [call for call in execution.api_calls if call.startswith(f"{service}.")]
    return [call for call in calls if call.split(".")[-1].startswith(MUTATING)]


def concurrency(client: Any, name: str = FUNCTION) -> Any:
    return client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")


# --- the whole playbook -----------------------------------------------------------------------------------------


def test_happy_path_stops_the_function_keeps_a_version_revokes_its_role_and_blocks_the_pool(engine: Engine) -> None:
    # GIVEN a Lambda function mining cryptocurrency, with 5 reserved executions and a secret in its environment
    event = crypto_mining()
    client = seed(engine, event)
    client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=5)
    client.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {"API_TOKEN": "s3cr3t"}})

    # WHEN the finding runs through the stack
    execution = start(engine, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == CONTAIN_STATES
    outcome = report_of(execution)
    assert outcome["status"] == "CONTAINED"
    assert outcome["playbook"] == "contain-function"

    # AND nothing can invoke the function, and the record says it had 5 reserved
    stop, keep = actions(execution)
    assert concurrency(client) == 0
    assert stop["outcome"] == "applied"
    assert stop["before"] == {"function": FUNCTION, "reserved_concurrency": 5}
    assert stop["after"] == {"function": FUNCTION, "reserved_concurrency": 0}

    # AND a version holds the function as it ran, its code and configuration on the record, its secret not
    versions = client.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]
    assert outcome["incident_id"] in versions[1]["Description"]
    assert keep["outcome"] == "applied"
    assert keep["after"]["evidence_version"] == "1"
    assert keep["after"]["code_sha256"] == versions[1]["CodeSha256"]
    assert keep["after"]["environment_variable_names"] == ["API_TOKEN"]
    assert "s3cr3t" not in json.dumps(outcome)

    # AND the execution role's older sessions are denied, and the mining pool's address is blocked
    [revoked] = actions(execution, "revoke_credentials")
    assert (revoked["target"], revoked["outcome"]) == (ROLE, "applied")
    assert "AWSRevokeOlderSessions" in revoked["reason"]
    assert engine.blocked_ips() == ["45.9.148.108/32"]
    world = engine.world.report()
    assert world["functions"][FUNCTION] == {
        "reserved_concurrency": 0,
        "evidence_version": "1",
        "account": "123456789012",
        "region": "us-east-1",
    }
    assert ROLE in world["revoked_roles"]


def test_second_finding_on_a_stopped_function_changes_nothing_and_says_already_applied(engine: Engine) -> None:
    # GIVEN a function already contained for one finding
    first = crypto_mining()
    client = seed(engine, first)
    start(engine, first)

    # WHEN another finding about the same function arrives
    second = crypto_mining()
    second["detail"]["id"] = "9e1d3c5b7a2f4e6d8c0b1a3f5e7d9c26"
    second["detail"]["type"] = "Backdoor:Lambda/C&CActivity.B"
    execution = start(engine, second)

    # THEN both function steps say already applied, the concurrency is not written again and no second version appears
    assert {a["outcome"] for a in actions(execution)} == {"already_applied"}
    # AND the role's deny moves on to this execution's start: sessions issued since the first finding are denied too
    [revoked] = actions(execution, "revoke_credentials")
    assert revoked["outcome"] == "applied"
    assert report_of(execution)["status"] == "CONTAINED"
    assert "lambda.PutFunctionConcurrency" not in execution.api_calls
    assert [v["Version"] for v in client.list_versions_by_function(FunctionName=FUNCTION)["Versions"]] == [
        "$LATEST",
        "1",
    ]
    assert concurrency(client) == 0


def test_function_gone_is_skipped_with_a_clear_reason_and_nothing_is_blocked(engine: Engine) -> None:
    # GIVEN the function was deleted before the finding was handled
    event = crypto_mining()
    seed(engine, event).delete_function(FunctionName=FUNCTION)

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the playbook stops after the gate, says why, and the incident is only NOTIFIED
    assert execution.states[4:7] == ["Contain Function", "Is Function Containable?", "Containment Skipped"]
    [skipped] = actions(execution)
    assert (skipped["outcome"], skipped["reason"]) == (
        "skipped",
        f"function {FUNCTION} does not exist: nothing left to contain",
    )
    assert report_of(execution)["status"] == "NOTIFIED"
    assert engine.blocked_ips() == []


def test_function_tagged_exempt_now_is_suppressed_and_not_touched(engine: Engine) -> None:
    # GIVEN a function tagged firebreak:exempt=true after GuardDuty described it
    event = crypto_mining()
    client = seed(engine, event)
    arn = client.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    client.tag_resource(Resource=arn, Tags={"firebreak:exempt": "true"})

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN nothing is touched and the incident is SUPPRESSED, with the live tag as the reason
    assert execution.states[4:7] == ["Contain Function", "Is Function Containable?", "Containment Skipped"]
    assert [a["outcome"] for a in actions(execution)] == ["skipped"]
    assert "firebreak:exempt=true" in actions(execution)[0]["reason"]
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert incident_record(engine, report_of(execution)["incident_id"])["status"] == "SUPPRESSED"
    assert mutating_calls(execution, "lambda") == mutating_calls(execution, "iam") == []
    assert concurrency(client) is None


def test_finding_tagged_exempt_is_suppressed_by_triage(engine: Engine) -> None:
    # GIVEN the finding itself shows the function tagged firebreak:exempt=true
    event = crypto_mining()
    event["detail"]["resource"]["lambdaDetails"]["tags"].append({"key": "firebreak:exempt", "value": "true"})
    client = seed(engine, event)

    # WHEN it runs THEN no playbook starts and the incident is SUPPRESSED
    execution = start(engine, event)
    assert "Run Contain Function Playbook" not in execution.states
    assert report_of(execution)["status"] == "SUPPRESSED"
    assert concurrency(client) is None


def test_function_tagged_for_approval_since_the_finding_is_not_contained_without_one(engine: Engine) -> None:
    # GIVEN a function tagged firebreak:approval=required after GuardDuty described it
    event = crypto_mining()
    client = seed(engine, event)
    arn = client.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    client.tag_resource(Resource=arn, Tags={"firebreak:approval": "required"})

    # WHEN the finding runs in enforce mode
    execution = start(engine, event)

    # THEN nothing is touched, the reason says why, and the incident is only NOTIFIED
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped" and "firebreak:approval=required" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"
    assert concurrency(client) is None
    assert engine.blocked_ips() == []


def test_firebreaks_own_function_is_never_contained(engine: Engine) -> None:
    # GIVEN a finding about one of the stack's own functions
    event = crypto_mining()
    own = engine.resources["ParseFindingFunction"].ref
    details = event["detail"]["resource"]["lambdaDetails"]
    details.update(functionName=own, functionArn=details["functionArn"].replace(FUNCTION, own))
    client = seed(engine, event)

    # WHEN it runs
    execution = start(engine, event)

    # THEN it is refused with the reason, nothing of the stack is changed, and a person is told
    [skipped] = actions(execution)
    assert skipped["outcome"] == "skipped" and "Firebreak stack" in skipped["reason"]
    assert report_of(execution)["status"] == "NOTIFIED"
    assert mutating_calls(execution, "lambda") == mutating_calls(execution, "iam") == []
    assert concurrency(client, own) is None


def test_refused_concurrency_change_is_failed_and_the_evidence_is_still_kept(engine: Engine) -> None:
    # GIVEN Lambda refuses to change the function's concurrency
    event = crypto_mining()
    client = seed(engine, event)
    with engine.faults.inject("lambda", "PutFunctionConcurrency", "AccessDeniedException", times=None):
        # WHEN the finding runs
        execution = start(engine, event)

    # THEN the failed step is told, the version and the revocation still happened, and the status says so
    stop, keep = actions(execution)
    assert stop["outcome"] == "failed" and "AccessDeniedException" in stop["reason"]
    assert keep["outcome"] == "applied"
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert concurrency(client) is None


def test_refused_version_is_failed_and_the_function_is_still_stopped(engine: Engine) -> None:
    # GIVEN Lambda refuses to publish a version
    event = crypto_mining()
    client = seed(engine, event)
    with engine.faults.inject("lambda", "PublishVersion", "AccessDeniedException", times=None):
        execution = start(engine, event)

    # THEN the incident is partially contained: stopped, no evidence version
    stop, keep = actions(execution)
    assert (stop["outcome"], keep["outcome"]) == ("applied", "failed")
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
    assert concurrency(client) == 0


def test_contain_function_crashing_is_failed_and_the_role_and_addresses_are_still_handled(engine: Engine) -> None:
    # GIVEN the Contain Function handler crashes (forced: a rare runtime error)
    engine.dispatcher.override(CONTAIN_FUNCTION, out_of_memory)
    event = crypto_mining()
    seed(engine, event)

    # WHEN the finding runs
    execution = start(engine, event)

    # THEN the function step is failed, the finding's role is still revoked, the pool still blocked: never CONTAINED
    [failed] = actions(execution)
    assert (failed["outcome"], failed["reason"]) == ("failed", "step Contain Function failed: RuntimeError")
    [revoked] = actions(execution, "revoke_credentials")
    assert (revoked["target"], revoked["outcome"]) == (ROLE, "applied")
    assert engine.blocked_ips() == ["45.9.148.108/32"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_refused_role_revocation_is_failed_and_the_incident_partially_contained(engine: Engine) -> None:
    # GIVEN IAM refuses the role's deny policy
    event = crypto_mining()
    seed(engine, event)
    with engine.faults.inject("iam", "PutRolePolicy", "AccessDenied", times=None):
        execution = start(engine, event)

    # THEN the revocation is failed, the function is still stopped and kept
    [revoked] = actions(execution, "revoke_credentials")
    assert revoked["outcome"] == "failed" and "AccessDenied" in revoked["reason"]
    assert {a["outcome"] for a in actions(execution)} == {"applied"}
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_block_step_crashing_is_failed_and_never_contained(engine: Engine) -> None:
    # GIVEN the block function crashes
    engine.dispatcher.override(engine.resources["BlockIpFunction"].ref, out_of_memory)
    event = crypto_mining()
    seed(engine, event)

    # WHEN the finding runs THEN the address is failed, the rest applied, and the incident partially contained
    execution = start(engine, event)
    [block] = [a for a in actions(execution, "block_ip") if a["outcome"] == "failed"]
    assert block["target"] == "45.9.148.108"
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"


def test_dry_run_plans_every_call_and_changes_nothing() -> None:
    # GIVEN a stack in dry-run mode and a function with reserved concurrency 5
    with Engine(TEMPLATE, {"ResponseMode": "dry-run"}) as engine:
        event = crypto_mining()
        client = seed(engine, event)
        client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=5)

        # WHEN the finding runs
        execution = start(engine, event)

        # THEN every action is planned with the exact calls, and nothing changed
        assert report_of(execution)["status"] == "DRY_RUN"
        planned = actions(execution) + actions(execution, "revoke_credentials")
        assert {a["outcome"] for a in planned} == {"planned"}
        reasons = " ".join(a["reason"] for a in planned)
        for call in (
            f"lambda:PutFunctionConcurrency(FunctionName={FUNCTION}, ReservedConcurrentExecutions=0)",
            f"lambda:PublishVersion(FunctionName={FUNCTION}",
            f"iam:PutRolePolicy(RoleName={ROLE}",
        ):
            assert call in reasons
        assert planned[0]["before"] == {"function": FUNCTION, "reserved_concurrency": 5}
        assert mutating_calls(execution, "lambda") == mutating_calls(execution, "iam") == []
        assert concurrency(client) == 5


def test_approval_mode_waits_and_changes_nothing_until_approved() -> None:
    # GIVEN contain-function in approval mode
    with Engine(TEMPLATE, {"ContainFunctionMode": "approval"}) as engine:
        event = crypto_mining()
        client = seed(engine, event)
        rule = engine.matching_rule(event)
        assert rule is not None

        # WHEN the finding runs and nobody has answered yet
        waiting = engine.start(rule, event, Approvals.REPORT)

        # THEN it waits, naming what it will do, and the function still runs
        assert waiting.output is not None
        assert (waiting.output["status"], waiting.output["playbook"]) == ("AWAITING_APPROVAL", "contain-function")
        assert {a["target"]: a["outcome"] for a in waiting.output["actions"] if a["type"] == "contain_function"} == {
            FUNCTION: "awaiting_approval"
        }
        assert concurrency(client) is None

    with Engine(TEMPLATE, {"ContainFunctionMode": "approval"}) as engine:
        event = crypto_mining()
        client = seed(engine, event)
        rule = engine.matching_rule(event)
        assert rule is not None
        # AND once approved, it is contained, even though the function was tagged for approval since the finding
        arn = client.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
        client.tag_resource(Resource=arn, Tags={"firebreak:approval": "required"})
        approved = engine.start(rule, event, Approvals.APPROVE)
        assert report_of(approved)["status"] == "CONTAINED"
        assert concurrency(client) == 0


# --- release ----------------------------------------------------------------------------------------------------


def test_release_puts_the_reserved_concurrency_back_lifts_the_deny_and_keeps_the_version(engine: Engine) -> None:
    # GIVEN a contained function that had 5 reserved executions
    event = crypto_mining()
    client = seed(engine, event)
    client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=5)
    incident_id = report_of(start(engine, event))["incident_id"]

    # WHEN the incident is released
    released = report_of(engine.release(incident_id))

    # THEN the function has 5 again, its role no deny policy, the pool is unblocked, and the evidence stays
    assert released["status"] == "RELEASED", released
    assert concurrency(client) == 5
    assert engine.client("iam").list_role_policies(RoleName=ROLE)["PolicyNames"] == []
    assert engine.blocked_ips() == []
    [entry] = [a for a in released["actions"] if a["type"] == "contain_function"]
    assert entry["outcome"] == "released" and "back to 5" in entry["reason"]
    [summary] = [a for a in released["actions"] if a["type"] == "release"]
    assert f"version 1 of function {FUNCTION} (evidence)" in summary["reason"]
    assert engine.world.report()["functions"][FUNCTION]["evidence_version"] == "1"


def test_release_of_a_function_that_had_no_reserved_concurrency_deletes_it(engine: Engine) -> None:
    # GIVEN a contained function that shared the account's pool
    event = crypto_mining()
    client = seed(engine, event)
    incident_id = report_of(start(engine, event))["incident_id"]
    assert concurrency(client) == 0

    # WHEN released THEN it has none reserved again
    released = report_of(engine.release(incident_id))
    assert released["status"] == "RELEASED", released
    assert concurrency(client) is None
    [entry] = [a for a in released["actions"] if a["type"] == "contain_function"]
    assert entry["after"] == {"function": FUNCTION, "reserved_concurrency": None}


def test_release_after_a_person_changed_the_concurrency_leaves_it_and_says_so(engine: Engine) -> None:
    # GIVEN a contained function whose reserved concurrency a person set to 2 since
    event = crypto_mining()
    client = seed(engine, event)
    incident_id = report_of(start(engine, event))["incident_id"]
    client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=2)

    # WHEN the incident is released
    released = report_of(engine.release(incident_id))

    # THEN the person's value stays, the step is skipped as a conflict, and the incident is partially contained
    [entry] = [a for a in released["actions"] if a["type"] == "contain_function"]
    assert entry["outcome"] == "skipped" and entry["reason"].startswith("conflict:")
    assert concurrency(client) == 2
    assert released["status"] == "PARTIALLY_CONTAINED"


# --- member accounts --------------------------------------------------------------------------------------------


def test_a_member_accounts_function_is_contained_there_through_its_member_role_and_released(engine: Engine) -> None:
    # GIVEN a C&C finding about a function of a member account in eu-west-1, whose role has a path
    event = load_event("eventbridge/guardduty_member_lambda_c2_activity")
    client = seed(engine, event)

    # WHEN it runs
    execution = start(engine, event)

    # THEN the member's function is stopped and kept there, its role revoked there, nothing in the security account
    assert report_of(execution)["status"] == "CONTAINED", actions(execution)
    assert concurrency(client, "order-webhook") == 0
    member_iam = engine.client("iam", account=MEMBER)
    assert member_iam.list_role_policies(RoleName="order-webhook-role")["PolicyNames"] == ["AWSRevokeOlderSessions"]
    assert engine.client("lambda", region=MEMBER_REGION).list_functions()["Functions"] == []
    world = engine.world.report()["functions"]["order-webhook"]
    assert (world["account"], world["region"], world["reserved_concurrency"]) == (MEMBER, MEMBER_REGION, 0)
    assert engine.assume_role_refusals() == []

    # AND the release undoes it through the release function's member role
    released = report_of(engine.release(report_of(execution)["incident_id"]))
    assert released["status"] == "RELEASED", released
    assert concurrency(client, "order-webhook") is None


# --- the run report ---------------------------------------------------------------------------------------------


def test_the_run_report_shows_the_stopped_function_as_the_contract_says(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the crypto-mining function's finding, run as `firebreak run --json` would
    monkeypatch.chdir(ROOT)
    status = main(["run", "--json", "events/eventbridge/guardduty_lambda_crypto_mining.json"])
    document = json.loads(capsys.readouterr().out)

    # THEN the report validates against the contract and its world shows the function stopped and kept
    jsonschema.validate(document, json.loads((ROOT / "contracts" / "run-report.schema.json").read_text()))
    assert status == 0
    assert [r["status"] for r in document["results"]] == ["CONTAINED"]
    assert document["world"]["functions"] == {
        FUNCTION: {"reserved_concurrency": 0, "evidence_version": "1", "account": "123456789012", "region": "us-east-1"}
    }
    assert document["world"]["blocked_ips"] == ["45.9.148.108/32"]


# --- throttling -------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("short_retry_waits")
@pytest.mark.parametrize("operation", ["GetFunction", "GetFunctionConcurrency", "PutFunctionConcurrency"])
def test_throttling_past_the_clients_retries_before_any_change_is_retried_by_the_step(
    engine: Engine, operation: str
) -> None:
    # GIVEN Lambda throttles one call of Contain Function before it changed anything, past the client's 3 attempts
    event = crypto_mining()
    client = seed(engine, event)
    with engine.faults.inject("lambda", operation, "TooManyRequestsException", times=3) as fault:
        execution = start(engine, event)

    # THEN the step's ASL Retry ran it again and the function is contained, nothing recorded twice
    assert fault.hits == 3
    assert report_of(execution)["status"] == "CONTAINED"
    assert [a["outcome"] for a in actions(execution)] == ["applied", "applied"]
    assert concurrency(client) == 0


@pytest.mark.usefixtures("short_retry_waits")
def test_throttling_of_the_version_after_the_stop_is_a_failed_step_so_the_stop_stays_on_the_record(
    engine: Engine,
) -> None:
    # GIVEN Lambda throttles PublishVersion past the client's retries, after the concurrency was set to 0
    event = crypto_mining()
    client = seed(engine, event)
    client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=5)
    with engine.faults.inject("lambda", "PublishVersion", "TooManyRequestsException", times=3):
        execution = start(engine, event)

    # THEN the step is not retried (it would record 0 as the before-state): the version failed, the stop kept 5
    stop, keep = actions(execution)
    assert (stop["outcome"], stop["before"]["reserved_concurrency"]) == ("applied", 5)
    assert keep["outcome"] == "failed" and "TooManyRequestsException" in keep["reason"]
    assert report_of(execution)["status"] == "PARTIALLY_CONTAINED"
