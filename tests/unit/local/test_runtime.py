"""The engine's moto patches that move work to where it is needed: definitions checked at their first start, KMS key
pairs drawn at their first use."""

from __future__ import annotations

import base64
import datetime
import gc
import itertools
import json
import string
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.awsrequest
import botocore.config
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.sns import models as moto_sns_models
from werkzeug.routing import Map, Rule
from werkzeug.routing import rules as werkzeug_rules

from firebreak_local import runtime
from firebreak_local.engine import Engine
from tests.support import TEMPLATE, load_event

ROLE = "arn:aws:iam::123456789012:role/local"


@pytest.fixture
def patched(aws: None) -> Iterator[None]:
    """moto with its Step Functions interpreter, patched as the engine patches it."""
    runtime.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def sfn(patched: None) -> Any:
    return boto3.client("stepfunctions", region_name="us-east-1")


def test_a_definition_moto_cannot_parse_is_refused_at_every_start_not_left_running(sfn: Any) -> None:
    # GIVEN a state machine whose definition is JSON but not ASL (created: the check waits for a start)
    broken = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Nope"}}})
    arn = sfn.create_state_machine(name="broken", definition=broken, roleArn=ROLE)["stateMachineArn"]

    # WHEN / THEN every start is refused with the parser's error, as CreateStateMachine refused it before
    for _ in range(2):
        with pytest.raises(ClientError, match="ASLParserException"):
            sfn.start_execution(stateMachineArn=arn, input="{}")
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_a_valid_definition_starts_and_runs(sfn: Any) -> None:
    # GIVEN a state machine with one Pass state
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name="passes", definition=definition, roleArn=ROLE)["stateMachineArn"]

    # WHEN it is started
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]

    # THEN it is accepted
    assert sfn.describe_execution(executionArn=execution)["stateMachineArn"] == arn


def test_executions_of_one_definition_share_its_program_and_keep_their_own_data(sfn: Any) -> None:
    # GIVEN a state machine whose output depends on its input
    definition = json.dumps(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "Double",
            "States": {"Double": {"Type": "Pass", "Output": "{% $states.input.n * 2 %}", "End": True}},
        }
    )
    arn = sfn.create_state_machine(name="doubles", definition=definition, roleArn=ROLE)["stateMachineArn"]

    # WHEN it runs twice, with different inputs
    executions = [
        sfn.start_execution(stateMachineArn=arn, name=f"run-{n}", input=json.dumps({"n": n}))["executionArn"]
        for n in (2, 5)
    ]
    outputs = [_output_of(sfn, execution) for execution in executions]

    # THEN each gets its own answer, from one program built once for the definition's text
    assert outputs == [4, 10]
    parser = runtime.moto_asl_parser.AmazonStateLanguageParser
    assert parser.parse(definition)[0] is parser.parse(definition)[0]


def test_a_sync_parent_wakes_at_its_childs_end_instead_of_polling_through_its_run(sfn: Any) -> None:
    # GIVEN a child that waits 2 s and a parent that runs it with startExecution.sync:2, on the simulated clock
    child_definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 2, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
    child = sfn.create_state_machine(name="child", definition=json.dumps(child_definition), roleArn=ROLE)
    parent_definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Run Child",
        "States": {
            "Run Child": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Arguments": {"StateMachineArn": child["stateMachineArn"], "Input": {}},
                "Output": "{% $states.result.Status %}",
                "End": True,
            }
        },
    }
    parent = sfn.create_state_machine(name="parent", definition=json.dumps(parent_definition), roleArn=ROLE)
    _, calls = runtime.install()
    calls.take()
    clock = runtime.SimulatedClock()
    clock.STALL_SECONDS = 60.0

    # WHEN the parent runs
    with runtime.simulated_time(clock), calls.quiet():  # the test's own polling is not counted
        execution = sfn.start_execution(stateMachineArn=parent["stateMachineArn"], name="p")["executionArn"]
        status = _status_of(sfn, execution)

    # THEN it ended with its child, having asked for the child's status at the start, at each 1 s bound of its wait
    # and at the end (a bound at the child's very end may ask once more), not every 5 ms as the interval says
    assert status == "SUCCEEDED"
    assert calls.take()["sfn.DescribeExecution"] <= 4
    assert clock.ended[execution] == max(clock.ended.values())


def _output_of(sfn: Any, execution: str) -> Any:
    for _ in range(500):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return json.loads(described.get("output") or "null")
        time.sleep(0.01)
    raise AssertionError(f"{execution} still running")


