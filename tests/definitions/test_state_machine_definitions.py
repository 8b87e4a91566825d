"""Definition contract of every statemachines/*.asl.json: JSONata, statelint, substitutions, retries, names, flow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import Template, load_template

ROOT = Path(__file__).parents[2]
ASL_FILES = sorted((ROOT / "statemachines").glob("*.asl.json"))
STATELINT = Path(sys.executable).parent / "statelint"
ENTRY_MACHINE = ROOT / "statemachines" / "respond_to_finding.asl.json"
FAILURE_PATH_START = "Notify Responders Of Failure"

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
THROTTLED = "Lambda.TooManyRequestsException"
LAMBDA_RETRY_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
EXECUTION_ID = re.compile(r"^\{%\s*\$states\.context\.Execution\.Id\s*%\}$")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Fields that only mean something to JSONPath; every key ending in "Path" (TimeoutSecondsPath, ErrorPath, ...) too.
JSONPATH_FIELDS = {"InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath", "ItemsPath"}
# A JSONPath Choice rule names the value it compares in Variable; a JSONata rule has a Condition instead.
JSONPATH_CHOICE_FIELDS = {"Variable"}
WORD = r"[A-Z0-9][a-z0-9]*"
STATE_NAME = re.compile(rf"^{WORD}(?: {WORD})*\??$")
TERMINAL_TYPES = {"Succeed", "Fail"}
CATCHING_TYPES = {"Task", "Map", "Parallel"}

# statelint 3.1.0 reads JSONata (QueryLanguage, Arguments, Output, Assign, Items, Condition, {% %} strings, Fail
# Error/Cause expressions) but still type-checks these fields as plain numbers or timestamps, although a JSONata
# state may give each of them as a {% %} expression (AWS Step Functions "Transforming data with JSONata").
JSONATA_EXPRESSION_FALSE_POSITIVE = re.compile(
    r"^State Machine\..+\.(TimeoutSeconds|HeartbeatSeconds|MaxConcurrency|ToleratedFailureCount"
    r'|ToleratedFailurePercentage|Seconds|Timestamp) is "\{%.*%\}" but should be '
    r"(an Integer|numeric|an RFC3339 timestamp)$"
)
# statelint 3.1.0 types BackoffRate as a float, so an integer such as 2 is reported; the ASL spec asks only for a
# number >= 1.0 and the service accepts integers (awslabs/statelint#35 and #45, fixed in the Ruby linter by #68).
INTEGER_BACKOFF_RATE_FALSE_POSITIVE = re.compile(
    r"^State Machine\..+\.Retry\[\d+\]\.BackoffRate is (?P<rate>\d+) but should be a Float$"
)
# Not filtered: `${Name}` in a Resource is reported as not a URI (statelint sees the file before substitution). The
# house style substitutes resources inside Arguments only and never an integration ARN, so such a Resource is a
# style problem either way. Placeholders inside Arguments (FunctionName, TableName, TopicArn) are not checked.


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys: {duplicates}")
    return dict(pairs)


def load_definition(path: Path) -> dict[str, Any]:
    """The ASL document; a duplicated key (which json would silently keep the last of) is an error."""
    definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_reject_duplicate_keys)
    return definition


def state_graphs(graph: dict[str, Any], path: str = "States") -> Iterator[tuple[str, dict[str, Any]]]:
    """The machine, then every Map processor and Parallel branch at any depth, each with its own States."""
    yield path, graph
    for name, state in graph["States"].items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from state_graphs(processor, f"{path}.{name}.ItemProcessor.States")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from state_graphs(branch, f"{path}.{name}.Branches[{index}].States")


def all_states(definition: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, name, state) for every state, nested ones included."""
    for path, graph in state_graphs(definition):
        for name, state in graph["States"].items():
            yield f"{path}.{name}", name, state


def transitions(state: dict[str, Any]) -> list[str]:
    """Every state name this state can move to: Next, Choice rules and Default, Catch."""
    targets = [state["Next"]] if "Next" in state else []
    targets += [rule["Next"] for rule in state.get("Choices", []) if "Next" in rule]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", []) if "Next" in catcher]
    return targets


