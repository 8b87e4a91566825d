"""An engine starts from a copy of what the first engine of the process provisioned, and shares nothing else."""

from __future__ import annotations

import threading

import boto3
from moto import mock_aws

from firebreak_local import engine as engine_module
from firebreak_local.engine import Engine
from firebreak_local.moto_data import MotoData
from tests.support import TEMPLATE, load_event

BRUTE_FORCE = load_event("eventbridge/guardduty_ssh_brute_force")


def _secret_arn(running: Engine) -> str:
    return running.resources["ApprovalSigningSecret"].ref


def _run(running: Engine) -> str:
    rule = running.matching_rule(BRUTE_FORCE)
    assert rule is not None
    return running.start(rule, BRUTE_FORCE).status


def test_a_later_engine_starts_from_the_provisioned_copy_with_none_of_an_earlier_runs_data() -> None:
    # GIVEN an engine that provisioned the template and contained a brute force
    with Engine(TEMPLATE) as first:
        assert _run(first) == "SUCCEEDED"
        assert first.blocked_ips() and first.incident_count() == 1
        first_secret = _secret_arn(first)

    # WHEN another engine with the same template and parameters starts
    with Engine(TEMPLATE) as second:
        # THEN it holds the same resources (the copy, not a second provisioning: its secret has the first one's
        # random ARN) and none of what the first one's run wrote
        assert _secret_arn(second) == first_secret
        assert second.blocked_ips() == []
        assert second.incident_count() == 0
        assert second.notifications() == []
        # AND its functions, streams and rules work on its own copy
        assert _run(second) == "SUCCEEDED"
        assert second.blocked_ips() == ["45.155.205.233/32"]
        assert len(second.notifications()) == 1


def test_other_parameters_are_provisioned_on_their_own() -> None:
    # GIVEN an engine of the default parameters
    with Engine(TEMPLATE) as default:
        default_secret = _secret_arn(default)
        assert default.environment["RESPONSE_MODE"] == "enforce"

    # WHEN one with other parameters starts
    with Engine(TEMPLATE, overrides={"ResponseMode": "dry-run"}) as trial:
        # THEN it is provisioned for them, not handed the other copy
        assert trial.environment["RESPONSE_MODE"] == "dry-run"
        assert _secret_arn(trial) != default_secret


def test_the_copy_gives_every_lock_and_condition_anew() -> None:
    # GIVEN moto's data with a queue (SQS guards its messages with a condition) taken as a copy
    with Engine(TEMPLATE) as running:
        data = MotoData.take()
        queue = _first_queue()
        original = queue._messages_lock
        # WHEN it is restored into an empty moto
        engine_module.runtime.stop_discarding_data(running._mock)
        running._mock.start()
        data.restore()
        restored = _first_queue()._messages_lock
        # THEN the restored queue waits on a condition of its own, usable at once
        assert isinstance(restored, threading.Condition) and restored is not original
        with restored:
            restored.notify_all()


def _first_queue() -> object:
    from moto.sqs.models import sqs_backends

    return next(iter(sqs_backends["123456789012"]["us-east-1"].queues.values()))


def test_an_engine_inside_moto_that_holds_data_provisions_beside_it() -> None:
    # GIVEN a provisioned copy exists, and moto already holds a test's own bucket
    with Engine(TEMPLATE):
        pass
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="a-test-of-its-own")

        # WHEN an engine starts inside that moto
        with Engine(TEMPLATE) as running:
            # THEN the test's data is still there beside the stack's own resources
            names = {bucket["Name"] for bucket in running.client("s3").list_buckets()["Buckets"]}
            assert "a-test-of-its-own" in names
            assert running.resources["IncidentTable"].ref in running.client("dynamodb").list_tables()["TableNames"]