def test_an_asymmetric_key_signs_and_verifies_with_the_pair_drawn_at_first_use(patched: None) -> None:
    # GIVEN an RSA signing key and a symmetric key
    kms = boto3.client("kms", region_name="us-east-1")
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]

    # WHEN a message is signed, verified and the public key read
    signature = kms.sign(KeyId=signing, Message=b"incident", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    verified = kms.verify(
        KeyId=signing, Message=b"incident", Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256"
    )
    public_key = kms.get_public_key(KeyId=signing)["PublicKey"]

    # THEN it works as on moto's own keys, and the symmetric key still encrypts and decrypts
    assert verified["SignatureValid"]
    assert len(public_key) > 256
    blob = kms.encrypt(KeyId=symmetric, Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_messages_to_two_subscriptions_carry_signatures_that_verify_with_the_regions_one_certificate(
    patched: None,
) -> None:
    # GIVEN a topic with two queues subscribed
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="responders")["TopicArn"]
    queues = [sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("first", "second")]
    for url in queues:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    # WHEN two messages are published
    sns.publish(TopicArn=topic, Message="contained")
    sns.publish(TopicArn=topic, Message="released", Subject="Firebreak")

    # THEN each delivery's signature verifies with the certificate it names, and all four name the Region's one
    # certificate, as SNS's do (moto keeps certificates in its default account: a certificate URL is fetched without)
    keys = moto_sns_models.sns_backends["123456789012"]["us-east-1"]._message_public_keys
    urls, texts = set(), []
    for url in queues:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]:
            body = json.loads(message["Body"])
            certificate = x509.load_pem_x509_certificate(keys[body["SigningCertURL"].rsplit("/", 1)[-1]])
            signed = "".join(
                f"{name}\n{body[name]}\n" for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
            )
            public_key = certificate.public_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(base64.b64decode(body["Signature"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256())
            urls.add(body["SigningCertURL"])
            texts.append((body["Message"], body.get("Subject"), body["SignatureVersion"], body["Type"]))
    assert len(urls) == 1 and next(iter(urls)).startswith("https://sns.us-east-1.amazonaws.com/SimpleNotification")
    assert sorted(texts) == sorted(
        2 * [("contained", None, "2", "Notification"), ("released", "Firebreak", "2", "Notification")]
    )


def test_a_url_rule_builds_its_urls_as_before_and_compiles_its_builders_only_then(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Map as moto routes the Lambda API with, made while counting werkzeug's builder compilations
    compiled: list[str] = []
    get_func_code = werkzeug_rules.Rule._get_func_code

    def counted(code: Any, name: str) -> Any:
        compiled.append(name)
        return get_func_code(code, name)

    monkeypatch.setattr(werkzeug_rules.Rule, "_get_func_code", staticmethod(counted))
    routes = Map([Rule("/2015-03-31/functions/<name>/invocations", endpoint="Invoke")])
    assert compiled == []

    # WHEN a URL is built, with a value the rule knows and one it does not
    urls = routes.bind("lambda.us-east-1.amazonaws.com")

    # THEN it is werkzeug's URL, query string included, from the one builder (of two) that building used
    assert urls.build("Invoke", {"name": "firebreak-block"}) == "/2015-03-31/functions/firebreak-block/invocations"
    assert urls.build("Invoke", {"name": "f", "Qualifier": "1"}) == "/2015-03-31/functions/f/invocations?Qualifier=1"
    assert len(compiled) == 1


def test_an_engine_leaves_nothing_behind_for_the_next_mock() -> None:
    # GIVEN an engine that provisioned the stack, seeded an instance and exited, inside no other mock (not `aws`)
    with Engine(TEMPLATE) as engine:
        bucket = next(
            resource.ref
            for logical_id, resource in engine.resources.items()
            if engine._stack.resources[logical_id]["Type"] == "AWS::S3::Bucket"
        )
        engine.world.seed(load_event("eventbridge/guardduty_crypto_mining"))
        tables = engine.client("dynamodb").list_tables()["TableNames"]

    # WHEN a new mock starts
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")

        # THEN it starts empty, and the bucket's name is free again (S3's names live outside its backend)
        assert tables
        assert s3.list_buckets()["Buckets"] == []
        assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == []
        assert boto3.client("ec2", region_name="us-east-1").describe_instances()["Reservations"] == []
        s3.create_bucket(Bucket=bucket)


def _status_of(sfn: Any, execution: str) -> str:
    for _ in range(500):
        status: str = sfn.describe_execution(executionArn=execution)["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.01)
    raise AssertionError(f"{execution} still running")


def test_an_event_rules_targets_get_the_whole_event_with_each_input_path_parsed_once(patched: None) -> None:
    # GIVEN a rule sending every event of a source to a queue, without an input transformer
    sqs, events = boto3.client("sqs", region_name="us-east-1"), boto3.client("events", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventPattern=json.dumps({"source": ["firebreak"]}))
    events.put_targets(Rule="all", Targets=[{"Id": "inbox", "Arn": arn}])
    from jsonpath_ng import ext as jsonpath_ext

    # WHEN two events are put
    for incident in ("fb-1", "fb-2"):
        entry = {"Source": "firebreak", "DetailType": "Incident", "Detail": json.dumps({"incident_id": incident})}
        events.put_events(Entries=[entry])

    # THEN the queue holds both, whole, and moto's default input paths were each parsed once, not per event
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert sorted(body["detail"]["incident_id"] for body in bodies) == ["fb-1", "fb-2"]
    assert all(body["source"] == "firebreak" and body["detail-type"] == "Incident" for body in bodies)
    cache = jsonpath_ext.parse.cache_info()  # type: ignore[attr-defined]
    assert cache.hits >= 8 and cache.currsize <= 16


def test_the_young_generation_is_collected_less_often_and_a_dropped_cycle_still_goes(patched: None) -> None:
    # GIVEN the engine's patches, and a reference cycle nothing else refers to
    class Node:
        me: Node

    node = Node()
    node.me = node
    dropped = weakref.ref(node)
    del node

    # WHEN a collection interval's worth of objects is made (and kept)
    kept = [[] for _ in range(2 * runtime.YOUNG_COLLECTION_ALLOCATIONS)]

    # THEN the youngest generation is collected every YOUNG_COLLECTION_ALLOCATIONS, and a collection took the cycle
    assert gc.get_threshold()[0] == runtime.YOUNG_COLLECTION_ALLOCATIONS
    assert dropped() is None
    assert len(kept) == 2 * runtime.YOUNG_COLLECTION_ALLOCATIONS


def test_sqs_tells_visible_delayed_and_taken_messages_apart_on_the_clock_moto_reads(patched: None) -> None:
    # GIVEN a queue holding a message, a delayed one, and one received and not yet deleted
    from moto.core import utils as moto_utils
    from moto.sqs import models as moto_sqs_models

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="taken")
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=60)
    taken = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    sqs.send_message(QueueUrl=queue, MessageBody="waiting")

    # WHEN the queue's counts are read
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]

    # THEN each message counts where SQS counts it, on the instant moto's own clock gives
    assert [message["Body"] for message in taken] == ["taken"]
    assert counts["ApproximateNumberOfMessages"] == "1"
    assert counts["ApproximateNumberOfMessagesDelayed"] == "1"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert abs(moto_sqs_models.unix_time_millis() - moto_utils.unix_time_millis()) < 50
    assert abs(moto_sqs_models.unix_time() - moto_utils.unix_time()) < 0.05


def test_a_state_machines_paths_are_parsed_once_and_still_pick_and_place_its_data(sfn: Any) -> None:
    # GIVEN a JSONPath machine that picks part of its input, and places results beside it
    import jsonpath_ng
    from jsonpath_ng import ext as jsonpath_ext

    pick = {"Type": "Pass", "InputPath": "$.detail", "Result": {"seen": True}, "ResultPath": "$.check", "Next": "Place"}
    place = {"Type": "Pass", "Parameters": {"who.$": "$.detail.name"}, "ResultPath": "$.copy", "End": True}
    definition = json.dumps({"StartAt": "Pick", "States": {"Pick": pick, "Place": place}})
    arn = sfn.create_state_machine(name="paths", definition=definition, roleArn=ROLE)["stateMachineArn"]

    def parsed() -> tuple[int, int]:
        caches = [jsonpath_ng.parse.cache_info(), jsonpath_ext.parse.cache_info()]  # type: ignore[attr-defined]
        return sum(cache.hits for cache in caches), sum(cache.misses for cache in caches)

    # WHEN it runs twice
    outputs, counts = [], []
    for name in ("a", "b"):
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps({"detail": {"name": name}}))
        assert _status_of(sfn, execution["executionArn"]) == "SUCCEEDED"
        outputs.append(json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"]))
        counts.append(parsed())

    # THEN each output is what Step Functions makes (ResultPath writes into the state's input, not InputPath's pick),
    # and the second run parsed none of its paths again
    expected = [{"detail": {"name": name}, "check": {"seen": True}, "copy": {"who": name}} for name in ("a", "b")]
    assert outputs == expected
    (hits_after_first, misses_after_first), (hits_after_second, misses_after_second) = counts
    assert misses_after_second == misses_after_first
    assert hits_after_second - hits_after_first >= 4  # two ResultPaths, an InputPath, a parameter's path


_ESCAPES = st.binary(min_size=1, max_size=4).map(lambda raw: "".join(f"%{byte:02X}" for byte in raw))
_QUERY_TEXT = st.lists(st.one_of(_ESCAPES, st.text(alphabet="%+=&\\aZ09fF é€", max_size=6)), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_QUERY_TEXT)
def test_query_text_unquotes_as_the_library_unquotes_it(text: str) -> None:
    # GIVEN text of escapes (of any bytes, valid UTF-8 or not), stray percent signs, backslashes and non-ASCII letters
    runtime.install()
    from urllib import parse

    own = parse.unquote.original  # type: ignore[attr-defined]

    # WHEN it is unquoted, as a value and as a whole query string, with the engine's unquote
    # THEN it reads as the library's own unquote reads it
    assert parse.unquote(text) == own(text)
    assert parse.unquote(text, errors="surrogateescape") == own(text, errors="surrogateescape")
    with _unpatched(parse, "unquote"):
        expected = parse.parse_qsl(text, keep_blank_values=True)
    assert parse.parse_qsl(text, keep_blank_values=True) == expected


def _one_task_machine(sfn: Any, name: str, resource: str, arguments: dict[str, Any], timeout_seconds: int) -> str:
    """A JSONata machine of one request-response task, its timeout caught as `timed out`."""
    task = {
        "Type": "Task",
        "Resource": resource,
        "Arguments": arguments,
        "TimeoutSeconds": timeout_seconds,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Timed Out"}],
        "Output": {"done": "called"},
        "End": True,
    }
    states = {"Call": task, "Timed Out": {"Type": "Pass", "Output": {"done": "timed out"}, "End": True}}
    definition = json.dumps({"QueryLanguage": "JSONata", "StartAt": "Call", "States": states})
    arn: str = sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"]
    return arn


def _succeeded_output(sfn: Any, machine: str, name: str) -> Any:
    """The output of an execution named (and given an input `id`) `name`, which must succeed."""
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"id": name}))
    assert _status_of(sfn, execution["executionArn"]) == "SUCCEEDED"
    return _output_of(sfn, execution["executionArn"])


