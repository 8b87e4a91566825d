"""What the functions emit as CloudWatch metrics (EMF lines) is shown in the report, never printed on either stream."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from firebreak_local import runtime
from firebreak_local.cli import main
from tests.support import ROOT

MEMBER_C2 = "events/eventbridge/guardduty_member_c2_outbound.json"
BRUTE_FORCE = "events/eventbridge/guardduty_ssh_brute_force.json"
REDELIVERED = "events/eventbridge/guardduty_ssh_brute_force_redelivered.json"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {metric["name"]: metric for metric in result["metrics"]}


def test_json_run_keeps_metrics_off_both_streams_and_in_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a member account's C&C finding: the instance is contained and the C&C address blocked
    # WHEN it runs with --json
    status = main(["run", "--json", MEMBER_C2])
    captured = capsys.readouterr()

    # THEN stdout is the report alone and stderr holds no metric document
    document = json.loads(captured.out)
    assert status == 0
    assert '"_aws"' not in captured.err and "CloudWatchMetrics" not in captured.err
    assert "No application metrics" not in captured.err
    # AND the metrics the functions emitted are in the event's result, with their units and dimensions
    (result,) = document["results"]
    metrics = by_name(result)
    assert metrics["AddressesBlocked"]["value"] == 1
    assert metrics["AddressesBlocked"]["unit"] == "Count"
    assert metrics["BlocklistUsagePercent"]["unit"] == "Percent"
    assert 0 < metrics["BlocklistUsagePercent"]["value"] < 1
    contained = metrics["TimeToContain"]
    assert (contained["namespace"], contained["unit"]) == ("Firebreak", "Seconds")
    assert contained["dimensions"]["playbook"] == "contain-instance"
    # The sample finding was first seen months ago; the stack took seconds
    assert 0 <= contained["value"] < 60


def test_readable_run_shows_the_metrics_in_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the brute force runs without --json
    status = main(["run", BRUTE_FORCE])
    captured = capsys.readouterr()

    # THEN its timeline has a metrics line, and no metric document is printed anywhere
    assert status == 0
    (line,) = [line for line in captured.out.splitlines() if line.strip().startswith("metrics")]
    assert "AddressesBlocked 1" in line and "BlocklistUsagePercent" in line
    assert "TimeToContain" in line and "s (playbook block-ip)" in line
    assert '"_aws"' not in captured.out + captured.err


def test_each_result_has_the_metrics_of_its_own_execution(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a finding, then its redelivery, which opens no incident and blocks nothing
    status = main(["run", "--json", BRUTE_FORCE, REDELIVERED])
    first, second = json.loads(capsys.readouterr().out)["results"]

    # THEN the block's metrics belong to the first result only
    assert status == 0
    assert (first["status"], second["status"]) == ("CONTAINED", "DUPLICATE")
    assert by_name(first)["AddressesBlocked"]["value"] == 1
    assert "AddressesBlocked" not in by_name(second) and "TimeToContain" not in by_name(second)


# --- the runtime that reads what handlers print -----------------------------------------------------------------


def dispatcher_running(handler: runtime.Handler) -> runtime.Dispatcher:
    dispatcher = runtime.Dispatcher()
    dispatcher.register(runtime.FunctionSpec("fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", "m", "h"))
    dispatcher.override("fn", handler)
    return dispatcher


def test_emf_lines_a_handler_prints_become_metrics_and_other_lines_pass(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a handler that prints a log line, an EMF document in two writes, a line that only looks like one, and a
    # last line without a newline
    document = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {"Namespace": "Test", "Dimensions": [["stage"]], "Metrics": [{"Name": "Things", "Unit": "Count"}]}
            ],
        },
        "stage": "one",
        "Things": [2, 3],
    }

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        print("a log line")
        text = json.dumps(document)
        print(text[:10], end="")
        print(text[10:])
        print('{"_aws": "not a directive"}')
        print("no newline", end="")
        return {}

    dispatcher = dispatcher_running(handler)

    # WHEN it is invoked
    dispatcher.invoke("fn", "{}", {})

    # THEN the log lines are printed as they were, and the document is two metric values, not printed
    assert capsys.readouterr().out == 'a log line\n{"_aws": "not a directive"}\nno newline'
    assert [(m.name, m.value, m.unit, m.namespace, dict(m.dimensions)) for m in dispatcher.metrics.take()] == [
        ("Things", 2, "Count", "Test", {"stage": "one"}),
        ("Things", 3, "Count", "Test", {"stage": "one"}),
    ]
    # AND what is printed outside any handler is left alone
    print('{"_aws": {"CloudWatchMetrics": []}}')
    assert capsys.readouterr().out == '{"_aws": {"CloudWatchMetrics": []}}\n'


def test_powertools_metrics_are_captured_and_an_empty_flush_warns_nobody(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a Powertools handler that emits a metric, and one that fails before it emits any
    metrics = Metrics(namespace="Test", service="test")

    @metrics.log_metrics
    def emits(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="Done", unit=MetricUnit.Count, value=1)
        return {}

    @metrics.log_metrics
    def fails(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ValueError("before any metric")

    dispatcher = dispatcher_running(emits)

    # WHEN both run as the engine runs them
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.quiet_empty_metrics_warnings()
        dispatcher.invoke("fn", "{}", {})
        dispatcher.override("fn", fails)
        headers: dict[str, str] = {}
        dispatcher.invoke("fn", "{}", headers)

    # THEN the metric is kept, nothing is printed, and Powertools' "No application metrics" warning is not shown
    assert [(m.name, m.value, dict(m.dimensions)) for m in dispatcher.metrics.take()] == [
        ("Done", 1, {"service": "test"})
    ]
    assert headers["x-amz-function-error"] == "Unhandled"
    assert capsys.readouterr().out == ""
    assert not [w for w in caught if runtime.EMPTY_METRICS_WARNING in str(w.message)]
    # (which Powertools does give, unfiltered)
    with warnings.catch_warnings(record=True) as unfiltered:
        warnings.simplefilter("always")
        dispatcher.invoke("fn", "{}", {})
    assert [w for w in unfiltered if runtime.EMPTY_METRICS_WARNING in str(w.message)]