def reachable(states: dict[str, Any], start: str) -> set[str]:
    """Names reachable from start (start included) through transitions."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        pending.extend(transitions(states[name]))
    return seen


def structural_objects(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ASL object whose keys are ASL fields: graphs, states, Catch, Retry, Choice rules, Map configuration."""
    for graph_path, graph in state_graphs(definition):
        yield graph_path.removesuffix(".States") or "(top level)", {k: v for k, v in graph.items() if k != "States"}
    for path, _, state in all_states(definition):
        yield path, state
        for field in ("Catch", "Retry", "Choices"):
            for index, entry in enumerate(state.get(field, [])):
                yield f"{path}.{field}[{index}]", entry
        for field in ("ItemReader", "ItemBatcher", "ResultWriter"):
            if isinstance(state.get(field), dict):
                yield f"{path}.{field}", state[field]


def all_keys(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, key) for every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from all_keys(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from all_keys(item, f"{path}[{index}]")


def run_statelint(path: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the venv's statelint on one file; return the process and the problems it listed."""
    process = subprocess.run([str(STATELINT), str(path)], capture_output=True, text=True, timeout=60, check=False)
    lines = [line.strip() for line in process.stdout.splitlines() if line.strip()]
    header = re.compile(r"^(One error|\d+ errors):$")
    problems = lines[1:] if lines and header.match(lines[0]) else []
    return process, problems


def is_known_false_positive(problem: str) -> bool:
    """True for a statelint 3.1.0 message documented above as wrong for a valid JSONata machine."""
    if JSONATA_EXPRESSION_FALSE_POSITIVE.match(problem):
        return True
    backoff = INTEGER_BACKOFF_RATE_FALSE_POSITIVE.match(problem)
    return backoff is not None and int(backoff["rate"]) >= 1


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def state_machines(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }


def machines_for(template: Template, path: Path) -> list[str]:
    """Logical ids of the state machines whose DefinitionUri is this file."""
    return [
        logical_id
        for logical_id, resource in state_machines(template).items()
        if isinstance(uri := resource.get("Properties", {}).get("DefinitionUri"), str)
        and (ROOT / uri).resolve() == path.resolve()
    ]


def snake_case(pascal: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", pascal).lower()


asl_files = pytest.mark.parametrize("path", ASL_FILES, ids=[path.name for path in ASL_FILES])


def test_state_machine_files_exist() -> None:
    # GIVEN the statemachines folder
    # WHEN its ASL files are listed
    # THEN there is at least one, so the parametrised contract below is not vacuous
    assert ASL_FILES, f"no statemachines/*.asl.json under {ROOT}"


# --- 1. JSON, JSONata, top-level fields ---------------------------------------------------------------------------


@asl_files
def test_parses_as_json_and_declares_jsonata_with_comment_and_timeout(path: Path) -> None:
    # GIVEN an ASL file
    # WHEN it is parsed strictly (duplicate keys rejected)
    definition = load_definition(path)
    # THEN the whole machine is JSONata, says what it does, and cannot run forever
    assert definition.get("QueryLanguage") == "JSONata", f"{path.name}: top-level QueryLanguage is not JSONata"
    assert isinstance(definition.get("Comment"), str) and definition["Comment"].strip(), (
        f"{path.name}: no top-level Comment"
    )
    timeout = definition.get("TimeoutSeconds")
    assert isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0, (
        f"{path.name}: top-level TimeoutSeconds is {timeout!r}"
    )


# --- 2. No JSONPath -----------------------------------------------------------------------------------------------


@asl_files
def test_uses_no_jsonpath_only_fields_anywhere(path: Path) -> None:
    # GIVEN an ASL file
    definition = load_definition(path)
    # WHEN every state, nested state, Catch, Retry and Choice rule is scanned, and every key in the document
    found = [
        f"{where}.{key}"
        for where, entry in structural_objects(definition)
        for key in entry
        if key in JSONPATH_FIELDS or key.endswith("Path") or (".Choices[" in where and key in JSONPATH_CHOICE_FIELDS)
    ]
    found += [f"{where}.{key}" if where else key for where, key in all_keys(definition) if key.endswith(".$")]
    found += [
        f"{where}.QueryLanguage"
        for where, entry in structural_objects(definition)
        if entry.get("QueryLanguage", "JSONata") != "JSONata"
    ]
    # THEN none is a JSONPath field, a `.$` key or a switch back to JSONPath
    assert not found, f"{path.name}: JSONPath-only fields: {found}"


# --- 3. statelint -------------------------------------------------------------------------------------------------


@asl_files
def test_passes_statelint(path: Path) -> None:
    # GIVEN an ASL file and the venv's statelint
    assert STATELINT.exists(), f"statelint is not installed next to {sys.executable}"
    # WHEN statelint checks it
    process, problems = run_statelint(path)
    real = [problem for problem in problems if not is_known_false_positive(problem)]
    # THEN it reports nothing but the documented false positives, and did not crash
    output = f"exit {process.returncode}\nstdout:\n{process.stdout}\nstderr:\n{process.stderr}"
    assert process.returncode in (0, 1), f"statelint crashed on {path.name}:\n{output}"
    if process.returncode == 1:
        assert problems, f"statelint failed on {path.name} without listing problems:\n{output}"
    assert not real, f"statelint on {path.name}:\n" + "\n".join(real) + f"\n\n{output}"


def test_statelint_filter_drops_only_the_documented_false_positives(tmp_path: Path) -> None:
    # GIVEN a JSONata machine using every filtered construct, plus two real problems: a JSONPath field and an
    # integer BackoffRate below 1
    probe = {
        "QueryLanguage": "JSONata",
        "StartAt": "Wait For Token",
        "States": {
            "Wait For Token": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Arguments": {"FunctionName": "${ProbeFunctionArn}", "Payload": "{% $states.context.Task.Token %}"},
                "TimeoutSeconds": "{% 30 %}",
                "HeartbeatSeconds": "{% 10 %}",
                "Retry": [
                    {"ErrorEquals": ["Lambda.ServiceException"], "BackoffRate": 0},
                    {"ErrorEquals": ["States.ALL"], "BackoffRate": 2},
                ],
                "Next": "For Each Item",
            },
            "For Each Item": {
                "Type": "Map",
                "Items": "{% $states.input.items %}",
                "MaxConcurrency": "{% 2 %}",
                "ToleratedFailureCount": "{% 1 %}",
                "ToleratedFailurePercentage": "{% 10 %}",
                "ItemProcessor": {"StartAt": "Keep", "States": {"Keep": {"Type": "Pass", "End": True}}},
                "Next": "Wait A Second",
            },
            "Wait A Second": {"Type": "Wait", "Seconds": "{% 1 %}", "Next": "Wait Until Now"},
            "Wait Until Now": {"Type": "Wait", "Timestamp": "{% $now() %}", "Next": "Use Parameters"},
            "Use Parameters": {"Type": "Pass", "Parameters": {"a": 1}, "End": True},
        },
    }
    path = tmp_path / "probe.asl.json"
    path.write_text(json.dumps(probe), encoding="utf-8")
    # WHEN statelint runs on it and the known false positives are dropped
    _, problems = run_statelint(path)
    real = [problem for problem in problems if not is_known_false_positive(problem)]
    # THEN all eight false positives were reported and dropped, and exactly the two real problems remain
    assert len(problems) - len(real) == 8, problems
    assert len(real) == 2, real
    assert any("Parameters" in problem for problem in real), real
    assert any("BackoffRate is 0" in problem for problem in real), real


# --- 4. Substitutions and machine <-> file ------------------------------------------------------------------------


@asl_files
def test_placeholders_and_definition_substitutions_match_both_ways(path: Path, template: Template) -> None:
    # GIVEN an ASL file and the state machine resource that deploys it
    machines = machines_for(template, path)
    assert len(machines) == 1, f"{path.name} is the DefinitionUri of {machines or 'no state machine'}"
    properties = template.resources[machines[0]]["Properties"]
    substitutions = set(properties.get("DefinitionSubstitutions") or {})
    # WHEN the ${...} placeholders of the file are collected
    placeholders = set(PLACEHOLDER.findall(path.read_text(encoding="utf-8")))
    # THEN each one is substituted, and each substitution is used
    assert not placeholders - substitutions, (
        f"{path.name}: placeholders without a DefinitionSubstitutions entry on {machines[0]}: "
        f"{sorted(placeholders - substitutions)}"
    )
    assert not substitutions - placeholders, (
        f"{machines[0]}: DefinitionSubstitutions unused in {path.name}: {sorted(substitutions - placeholders)}"
    )


def test_every_state_machine_deploys_exactly_one_asl_file(template: Template) -> None:
    # GIVEN every AWS::Serverless::StateMachine in the template
    machines = state_machines(template)
    assert machines, "template.yaml declares no AWS::Serverless::StateMachine"
    # WHEN each one's definition source is read
    problems = []
    for logical_id, resource in machines.items():
        properties = resource.get("Properties", {})
        uri = properties.get("DefinitionUri")
        expected = f"statemachines/{snake_case(logical_id.removesuffix('StateMachine'))}.asl.json"
        if "Definition" in properties:
            problems.append(f"{logical_id}: inline Definition")
        if not isinstance(uri, str) or (ROOT / uri).resolve() not in {p.resolve() for p in ASL_FILES}:
            problems.append(f"{logical_id}: DefinitionUri {uri!r} is not a statemachines/*.asl.json file")
        elif uri != expected:
            problems.append(f"{logical_id}: DefinitionUri {uri!r}, expected {expected!r}")
    # THEN each names one existing ASL file, named after the machine, and no file is shared (checked per file above)
    assert not problems, problems


# --- 5. Tasks: Lambda retry set, execution id, timeouts -----------------------------------------------------------


def _retries_throttling_longer(entry: dict[str, Any]) -> bool:
    """Jittered, and waits (at most) over a minute in all: a storm past reserved concurrency takes that to drain."""
    interval, rate, cap = entry.get("IntervalSeconds", 1), entry.get("BackoffRate", 2.0), entry.get("MaxDelaySeconds")
    waits = [interval * rate**attempt for attempt in range(entry.get("MaxAttempts", 3))]
    return entry.get("JitterStrategy") == "FULL" and sum(min(w, cap or w) for w in waits) >= 60


@asl_files
def test_lambda_tasks_retry_service_errors_and_send_the_execution_id(path: Path) -> None:
    # GIVEN the lambda:invoke tasks of an ASL file, nested ones included
    tasks = [
        (where, state)
        for where, _, state in all_states(load_definition(path))
        if state["Type"] == "Task" and state.get("Resource") == LAMBDA_INVOKE
    ]
    # WHEN their Retry entries and Payloads are inspected
    problems = []
    for where, state in tasks:
        retry = state.get("Retry", [])
        # A function with reserved concurrency is throttled by design in a storm: it may retry throttling apart,
        # first and for longer, with jitter (a retrier matched first is the only one used for that error).
        throttling = [entry for entry in retry[:1] if entry.get("ErrorEquals") == [THROTTLED]]
        if throttling and not _retries_throttling_longer(throttling[0]):
            problems.append(f"{where}: throttling retried apart but not longer than the standard set, with jitter")
        wanted = LAMBDA_RETRY_ERRORS - {THROTTLED} if throttling else LAMBDA_RETRY_ERRORS
        standard = [
            entry
            for entry in retry
            if set(entry.get("ErrorEquals", [])) >= wanted
            and isinstance(entry.get("MaxAttempts"), int)
            and 1 <= entry["MaxAttempts"] <= 5
            and entry.get("BackoffRate") == 2
        ]
        if not standard:
            problems.append(f"{where}: no Retry on {sorted(wanted)} with MaxAttempts 1-5, BackoffRate 2")
        arguments = state.get("Arguments")
        payload = arguments.get("Payload") if isinstance(arguments, dict) else None
        execution_id = payload.get("executionId") if isinstance(payload, dict) else None
        if not isinstance(execution_id, str) or not EXECUTION_ID.match(execution_id):
            problems.append(f"{where}: Payload.executionId is {execution_id!r}, not $states.context.Execution.Id")
    # THEN each has the standard retry set and passes the execution id on
    assert not problems, problems


@asl_files
def test_every_task_has_a_timeout(path: Path) -> None:
    # GIVEN every Task of an ASL file, nested ones included
    tasks = [(where, state) for where, _, state in all_states(load_definition(path)) if state["Type"] == "Task"]
    # WHEN their timeouts are read
    missing = [where for where, state in tasks if "TimeoutSeconds" not in state]
    missing_heartbeat = [
        where
        for where, state in tasks
        if str(state.get("Resource", "")).endswith(".waitForTaskToken") and "HeartbeatSeconds" not in state
    ]
    # THEN each has TimeoutSeconds, and a task waiting for a token also HeartbeatSeconds
    assert not missing, f"Tasks without TimeoutSeconds: {missing}"
    assert not missing_heartbeat, f".waitForTaskToken tasks without HeartbeatSeconds: {missing_heartbeat}"


# --- 6. State names -----------------------------------------------------------------------------------------------


@asl_files
def test_state_names_are_title_case_and_choices_are_questions(path: Path) -> None:
    # GIVEN every state name of an ASL file, nested ones included
    states = [(where, name, state) for where, name, state in all_states(load_definition(path))]
    # WHEN each is checked against the naming rule
    problems = []
    for where, name, state in states:
        if not STATE_NAME.match(name):
            problems.append(f"{where}: not Title Case words separated by single spaces")
        if len(name) > 40:
            problems.append(f"{where}: {len(name)} characters (at most 40)")
        if state["Type"] == "Choice" and not name.endswith("?"):
            problems.append(f"{where}: a Choice state is named as a question")
        if state["Type"] != "Choice" and name.endswith("?"):
            problems.append(f"{where}: only Choice states are questions")
    # THEN every name follows it
    assert not problems, problems


# --- 7. Flow ------------------------------------------------------------------------------------------------------


@asl_files
def test_every_transition_names_an_existing_state(path: Path) -> None:
    # GIVEN each flow of an ASL file (the machine, each Map processor, each Parallel branch)
    graphs = list(state_graphs(load_definition(path)))
    # WHEN StartAt, Next, Default, Choice and Catch targets are resolved within their own flow
    dangling = [
        f"{where}.StartAt -> {graph.get('StartAt')!r}"
        for where, graph in graphs
        if graph.get("StartAt") not in graph["States"]
    ]
    dangling += [
        f"{where}.{name} -> {target!r}"
        for where, graph in graphs
        for name, state in graph["States"].items()
        for target in transitions(state)
        if target not in graph["States"]
    ]
    # THEN each names a state of that flow
    assert not dangling, f"transitions to missing states: {dangling}"


@asl_files
def test_every_state_is_reachable_from_start_at(path: Path) -> None:
    # GIVEN each flow of an ASL file
    graphs = list(state_graphs(load_definition(path)))
    # WHEN the states reachable from its StartAt are collected
    unreachable = [
        f"{where}.{name}"
        for where, graph in graphs
        for name in sorted(set(graph["States"]) - reachable(graph["States"], graph["StartAt"]))
    ]
    # THEN no state is dead
    assert not unreachable, f"unreachable states: {unreachable}"


@asl_files
def test_every_flow_has_a_terminal_state(path: Path) -> None:
    # GIVEN each flow of an ASL file
    graphs = list(state_graphs(load_definition(path)))
    # WHEN its terminal states (End, Succeed, Fail) are collected
    without_end = [
        where
        for where, graph in graphs
        if not any(state.get("End") is True or state["Type"] in TERMINAL_TYPES for state in graph["States"].values())
    ]
    # THEN each flow can finish
    assert not without_end, f"flows without a terminal state: {without_end}"


# --- 8. The entry machine's failure path --------------------------------------------------------------------------


def test_entry_machine_catches_every_error_outside_its_failure_path() -> None:
    # GIVEN the outermost flow of the entry machine and its failure path
    states = load_definition(ENTRY_MACHINE)["States"]
    assert FAILURE_PATH_START in states, f"{ENTRY_MACHINE.name} has no {FAILURE_PATH_START!r} state"
    failure_path = reachable(states, FAILURE_PATH_START)
    # WHEN the states that can fail (Task, Map, Parallel) outside the failure path are checked for a catch-all
    uncaught = [
        name
        for name, state in states.items()
        if state["Type"] in CATCHING_TYPES
        and name not in failure_path
        and not any("States.ALL" in catcher.get("ErrorEquals", []) for catcher in state.get("Catch", []))
    ]
    # THEN each catches States.ALL, so no error ends the execution unrecorded and untold
    assert not uncaught, f"{ENTRY_MACHINE.name}: states without a States.ALL Catch outside the failure path: {uncaught}"


def test_entry_machine_failure_path_notifies_responders_then_fails() -> None:
    # GIVEN the entry machine
    states = load_definition(ENTRY_MACHINE)["States"]
    # WHEN the failure path's first state is followed
    notify = states.get(FAILURE_PATH_START, {})
    after = states.get(notify.get("Next", ""), {})
    # THEN it is a Task that leads straight to a Fail state
    assert notify.get("Type") == "Task", f"{FAILURE_PATH_START!r} is not a Task"
    assert after.get("Type") == "Fail", f"{FAILURE_PATH_START!r} leads to {notify.get('Next')!r}, not a Fail state"