def test_a_request_response_task_answers_in_its_states_own_thread(sfn: Any) -> None:
    # GIVEN a machine whose task puts an item, and the threads moto has started for executions and tasks so far
    from moto.stepfunctions.parser.utils import TMP_THREADS

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    _create_table(dynamodb, "records")
    put = {"TableName": "records", "Item": {"id": {"S": "{% $states.input.id %}"}}}
    machine = _one_task_machine(sfn, "put", "arn:aws:states:::dynamodb:putItem", put, timeout_seconds=30)
    before = len(TMP_THREADS)

    # WHEN it runs twice
    outputs = [_succeeded_output(sfn, machine, name) for name in ("a", "b")]

    # THEN both tasks answered and wrote their items, and neither started a thread of its own (moto starts one per
    # task, `_exec_and_notify`, beside each execution's own two)
    assert outputs == [{"done": "called"}, {"done": "called"}]
    assert sorted(item["id"]["S"] for item in dynamodb.scan(TableName="records")["Items"]) == ["a", "b"]
    started = [thread.name for thread in TMP_THREADS[before:]]
    assert len(started) == 4 and not [name for name in started if "_exec_and_notify" in name]


def test_a_request_response_task_that_outlasted_its_timeout_fails_states_timeout_and_what_it_did_stays(
    sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a machine whose task publishes to a topic a queue reads, with a one-second timeout, on a task clock on
    # which each task takes ten seconds
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="responders")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    publish = {"TopicArn": topic, "Message": "{% $states.input.id %}"}
    machine = _one_task_machine(sfn, "publish", "arn:aws:states:::sns:publish", publish, timeout_seconds=1)
    ticks = itertools.count(0, 10)
    monkeypatch.setattr(runtime, "_task_clock", lambda: next(ticks))

    # WHEN it runs
    output = _succeeded_output(sfn, machine, "late")

    # THEN the state failed States.Timeout (its Catch ran), and what it published was delivered, as in AWS
    assert output == {"done": "timed out"}
    delivered = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(message["Body"])["Message"] for message in delivered] == ["late"]


