"""The real contain-function playbook through the entry machine on the local engine, with the real handlers on moto."""

from __future__ import annotations

import json
from typing import Any

from firebreak_local.engine import Engine, Execution
from tests.support import load_event

FUNCTION = "thumbnailer"
ROLE = "thumbnailer-role"
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


def run(engine: Engine, event: dict[str, Any]) -> Execution:
    rule = engine.matching_rule(event)
    assert rule is not None, "the event should trigger a rule"
    return engine.start(rule, event)


def report(execution: Execution) -> dict[str, Any]:
    value = execution.output if execution.status == "SUCCEEDED" else json.loads(execution.cause or "{}")
    assert isinstance(value, dict)
    return value


def actions(execution: Execution, action_type: str = "contain_function") -> list[dict[str, Any]]:
    return [action for action in report(execution)["actions"] if action["type"] == action_type]


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
    execution = run(engine, event)

    # THEN the playbook ran in order and the incident is CONTAINED
    assert execution.status == "SUCCEEDED"
    assert execution.states == CONTAIN_STATES
    outcome = report(execution)
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
