"""Tests for firebreak_local.template: short tags, Globals, parameters, conditions, intrinsics and ordering."""

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest

from firebreak_local.template import ParameterError, Stack, Template, TemplateError, load_template
from tests.support import TEMPLATE


def _load(tmp_path: Path, text: str) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_template(path)


def _stack(template: Template, **kwargs: Any) -> Stack:
    return Stack(
        template,
        ref=lambda logical_id: f"physical-{logical_id}",
        get_att=lambda logical_id, attribute: f"{logical_id}/{attribute}",
        **kwargs,
    )


def test_short_tags_parse_to_long_form(tmp_path: Path) -> None:
    # GIVEN a template using every short-form tag
    template = _load(
        tmp_path,
        """
        AWSTemplateFormatVersion: 2010-09-09
        Conditions:
          IsProd: !Equals [!Ref Env, prod]
          NotProd: !Not [!Condition IsProd]
          Both: !And [!Condition IsProd, !Or [!Condition NotProd, !Condition IsProd]]
        Resources:
          Thing:
            Type: AWS::SNS::Topic
            Properties:
              A: !GetAtt Queue.Arn
              B: !GetAtt [Queue, QueueName]
              C: !Sub "${AWS::Region}-x"
              D: !Sub ["${X}", {X: !Ref Env}]
              E: !Join [",", [a, b]]
              F: !Select [0, !Split [",", "a,b"]]
              G: !If [IsProd, 1, 2]
              H: !FindInMap [M, K, V]
              I: !Base64 text
              J: !GetAZs ""
              K: !ImportValue shared
              L: !Cidr ["10.0.0.0/16", 2, 8]
        """,
    )

    # WHEN reading the raw document
    properties = template.raw["Resources"]["Thing"]["Properties"]

    # THEN each tag has become its long form, and dates stay strings
    assert template.raw["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template.raw["Conditions"] == {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Or": [{"Condition": "NotProd"}, {"Condition": "IsProd"}]}]},
    }
    assert properties == {
        "A": {"Fn::GetAtt": ["Queue", "Arn"]},
        "B": {"Fn::GetAtt": ["Queue", "QueueName"]},
        "C": {"Fn::Sub": "${AWS::Region}-x"},
        "D": {"Fn::Sub": ["${X}", {"X": {"Ref": "Env"}}]},
        "E": {"Fn::Join": [",", ["a", "b"]]},
        "F": {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]},
        "G": {"Fn::If": ["IsProd", 1, 2]},
        "H": {"Fn::FindInMap": ["M", "K", "V"]},
        "I": {"Fn::Base64": "text"},
        "J": {"Fn::GetAZs": ""},
        "K": {"Fn::ImportValue": "shared"},
        "L": {"Fn::Cidr": ["10.0.0.0/16", 2, 8]},
    }


def test_globals_merge_into_functions_with_resource_winning(tmp_path: Path) -> None:
    # GIVEN Globals.Function with a runtime, env vars and a layer, and a function overriding part of them
    template = _load(
        tmp_path,
        """
        Globals:
          Function:
            Runtime: python3.13
            Timeout: 10
            Layers: [!Ref SharedLayer]
            Environment:
              Variables: {LOG_LEVEL: INFO, TABLE: global, QUEUE: !Ref SharedLayer}
        Resources:
          SharedLayer:
            Type: AWS::Serverless::LayerVersion
            Properties: {ContentUri: layers/}
          Worker:
            Type: AWS::Serverless::Function
            Properties:
              Timeout: 30
              Layers: [own-layer]
              Environment:
                Variables: {TABLE: local, EXTRA: "1", QUEUE: !Sub local-queue}
          Topic:
            Type: AWS::SNS::Topic
        """,
    )

    # WHEN reading the merged body
    worker = template.body["Resources"]["Worker"]["Properties"]

    # THEN scalars and intrinsics are overridden, maps merged key-wise and lists concatenated global first
    variables = {"LOG_LEVEL": "INFO", "TABLE": "local", "QUEUE": {"Fn::Sub": "local-queue"}, "EXTRA": "1"}
    assert worker == {
        "Runtime": "python3.13",
        "Timeout": 30,
        "Layers": [{"Ref": "SharedLayer"}, "own-layer"],
        "Environment": {"Variables": variables},
    }
    assert "Properties" not in template.body["Resources"]["Topic"]
    assert "Globals" not in template.body
    assert "Runtime" not in template.raw["Resources"]["Worker"]["Properties"]