def _sets_of(members: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.sets(members, min_size=1, max_size=3)


def _create_table(dynamodb: Any, name: str) -> None:
    """A table keyed by a string `id`."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


_MAP_KEYS = st.text(min_size=1, max_size=4)
_ATTRIBUTE_VALUES = st.recursive(
    st.one_of(
        st.builds(lambda text: {"S": text}, st.text(max_size=8)),
        st.builds(lambda number: {"N": str(number)}, st.integers(-(10**6), 10**6)),
        st.builds(lambda blob: {"B": blob}, st.binary(max_size=8)),
        st.builds(lambda flag: {"BOOL": flag}, st.booleans()),
        st.just({"NULL": True}),
        st.builds(lambda texts: {"SS": sorted(texts)}, _sets_of(st.text(max_size=4))),
        st.builds(lambda numbers: {"NS": sorted(map(str, numbers))}, _sets_of(st.integers(0, 99))),
        st.builds(lambda blobs: {"BS": sorted(blobs)}, _sets_of(st.binary(min_size=1, max_size=4))),
    ),
    lambda children: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(children, max_size=3)),
        st.builds(lambda entries: {"M": entries}, st.dictionaries(_MAP_KEYS, children, max_size=3)),
    ),
    max_leaves=12,
)


def _normalised(value: dict[str, Any]) -> dict[str, Any]:
    """Sets come back in any order, as from DynamoDB."""
    ((kind, item),) = value.items()
    if kind in {"SS", "NS", "BS"}:
        return {kind: sorted(item)}
    if kind == "L":
        return {kind: [_normalised(entry) for entry in item]}
    if kind == "M":
        return {kind: {name: _normalised(entry) for name, entry in item.items()}}
    return value


@settings(max_examples=60, deadline=None)
@given(attributes=st.dictionaries(st.sampled_from(["a", "b", "c"]), _ATTRIBUTE_VALUES, max_size=3))
def test_every_kind_of_attribute_value_reads_back_as_written_through_every_read(attributes: dict[str, Any]) -> None:
    # GIVEN an item with any attribute values, nested maps and lists, sets and binaries (moto's serializer is patched)
    runtime.install()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(dynamodb, "t")
        item = {"id": {"S": "x"}, **attributes}
        dynamodb.put_item(TableName="t", Item=item)

        # WHEN it is read by GetItem, Scan (whole and projected), BatchGetItem and an update's ReturnValues
        read = [
            dynamodb.get_item(TableName="t", Key={"id": {"S": "x"}})["Item"],
            dynamodb.scan(TableName="t")["Items"][0],
            dynamodb.scan(TableName="t", ProjectionExpression=", ".join(item))["Items"][0],
            dynamodb.batch_get_item(RequestItems={"t": {"Keys": [{"id": {"S": "x"}}]}})["Responses"]["t"][0],
            dynamodb.update_item(
                TableName="t",
                Key={"id": {"S": "x"}},
                UpdateExpression="SET z = :z",
                ExpressionAttributeValues={":z": {"N": "1"}},
                ReturnValues="ALL_OLD",
            )["Attributes"],
        ]

    # THEN every read gives back exactly what was written
    expected = {name: _normalised(value) for name, value in item.items()}
    for got in read:
        assert {name: _normalised(value) for name, value in got.items()} == expected


def test_one_update_expression_with_other_values_updates_each_item_with_its_own(patched: None) -> None:
    # GIVEN a table and one UpdateExpression text (moto's parse of it is kept)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    _create_table(dynamodb, "t")
    expression = "SET #n = :n, seen = if_not_exists(seen, :n) ADD hits :one REMOVE gone"

    # WHEN it updates a new item, then an existing one, then another new one, each with its own values
    for key, number in (("a", "1"), ("a", "2"), ("b", "3")):
        dynamodb.update_item(
            TableName="t",
            Key={"id": {"S": key}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":n": {"N": number}, ":one": {"N": "1"}},
        )

    # THEN each item holds its own values, and a malformed expression is refused every time it is sent
    items = {item["id"]["S"]: item for item in dynamodb.scan(TableName="t")["Items"]}
    assert items["a"] == {"id": {"S": "a"}, "n": {"N": "2"}, "seen": {"N": "1"}, "hits": {"N": "2"}}
    assert items["b"] == {"id": {"S": "b"}, "n": {"N": "3"}, "seen": {"N": "3"}, "hits": {"N": "1"}}
    for _ in range(2):
        with pytest.raises(ClientError, match="ValidationException"):
            dynamodb.update_item(TableName="t", Key={"id": {"S": "a"}}, UpdateExpression="SET = :n")
    # AND every tree of the text is a copy of its own, none shares a node with another
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    first, second = UpdateExpressionParser.make(expression), UpdateExpressionParser.make(expression)  # type: ignore[no-untyped-call]
    assert first is not second and first.children[0] is not second.children[0]
    assert _shape(first) == _shape(second)


def _shape(node: Any) -> Any:
    """An expression tree's node classes and leaf values, child by child."""
    children = getattr(node, "children", None)
    if children is None:
        return node
    return (type(node).__name__, [_shape(child) for child in children])


def test_a_jsonata_depth_bound_still_stops_a_deep_recursion_once_hook_look_ups_are_skipped(patched: None) -> None:
    # GIVEN the engine's JSONata patches (no frame has bound an evaluation hook) and a recursion 100 calls deep
    import jsonata

    deep = "($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100))"
    assert jsonata.Jsonata(deep).evaluate(None) == 100

    # WHEN it is evaluated under a bound of 20, which jsonata enforces through those hooks
    # THEN the bound stops it, as without the patches
    with pytest.raises(jsonata.JException, match="Stack overflow"):
        jsonata.Jsonata(deep, stack=20).evaluate(None)


def _signature_of(request: Any) -> str:
    from botocore.auth import SigV4Auth
    from botocore.credentials import Credentials

    SigV4Auth(Credentials("AKIAEXAMPLEEXAMPLE12", "secret"), "dynamodb", "us-east-1").add_auth(request)
    return str(request.headers["Authorization"]).rsplit("Signature=", 1)[1]


def test_requests_are_signed_for_real_outside_moto_and_keep_their_account_under_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.awsrequest import AWSRequest

    # GIVEN the engine's patches, and a request to sign while no mock runs
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    runtime.install()

    def request() -> Any:
        return AWSRequest(method="POST", url="https://dynamodb.us-east-1.amazonaws.com/", data=b"{}")

    # WHEN it is signed outside moto, and a role in another account is assumed and used under moto
    real = _signature_of(request())
    with mock_aws():
        unchecked = _signature_of(request())
        sts = boto3.client("sts", region_name="us-east-1")
        credentials = sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/member", RoleSessionName="engine")[
            "Credentials"
        ]
        member = boto3.client(
            "sts",
            region_name="us-east-1",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        account = member.get_caller_identity()["Account"]

    # THEN outside moto the signature is SigV4's own, and under moto the session still acts in its account
    assert len(real) == 64 and int(real, 16) and unchecked == "0" * 64
    assert account == "210987654321"


_UPDATES = [
    "SET a = :one, b = if_not_exists(b, :zero) + :one, m = :map",
    "SET l = list_append(if_not_exists(l, :empty), :items), m.#k = :one, m.#i.deep = :zero",
    "ADD s :set, a :one SET b = b - :one",
    "DELETE s :gone REMOVE l[0], m.#i",
    "SET l[0] = :zero, #o = list_append(:items, :items)",
    "SET a = :one, a = :zero",  # overlapping paths: refused
    "ADD a :one ADD b :one",  # two ADD clauses: refused
    "SET id = :one",  # the key: refused
    "SET a = a + :text",  # a type mismatch: refused
    "SET m.#i = :one, m.#i.deep = :zero",  # a path inside another: refused
    "SET #k = :one REMOVE #k",  # one name twice: refused
    "REMOVE a SET b = :one REMOVE l",  # two REMOVE clauses: refused
]
_NAMES = {"#k": "key", "#i": "inner", "#o": "other"}
_VALUES = {
    ":one": {"N": "1"},
    ":zero": {"N": "0"},
    ":text": {"S": "x"},
    ":map": {"M": {"inner": {"M": {}}}},
    ":empty": {"L": []},
    ":items": {"L": [{"S": "i"}, {"N": "2"}]},
    ":set": {"SS": ["p", "q"]},
    ":gone": {"SS": ["p"]},
}


@contextmanager
def _unpatched(owner: Any, name: str) -> Iterator[None]:
    """owner.name as moto or jsonata-python has it (the engine's patch keeps it as `original`), while the block runs."""
    patched = getattr(owner, name)
    setattr(owner, name, patched.original)
    try:
        yield
    finally:
        setattr(owner, name, patched)


def _apply_updates(dynamodb: Any, table: str) -> list[Any]:
    outcomes: list[Any] = []
    for expression in _UPDATES:
        used = {key: value for key, value in _VALUES.items() if key in expression}
        names = {key: name for key, name in _NAMES.items() if key in expression}
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"id": {"S": "x"}},
                UpdateExpression=expression,
                ExpressionAttributeValues=used,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as error:
            outcomes.append(error.response["Error"])
        outcomes.append(dynamodb.get_item(TableName=table, Key={"id": {"S": "x"}}).get("Item"))
    return outcomes


