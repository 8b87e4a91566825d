"""The JSONata function the state machines use to store actions as native DynamoDB maps, checked by round trip."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonata
import pytest
from boto3.dynamodb.types import TypeDeserializer

from firebreak.incident.records import plain
from tests.support import ROOT

MACHINES = ("respond_to_finding.asl.json", "release_incident.asl.json")
DDB_FUNCTION = re.compile(r"\$ddb := function\(\$v\) \{.*?\{'NULL': true\} \)\}")


def ddb_functions(name: str) -> list[str]:
    return DDB_FUNCTION.findall((ROOT / "statemachines" / name).read_text())


def to_dynamodb(value: Any) -> Any:
    """Evaluate the very function written in the ASL file on a value."""
    (function, *_) = ddb_functions(MACHINES[0])
    return jsonata.Jsonata(f"( {function}; $ddb(value) )").evaluate({"value": value})


ACTION = {
    "type": "isolate_instance",
    "target": "i-0abc",
    "outcome": "applied",
    "reason": 'quarantined | "quoted" \n newline',
    "before": {
        "interfaces": {"eni-1": ["sg-1", "sg-2"], "eni-2": []},
        "termination_protection": False,
        "auto_scaling_group": None,
        "target_groups": [{"arn": "arn:aws:elasticloadbalancing:…", "port": 443}],
        "score": 60.5,
    },
    "after": {},
    "at": "2026-03-14T09:14:02.147Z",
}


@pytest.mark.parametrize(
    "value",
    [[], [ACTION], [ACTION, {**ACTION, "target": "i-0def"}], [{"nested": [[1, 2], [], [None, True]]}]],
    ids=["empty", "one", "two", "nested"],
)
def test_actions_survive_the_round_trip_through_native_dynamodb_values(value: list[Any]) -> None:
    # GIVEN a list of actions with strings, numbers, booleans, nulls, empty and nested maps and lists
    # WHEN the ASL's $ddb function types it and boto3 reads it back
    typed = to_dynamodb(value)
    back = plain({"value": typed})["value"]

    # THEN it is a DynamoDB list of maps and reads back as exactly the same data
    assert "L" in typed
    assert back == value


def test_a_single_action_stays_a_list_and_null_is_typed_null() -> None:
    # GIVEN one action holding a null (JSONata unwraps one-element sequences and drops nulls if not careful)
    typed = to_dynamodb([{"auto_scaling_group": None}])

    # THEN the result is a one-element list whose null is a DynamoDB NULL
    assert typed == {"L": [{"M": {"auto_scaling_group": {"NULL": True}}}]}
    assert TypeDeserializer().deserialize(typed) == [{"auto_scaling_group": None}]


def test_every_machine_uses_the_same_typing_function() -> None:
    # GIVEN the machines that write actions to the incident record
    functions = {name: ddb_functions(name) for name in MACHINES}

    # THEN each writes them with the $ddb function, and all copies are the same text (no drift between files)
    assert all(functions.values()), functions
    assert len({text for texts in functions.values() for text in texts}) == 1


def test_record_outcome_stores_actions_natively_not_as_json_text() -> None:
    # GIVEN the entry machine's Record Outcome state
    states = json.loads((ROOT / "statemachines" / "respond_to_finding.asl.json").read_text())["States"]
    values = states["Record Outcome"]["Arguments"]["ExpressionAttributeValues"]

    # THEN actions are typed by $ddb, not stringified
    assert "$ddb($outcome.actions[])" in values[":actions"]
    assert "$string($outcome.actions" not in values[":actions"]