def test_globals_state_machine_section_applies_to_state_machines_only(tmp_path: Path) -> None:
    # GIVEN Globals.StateMachine tracing and a state machine and function
    template = _load(
        tmp_path,
        """
        Globals:
          StateMachine: {Tracing: {Enabled: true}}
        Resources:
          Machine: {Type: AWS::Serverless::StateMachine, Properties: {Type: STANDARD}}
          Worker: {Type: AWS::Serverless::Function, Properties: {Handler: app.handler}}
        """,
    )

    # WHEN / THEN only the state machine gains the tracing setting
    assert template.body["Resources"]["Machine"]["Properties"] == {"Tracing": {"Enabled": True}, "Type": "STANDARD"}
    assert template.body["Resources"]["Worker"]["Properties"] == {"Handler": "app.handler"}


PARAMETERS = """
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Retries: {Type: Number, Default: 3}
  Subnets: {Type: CommaDelimitedList, Default: "a, b ,c"}
  Groups: {Type: "List<AWS::EC2::SecurityGroup::Id>", Default: "sg-1,sg-2"}
  Email: {Type: String}
Resources:
  Topic: {Type: AWS::SNS::Topic}
"""


def test_parameters_use_defaults_and_split_list_types(tmp_path: Path) -> None:
    # GIVEN parameters with defaults of several types and one without a default
    template = _load(tmp_path, PARAMETERS)

    # WHEN resolving them with only the required one overridden
    values = template.parameters({"Email": "sec@example.com"})

    # THEN defaults apply, numbers stay strings and list types are split and stripped
    assert values == {
        "Env": "dev",
        "Retries": "3",
        "Subnets": ["a", "b", "c"],
        "Groups": ["sg-1", "sg-2"],
        "Email": "sec@example.com",
    }


def test_parameter_overrides_win_over_defaults(tmp_path: Path) -> None:
    # GIVEN parameters with defaults
    template = _load(tmp_path, PARAMETERS)

    # WHEN overriding a scalar and a list parameter
    values = template.parameters({"Env": "prod", "Subnets": "x,y", "Email": "e"})

    # THEN the overrides are used
    assert values["Env"] == "prod"
    assert values["Subnets"] == ["x", "y"]


def test_parameter_without_default_or_override_raises(tmp_path: Path) -> None:
    # GIVEN a parameter with no default
    template = _load(tmp_path, PARAMETERS)

    # WHEN / THEN resolving without an override names it
    with pytest.raises(TemplateError, match="Parameters.Email"):
        template.parameters()


def test_parameter_override_outside_allowed_values_raises(tmp_path: Path) -> None:
    # GIVEN a parameter restricted to dev and prod
    template = _load(tmp_path, PARAMETERS)

    # WHEN / THEN an override outside that set is rejected
    with pytest.raises(TemplateError, match="Parameters.Env"):
        template.parameters({"Env": "staging", "Email": "e"})