def test_update_expressions_give_what_moto_s_own_tree_walk_gives_them(patched: None) -> None:
    # GIVEN two tables, and update expressions with functions, paths, list indexes, sets and refusals
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for table in ("walked", "moto"):
        _create_table(dynamodb, table)
    at_the_root = {check: check.__dict__["traverse"] for check in (ActionCountValidator, OverlappingPathsValidator)}

    # WHEN they are applied to one item with the engine's walk, and to another with moto's own
    walked = _apply_updates(dynamodb, "walked")
    for check in at_the_root:
        del check.traverse  # back to the traverser's own
    try:
        with _unpatched(ast_nodes.DepthFirstTraverser, "traverse"), _unpatched(ast_nodes.Node, "find_clauses"):
            own = _apply_updates(dynamodb, "moto")
    finally:
        for check, traverse in at_the_root.items():
            check.traverse = traverse

    # THEN every item and every refusal is the same, and the refusals were refusals
    assert walked == own
    assert sum(1 for outcome in walked if outcome and "Code" in outcome) == 7


_DOCUMENT = {
    "finding": {"id": "f-1", "severity": 8, "tags": ["a", "b"], "resource": {"ip": "203.0.113.9", "port": 22}},
    "actions": [
        {"type": "block_ip", "target": "203.0.113.9", "outcome": "applied", "n": 2},
        {"type": "notify", "target": "sns", "outcome": "skipped", "n": 1},
        {"type": "block_ip", "target": "198.51.100.7", "outcome": "failed", "n": 3},
    ],
}
# One expression or more for every kind of node jsonata-python evaluates, predicates and groups included.
_EXPRESSIONS = [
    "finding.resource.ip",
    "finding.severity * 2 + 1 - (4 / 2) % 3",
    "-finding.severity",
    "[finding.tags, 'c']",
    "{'id': finding.id, 'n': $count(actions)}",
    "finding.*",
    "**.target",
    "actions.{'t': type, 'i': %.finding.id}",
    "finding.severity > 5 ? 'high' : 'low'",
    "($x := 3; $y := $x * 2; $y)",
    "$match(finding.resource.ip, /^203\\./).match",
    "$map(actions, function($a, $i) {$a.target & '#' & $i})",
    "($add := function($a, $b) {$a + $b}; $inc := $add(?, 1); $inc(41))",
    "actions ~> $filter(function($a) {$a.n > 1}) ~> $map(function($a) {$a.type})",
    "$ ~> |actions|{'seen': true}|",
    "actions[type = 'block_ip' and outcome in ['applied', 'already_applied']].target",
    "actions[n > 1][0].target",
    "actions[type = 'notify'].target[]",
    "$filter(actions, function($a) {$a.type = 'notify'})[]",
    "actions{type: $sum(n)}",
    "actions^(>n).target",
    "$merge([{}, $map($keys(finding.resource), function($k) {{$k: $lookup(finding.resource, $k)}})])",
    "nothing.here",
    "[actions[outcome = 'none']]",
    "$string(finding.severity) & $uppercase(finding.id)",
    # $eval reads the context its node was evaluated in, after its siblings' evaluations
    "[$eval('finding.id'), $eval('$ + 1', finding.severity), actions[0].($eval('target'))]",
]