CONSTRAINED = """
Parameters:
  Threshold: {Type: Number, Default: 7, MinValue: 0, MaxValue: 10}
  Range: {Type: String, Default: "71-80", AllowedPattern: '^\\d{1,5}-\\d{1,5}$'}
  Rate:
    Type: String
    Default: rate(1 hour)
    AllowedPattern: rate\\(\\d+ hours?\\)
    ConstraintDescription: a rate in hours
  Name: {Type: String, Default: abc, MinLength: 2, MaxLength: 4}
  Regions: {Type: CommaDelimitedList, Default: "", AllowedPattern: '^([a-z]{2}-[a-z]+-\\d)?$'}
  Tiers: {Type: CommaDelimitedList, Default: "web", AllowedValues: [web, db]}
  Days: {Type: Number, Default: 30, AllowedValues: [30, 90]}
  Ports: {Type: "List<Number>", Default: "22,3389", MaxValue: 65535}
Resources:
  Topic: {Type: AWS::SNS::Topic}
"""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Threshold": "11"}, r"Parameters\.Threshold: 11 is greater than MaxValue 10$"),
        ({"Threshold": "-1"}, r"Parameters\.Threshold: -1 is less than MinValue 0$"),
        ({"Threshold": "high"}, r"Parameters\.Threshold: 'high' is not a number$"),
        ({"Threshold": ""}, r"Parameters\.Threshold: '' is not a number$"),
        ({"Range": "71"}, r"Parameters\.Range: '71' does not match the AllowedPattern \^\\d\{1,5\}-\\d\{1,5\}\$$"),
        # The whole value must match, as in CloudFormation, even where the pattern has no anchors.
        ({"Rate": "rate(2 hours) and more"}, r"Parameters\.Rate: .* does not match .* \(a rate in hours\)$"),
        ({"Name": "a"}, r"Parameters\.Name: 'a' is shorter than MinLength 2$"),
        ({"Name": "abcde"}, r"Parameters\.Name: 'abcde' is longer than MaxLength 4$"),
        ({"Regions": "eu-west-1,Europe"}, r"Parameters\.Regions: 'Europe' does not match"),
        ({"Tiers": "web,cache"}, r"Parameters\.Tiers: 'cache' is not one of the AllowedValues web, db$"),
        ({"Days": "31"}, r"Parameters\.Days: '31' is not one of the AllowedValues 30, 90$"),
        ({"Ports": "22,70000"}, r"Parameters\.Ports: 70000 is greater than MaxValue 65535$"),
        # Java's \d, which CloudFormation's patterns use, is ASCII only.
        ({"Range": "\u0667\u0661-80"}, r"Parameters\.Range: .* does not match"),
    ],
)
def test_override_outside_its_constraints_is_refused_naming_it(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    # GIVEN parameters with CloudFormation's constraints
    template = _load(tmp_path, CONSTRAINED)

    # WHEN / THEN a value CloudFormation would refuse is refused, naming the parameter and the constraint
    with pytest.raises(ParameterError, match=message) as refused:
        template.parameters(overrides)
    assert refused.value.names == tuple(overrides)


def test_values_inside_their_constraints_are_accepted(tmp_path: Path) -> None:
    # GIVEN parameters with CloudFormation's constraints
    template = _load(tmp_path, CONSTRAINED)

    # WHEN every one is given a value at its edge
    values = template.parameters(
        {
            "Threshold": "10",
            "Range": "1-65535",
            "Rate": "rate(1 hours)",
            "Name": "ab",
            "Regions": "eu-west-1, us-east-2",
            "Tiers": "db,web",
            "Days": "90",
            "Ports": "0.5,65535",
        }
    )

    # THEN they are taken, list items stripped
    assert values["Regions"] == ["eu-west-1", "us-east-2"]
    assert values["Threshold"] == "10"


def test_undeclared_overrides_are_refused_all_together(tmp_path: Path) -> None:
    # GIVEN a template without parameters named Bogus or Other
    template = _load(tmp_path, CONSTRAINED)

    # WHEN / THEN both are named, as CloudFormation names them
    with pytest.raises(ParameterError, match=r"^Parameters: \[Bogus, Other\] do not exist in the template$") as refused:
        template.parameters({"Other": "1", "Bogus": "2", "Threshold": "1"})
    assert refused.value.names == ("Bogus", "Other")


def test_repository_template_defaults_satisfy_their_own_constraints() -> None:
    # GIVEN template.yaml as it is deployed
    # WHEN / THEN every default passes its own constraints, as CloudFormation requires at deploy
    assert load_template(TEMPLATE).parameters()


CONDITIONAL = """
Parameters:
  Env: {Type: String, Default: dev}
  Replicas: {Type: Number, Default: 2}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  DevAndEu: !And [!Condition IsDev, !Equals [!Ref "AWS::Region", eu-west-1]]
  ProdOrDev: !Or [!Condition IsProd, !Condition IsDev]
  TwoReplicas: !Equals [!Ref Replicas, 2]
Resources:
  Alarm: {Type: AWS::CloudWatch::Alarm, Condition: IsProd}
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      KmsMasterKeyId: !If [IsProd, alias/prod, !Ref "AWS::NoValue"]
      Tags:
        - !If [IsProd, {Key: tier, Value: prod}, !Ref "AWS::NoValue"]
        - {Key: env, Value: !Ref Env}
Outputs:
  AlarmName: {Condition: IsProd, Value: !Ref Alarm}
  TopicArn: {Value: !Ref Topic}
"""


def test_conditions_evaluate_against_parameters_and_region(tmp_path: Path) -> None:
    # GIVEN conditions over parameters (a Number compared with a YAML int) and the region
    stack = _stack(_load(tmp_path, CONDITIONAL), region="eu-west-1")

    # WHEN / THEN every condition is evaluated
    assert stack.conditions == {
        "IsProd": False,
        "IsDev": True,
        "DevAndEu": True,
        "ProdOrDev": True,
        "TwoReplicas": True,
    }


def test_resource_with_false_condition_is_inactive(tmp_path: Path) -> None:
    # GIVEN an alarm only created in prod
    template = _load(tmp_path, CONDITIONAL)

    # WHEN binding the stack for dev and for prod
    dev, prod = _stack(template), _stack(template, overrides={"Env": "prod"})

    # THEN the alarm is active only in prod, and its output follows it
    assert list(dev.resources) == ["Topic"]
    assert list(prod.resources) == ["Alarm", "Topic"]
    assert dev.outputs() == {"TopicArn": "physical-Topic"}
    assert prod.outputs() == {"AlarmName": "physical-Alarm", "TopicArn": "physical-Topic"}
    assert list(prod.resources_of_type("AWS::CloudWatch::Alarm")) == ["Alarm"]
    assert dev.resources_of_type("AWS::CloudWatch::Alarm") == {}


def test_if_with_no_value_removes_key_and_list_element(tmp_path: Path) -> None:
    # GIVEN properties that use Fn::If with AWS::NoValue
    template = _load(tmp_path, CONDITIONAL)

    # WHEN resolving the topic's properties in dev and prod
    dev = _stack(template).properties("Topic")
    prod = _stack(template, overrides={"Env": "prod"}).properties("Topic")

    # THEN the false branch removes the key and the list element
    assert dev == {"Tags": [{"Key": "env", "Value": "dev"}]}
    assert prod == {
        "KmsMasterKeyId": "alias/prod",
        "Tags": [{"Key": "tier", "Value": "prod"}, {"Key": "env", "Value": "prod"}],
    }


def test_ref_to_inactive_resource_raises(tmp_path: Path) -> None:
    # GIVEN a dev stack, where the alarm is disabled
    stack = _stack(_load(tmp_path, CONDITIONAL))

    # WHEN / THEN referencing the alarm names it
    with pytest.raises(TemplateError, match="Alarm is disabled"):
        stack.resolve({"Ref": "Alarm"})


SUBSTITUTIONS = """
Parameters:
  Prefix: {Type: String, Default: fb}
Mappings:
  Sizes:
    dev: {Memory: 128, Zones: [a, b]}
Resources:
  Bucket: {Type: AWS::S3::Bucket}
  Queue: {Type: AWS::SQS::Queue}
"""


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Fn::Sub": "${Prefix}-${AWS::Region}-${AWS::AccountId}"}, "fb-eu-west-1-111122223333"),
        ({"Fn::Sub": "${Bucket}/${Queue.Arn}"}, "physical-Bucket/Queue/Arn"),
        ({"Fn::Sub": "arn:${AWS::Partition}:s3:::x.${AWS::URLSuffix}"}, "arn:aws:s3:::x.amazonaws.com"),
        ({"Fn::Sub": "${AWS::StackName} ${!Literal} ${!Bucket.Arn}"}, "demo ${Literal} ${Bucket.Arn}"),
        ({"Fn::Sub": ["${Name}-${Prefix}", {"Name": {"Ref": "Bucket"}}]}, "physical-Bucket-fb"),
        ({"Fn::Sub": ["${Bucket}", {"Bucket": "shadowed"}]}, "shadowed"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Prefix"}, 3]]}, "a-fb-3"),
        ({"Fn::Select": ["1", {"Fn::Split": [",", "x,y,z"]}]}, "y"),
        ({"Fn::Split": ["|", "a|b"]}, ["a", "b"]),
        ({"Fn::FindInMap": ["Sizes", "dev", "Memory"]}, 128),
        ({"Fn::FindInMap": ["Sizes", {"Fn::Sub": "dev"}, "Zones"]}, ["a", "b"]),
        ({"Fn::Base64": {"Ref": "Prefix"}}, base64.b64encode(b"fb").decode()),
        ({"Fn::GetAZs": ""}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "Bucket/Arn"),
        ({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, ["10.0.0.0/24", "10.0.1.0/24"]),
        ({"Ref": "AWS::NoValue"}, None),
    ],
)
def test_intrinsic_functions_resolve(tmp_path: Path, expression: dict[str, Any], expected: Any) -> None:
    # GIVEN a stack in eu-west-1 whose engine names resources physical-<id> and attributes <id>/<attr>
    stack = _stack(_load(tmp_path, SUBSTITUTIONS), region="eu-west-1", account_id="111122223333", stack_name="demo")

    # WHEN resolving the expression
    resolved = stack.resolve(expression)

    # THEN the value is what CloudFormation would produce
    assert resolved == expected


def test_stack_id_is_an_arn_for_the_stack(tmp_path: Path) -> None:
    # GIVEN a stack named demo
    stack = _stack(_load(tmp_path, SUBSTITUTIONS), stack_name="demo")

    # WHEN / THEN AWS::StackId is a CloudFormation stack ARN
    assert stack.resolve({"Ref": "AWS::StackId"}).startswith(
        "arn:aws:cloudformation:us-east-1:123456789012:stack/demo/"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Fn::Transform": {"Name": "x"}}, r"Outputs\.X\.Value\.Fn::Transform: unsupported intrinsic"),
        ({"Fn::Select": [5, ["a"]]}, "out of range"),
        ({"Fn::Select": [-1, ["a"]]}, "malformed Fn::Select"),
        ({"Fn::FindInMap": ["Sizes", "prod", "Memory"]}, "no Mappings entry Sizes.prod.Memory"),
        ({"Fn::Join": ","}, "malformed Fn::Join"),
        ({"Fn::ImportValue": "shared"}, "Fn::ImportValue"),
        ({"Fn::If": ["Missing", 1, 2]}, "unknown condition 'Missing'"),
    ],
)
def test_bad_intrinsic_raises_with_path(tmp_path: Path, expression: dict[str, Any], message: str) -> None:
    # GIVEN a stack
    stack = _stack(_load(tmp_path, SUBSTITUTIONS))

    # WHEN / THEN resolving a bad expression raises with its path
    with pytest.raises(TemplateError, match=message):
        stack.resolve(expression, "Outputs.X.Value")


def test_unknown_intrinsic_in_properties_names_the_path(tmp_path: Path) -> None:
    # GIVEN a resource property using an intrinsic the resolver does not know
    template = _load(
        tmp_path,
        """
        Resources:
          Topic:
            Type: AWS::SNS::Topic
            Properties: {Tags: [{Key: a, Value: {"Fn::Length": [1, 2]}}]}
        """,
    )

    # WHEN / THEN resolving it fails naming the logical id and path
    with pytest.raises(TemplateError, match=r"Resources\.Topic\.Properties\.Tags\[0\]\.Value\.Fn::Length"):
        _stack(template).properties("Topic")


def test_dependency_order_follows_ref_getatt_sub_and_depends_on(tmp_path: Path) -> None:
    # GIVEN resources listed before the ones they reference, by each kind of reference
    template = _load(
        tmp_path,
        """
        Parameters:
          Prefix: {Type: String, Default: fb}
        Resources:
          Machine:
            Type: AWS::Serverless::StateMachine
            Properties:
              DefinitionSubstitutions:
                FunctionArn: !GetAtt Worker.Arn
                TopicArn: !Sub "${Topic}"
                Literal: !Sub "${!Unrelated} ${Prefix} ${AWS::Region}"
          Worker:
            Type: AWS::Serverless::Function
            DependsOn: [Bucket]
            Properties:
              Environment:
                Variables:
                  QUEUE: !Sub "${Queue.Arn}"
                  NAMED: !Sub ["${Unrelated}-${Name}", {Unrelated: x, Name: !Ref Table}]
          Independent: {Type: AWS::SNS::Topic}
          Topic:
            Type: AWS::SNS::Topic
            DependsOn: Table
          Queue: {Type: AWS::SQS::Queue}
          Table: {Type: AWS::DynamoDB::Table}
          Bucket: {Type: AWS::S3::Bucket}
          Unrelated: {Type: AWS::S3::Bucket}
        """,
    )

    # WHEN ordering the resources
    order = _stack(template).dependency_order()

    # THEN each comes after what it references, otherwise in template order
    assert order == ["Independent", "Queue", "Table", "Topic", "Bucket", "Worker", "Machine", "Unrelated"]