def test_jsonata_gives_what_its_own_evaluation_gives_for_every_kind_of_node(patched: None) -> None:
    # GIVEN the engine's node dispatch, and expressions with every kind of node, predicates and groups
    import jsonata

    # WHEN each is evaluated with the dispatch and with jsonata-python's own _eval
    with_dispatch = [jsonata.Jsonata(expression).evaluate(_DOCUMENT) for expression in _EXPRESSIONS]
    with _unpatched(jsonata.Jsonata, "_eval"):
        own = [jsonata.Jsonata(expression).evaluate(_DOCUMENT) for expression in _EXPRESSIONS]

    # THEN every result is the same, and the expressions were not all empty
    assert with_dispatch == own
    assert sum(result is not None for result in own) == len(_EXPRESSIONS) - 1


def test_jsonata_types_every_kind_of_value_as_its_own_signature_check_does(patched: None) -> None:
    # GIVEN values of every kind a built-in's argument can be: JSON's, a sequence, a lambda, a built-in, a regex
    import jsonata
    from jsonata import signature
    from jsonata.utils import Utils

    lam, builtin, regex = (jsonata.Jsonata(text).evaluate(None) for text in ("function($x) {$x}", "$string", "/a+/"))
    values = ["s", "", True, False, 0, 2.5, {"a": 1}, {}, [1], [], Utils.create_sequence(1), None, lam, builtin, regex]
    check: Any = signature.Signature("<s:s>", "$f")

    # WHEN each is typed by the engine's check and by jsonata-python's own
    typed = [check.get_symbol(value) for value in values]
    own = [signature.Signature.get_symbol.original(check, value) for value in values]

    # THEN every symbol is the same, and functions are still told apart from data
    assert typed == own
    assert typed[-3:] == ["f", "f", "f"] and typed[:2] == ["s", "s"]
    assert [Utils.is_function(value) for value in (lam, builtin, {"a": 1})] == [False, True, False]


def test_jsonata_results_come_back_as_fresh_json_with_its_nulls_as_jsonata_python_gives_them(patched: None) -> None:
    # GIVEN a document with nulls bound by reference, as moto's $states are, and expressions whose results hold
    # JSONata's null (its literal, and the document's own) at the top and deep down
    import jsonata

    bindings = runtime._Bindings()
    document = {"a": None, "list": [1, None, {"b": None}], "s": "x"}
    declared = bindings.encode({"$doc": document})
    expressions = ["$doc", "null", "[null, $doc.list]", "{'n': null, 'doc': $doc}", "$doc.list[2]", "$doc.nothing"]

    # WHEN each is evaluated through the bindings, and by jsonata-python with the document written into it
    through = [bindings.evaluate(f"({declared}{expression})") for expression in expressions]
    own = [
        jsonata.Jsonata(f"($doc := {json.dumps(document)}; {expression})").evaluate(None) for expression in expressions
    ]

    # THEN the results are the same, every null None, and none is the bound document itself
    assert through == own
    assert through[1] is None and through[2][0] is None and through[4] == {"b": None}
    assert through[0] == document and through[0] is not document


def test_the_interpreters_copies_are_fresh_and_equal_whether_or_not_a_json_round_trip_could_make_them(
    patched: None,
) -> None:
    # GIVEN the copy each of moto's $states, task parameters, task stack and ResultPath makes, and data that is JSON,
    # that is JSON and timestamps (a service's answer), that JSON would change (a tuple, a key that is not a string),
    # and timestamps with a tuple
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
    from moto.stepfunctions.parser.asl.eval import states

    values = [
        {"actions": [{"type": "block_ip", "n": 1.5}], "none": None},
        {"at": datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC), "list": [1], "answer": {"output": {"a": [2]}}},
        {"pair": (1, 2), 3: "three"},
        {"at": datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC), "pair": (1, [2])},
    ]
    for module in (states, state_task_service, execute_state, result_path):
        # WHEN each module copies each value
        copies = [module.copy.deepcopy(value) for value in values]  # type: ignore[attr-defined]

        # THEN every copy equals its value, keeps its types, and shares nothing with it
        assert copies == values
        assert copies[2]["pair"] == (1, 2) and 3 in copies[2]
        assert all(copied is not value for copied, value in zip(copies, values, strict=True))
        assert copies[0]["actions"] is not values[0]["actions"] and copies[1]["list"] is not values[1]["list"]
        assert copies[1]["answer"]["output"]["a"] is not values[1]["answer"]["output"]["a"]
        assert copies[3]["pair"] == (1, [2]) and copies[3]["pair"][1] is not values[3]["pair"][1]


def test_a_string_result_is_not_evaluated_again_and_a_null_one_is_still_told_from_undefined(patched: None) -> None:
    # GIVEN moto's check of a JSONata field's result, counting the evaluations it asks for
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
    from moto.stepfunctions.parser.asl.jsonata import validations

    asked: list[str] = []
    evaluate = moto_jsonata._eval_jsonata
    assert evaluate is not None

    def counted(expression: str) -> Any:
        asked.append(expression)
        return evaluate(expression)

    moto_jsonata._eval_jsonata = counted
    try:
        # WHEN a string result is checked, and then a null one
        validations.validate_jsonata_expression_output(None, "'a' & 'b'", "('a' & 'b')", "ab")  # type: ignore[arg-type]
        validations.validate_jsonata_expression_output(None, "null", "(null)", None)  # type: ignore[arg-type]
    finally:
        moto_jsonata._eval_jsonata = evaluate

    # THEN the string was taken as it came, and only the null one was asked about again (it exists: no refusal)
    assert asked == ["$exists((null))"]


def test_a_states_input_read_whole_is_a_fresh_copy_every_time(patched: None) -> None:
    # GIVEN moto's $states for an execution, whose input is then reset to a new one
    from moto.stepfunctions.parser.asl.eval.states import States

    states = States(context={"Execution": {"Input": {"first": True}}})  # type: ignore[typeddict-item]
    states.reset(input_value={"actions": [{"type": "block_ip"}], "n": 1})

    # WHEN a whole read is changed by its reader, and the input is read whole, in part, and after another reset
    read = states.get_input()
    read["actions"].append({"type": "changed"})
    again, part = states.get_input(), states.get_input("$.actions")
    states.reset(input_value={"n": 2})

    # THEN each read was the input as set, untouched by what a reader did to an earlier one
    assert again == {"actions": [{"type": "block_ip"}], "n": 1} and again is not read
    assert part == [{"type": "block_ip"}]
    assert states.get_input() == {"n": 2}


def _calls_through_every_kind_of_route(suffix: str) -> list[Any]:
    """Calls that moto routes by host (DynamoDB, STS, SNS), by path (Lambda), by bucket in the path and in the host
    (S3), one that fails, and one to a host no service has; what each answered, request ids left out."""
    session = boto3.session.Session(region_name="us-east-1")
    dynamodb, s3 = session.client("dynamodb"), session.client("s3")
    virtual = session.client("s3", config=botocore.config.Config(s3={"addressing_style": "virtual"}))
    answers: list[Any] = []

    def answer(call: Callable[[], Any]) -> None:
        try:
            result = call()
        except ClientError as error:
            result = error.response["Error"]
        if isinstance(result, dict):
            result.pop("ResponseMetadata", None)
        answers.append(result)

    _create_table(dynamodb, f"routes-{suffix}")
    answer(lambda: [name for name in dynamodb.list_tables()["TableNames"] if name.endswith(suffix)])
    answer(lambda: session.client("sts").get_caller_identity()["Account"])
    answer(lambda: session.client("sns").create_topic(Name=f"routes-{suffix}")["TopicArn"])
    answer(lambda: session.client("lambda").list_functions()["Functions"])
    answer(lambda: s3.create_bucket(Bucket=f"routes-{suffix}"))
    answer(lambda: virtual.put_object(Bucket=f"routes-{suffix}", Key="a/b.txt", Body=b"x")["ETag"])
    answer(lambda: s3.get_object(Bucket=f"routes-{suffix}", Key="a/b.txt")["Body"].read())
    answer(lambda: virtual.get_object(Bucket=f"routes-{suffix}", Key="missing"))
    stubber: Any = BotocoreStubber()
    request = botocore.awsrequest.AWSRequest("GET", "https://nothing-here.amazonaws.com/x").prepare()
    answers.append(stubber.process_request(request))
    return answers


def test_every_kind_of_route_answers_as_moto_s_own_routing_does(patched: None) -> None:
    # GIVEN the engine's routing of moto's requests, kept per URL
    # WHEN calls of every kind of route are made with it, and the same calls (other names) with moto's own routing
    kept = _calls_through_every_kind_of_route("kept")
    with _unpatched(BotocoreStubber, "process_request"):
        own = _calls_through_every_kind_of_route("own")

    # THEN every answer is the same, but for the names each made
    def named(answers: list[Any], suffix: str) -> str:
        return json.dumps(answers, default=str).replace(f"routes-{suffix}", "routes-x")

    assert named(kept, "kept") == named(own, "own")
    assert kept[-1] == (404, {}, "Not yet implemented") and kept[-2]["Code"] == "NoSuchKey"