def test_dependency_order_skips_untaken_if_branch_and_inactive_resources(tmp_path: Path) -> None:
    # GIVEN a resource that references an inactive one only in the false branch of Fn::If
    template = _load(
        tmp_path,
        """
        Conditions:
          Never: !Equals [a, b]
        Resources:
          User:
            Type: AWS::SNS::Topic
            Properties:
              KmsMasterKeyId: !If [Never, !Ref Key, !Ref Fallback]
              DisplayName: !If [Never, !GetAtt Later.TopicName, plain]
          Key: {Type: AWS::KMS::Key, Condition: Never}
          Fallback: {Type: AWS::KMS::Key}
          Later: {Type: AWS::SNS::Topic}
        """,
    )

    # WHEN / THEN only the taken branch creates an edge and the inactive key is absent
    assert _stack(template).dependency_order() == ["Fallback", "User", "Later"]


def test_dependency_cycle_raises_naming_the_resources(tmp_path: Path) -> None:
    # GIVEN A and B referencing each other and C depending on the cycle
    template = _load(
        tmp_path,
        """
        Resources:
          C: {Type: AWS::SNS::Topic, Properties: {Name: !Ref A}}
          A: {Type: AWS::SNS::Topic, Properties: {Name: !GetAtt B.TopicName}}
          B: {Type: AWS::SNS::Topic, Properties: {Name: !Sub "${A}"}}
          Free: {Type: AWS::SNS::Topic}
        """,
    )

    # WHEN / THEN ordering fails naming only the resources in the cycle
    with pytest.raises(TemplateError, match=r"Circular dependency between resources: A, B$"):
        _stack(template).dependency_order()


def test_depends_on_unknown_resource_raises(tmp_path: Path) -> None:
    # GIVEN a DependsOn naming a resource that does not exist
    template = _load(tmp_path, "Resources:\n  A: {Type: AWS::SNS::Topic, DependsOn: Ghost}\n")

    # WHEN / THEN ordering names both the resource and the missing dependency
    with pytest.raises(TemplateError, match=r"Resources\.A\.DependsOn: unknown resource 'Ghost'"):
        _stack(template).dependency_order()


def test_file_without_resources_is_rejected(tmp_path: Path) -> None:
    # GIVEN a YAML file that is not a template
    # WHEN / THEN loading it fails
    with pytest.raises(TemplateError, match="no Resources"):
        _load(tmp_path, "Description: nothing\n")