def test_moto_s_random_strings_keep_their_length_alphabet_and_spread(patched: None) -> None:
    # GIVEN moto's source of random identifiers, as the engine draws them
    from moto.moto_api._internal import mock_random

    # WHEN it draws many hex strings, request ids, and lower-case letter-only strings
    hexes = [mock_random.get_random_hex(12) for _ in range(200)]
    ids = [mock_random.get_random_string(length=52) for _ in range(200)]
    letters = [mock_random.get_random_string(length=8, include_digits=False, lower_case=True) for _ in range(200)]

    # THEN each has its length and alphabet, every character of the alphabet turns up, and no two are alike
    assert {len(value) for value in hexes} == {12} and set("".join(hexes)) == set("0123456789abcdef")
    assert {len(value) for value in ids} == {52}
    assert set("".join(ids)) == set(string.ascii_letters + string.digits)
    assert set("".join(letters)) == set(string.ascii_lowercase)
    assert len(set(hexes)) == len(set(ids)) == len(set(letters)) == 200


def test_moto_s_errors_answer_as_before_json_ones_made_without_their_unread_xml(patched: None) -> None:
    # GIVEN errors of JSON-protocol services (DynamoDB's, Lambda's, a plain JSON one) and an XML one (a query API's)
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.core import exceptions as moto_exceptions
    from moto.dynamodb.exceptions import ProvidedKeyDoesNotExist

    def made() -> list[Any]:
        errors: list[Any] = [
            ProvidedKeyDoesNotExist(),
            UnknownFunctionException("arn:aws:lambda:us-east-1:123456789012:function:gone"),
            moto_exceptions.JsonRESTError("ThrottlingException", "slow down"),
            moto_exceptions.AccessDeniedError("arn:aws:iam::123456789012:user/x", "iam:GetUser"),
        ]
        return [(e.code, e.get_headers(), e.get_body(), e.error_type, e.message) for e in errors]

    # WHEN each is made as the engine makes it, and as moto does
    engine_made = made()
    with _unpatched(moto_exceptions._RESTError, "__init__"):  # type: ignore[attr-defined]
        moto_made = made()

    # THEN every code, header, body and field is the same: JSON bodies for the JSON ones, XML for the other
    assert engine_made == moto_made
    assert json.loads(engine_made[0][2])["__type"].endswith("ValidationException")
    assert engine_made[3][2].startswith("<?xml")


def _scans(dynamodb: Any, table: str) -> list[Any]:
    """Every kind of Scan of one table: whole, by legacy filter, by filter expression, projected (top level and
    nested), paged by a limit, by segment, of an index, and paged by the 1 MB limit; each page as answered."""
    pages: list[Any] = []

    def scan(**arguments: Any) -> None:
        while True:
            page = dynamodb.scan(TableName=table, **arguments)
            page.pop("ResponseMetadata")
            page["Items"] = sorted(page["Items"], key=lambda item: json.dumps(item, sort_keys=True))
            pages.append(page)
            if "LastEvaluatedKey" not in page:
                return
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    scan()
    scan(ScanFilter={"n": {"AttributeValueList": [{"N": "3"}], "ComparisonOperator": "GT"}})
    scan(ScanFilter={"gone": {"ComparisonOperator": "NULL"}, "kind": {"ComparisonOperator": "NOT_NULL"}})
    scan(
        FilterExpression="attribute_exists(#k) AND n < :n",
        ExpressionAttributeNames={"#k": "kind"},
        ExpressionAttributeValues={":n": {"N": "6"}},
    )
    scan(ProjectionExpression="id, n, #m", ExpressionAttributeNames={"#m": "missing"})
    scan(ProjectionExpression="id, deep.inner, tags[0]")
    scan(Limit=3, FilterExpression="n > :n", ExpressionAttributeValues={":n": {"N": "2"}}, ProjectionExpression="id")
    scan(Segment=1, TotalSegments=3)
    scan(IndexName="by-kind", ProjectionExpression="id, kind")
    scan(ProjectionExpression="id, big", ConsistentRead=True)
    return pages


def test_scans_answer_as_moto_s_own_scan_does(patched: None) -> None:
    # GIVEN a table with an index, items of every shape, and three big enough to fill more than one 1 MB page
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="scanned",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-kind",
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for number in range(10):
        item = {
            "id": {"S": f"item-{number}"},
            "n": {"N": str(number)},
            "tags": {"L": [{"S": "a"}, {"S": "b"}]},
            "deep": {"M": {"inner": {"SS": ["x", "y"]}, "other": {"BOOL": True}}},
        }
        if number % 3:
            item["kind"] = {"S": "block" if number % 2 else "lease"}
        if number >= 7:
            item["big"] = {"S": "x" * 380_000}
        dynamodb.put_item(TableName="scanned", Item=item)
    from moto.dynamodb.models.table import Table

    # WHEN the table is scanned every way with the engine's Scan, and with moto's own
    engine_pages = _scans(dynamodb, "scanned")
    with _unpatched(Table, "scan"):
        moto_pages = _scans(dynamodb, "scanned")

    # THEN every page is the same, and the scans did page, filter and project
    assert engine_pages == moto_pages
    assert "LastEvaluatedKey" in engine_pages[0]  # the whole table is more than one 1 MB page
    assert len(engine_pages) > 11 and any("LastEvaluatedKey" in page for page in engine_pages[1:])
    assert {len(page["Items"][0]) for page in engine_pages if page["Items"]} >= {1, 2, 3}
