"""EventBridge pattern matcher: documentation examples per operator, arrays, $or, and Firebreak's own rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from firebreak_local.patterns import PatternError, matches, validate

# The sample event of the EventBridge content-filtering examples (also event-ruler's README).
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}


def detail(**fields: Any) -> dict[str, Any]:
    return {"detail": fields}


# --- Exact values, null, empty, numbers, booleans -------------------------------------------------------------


def test_field_values_are_anded_and_values_in_one_list_are_ored() -> None:
    # GIVEN the guide's EC2 pattern listing two acceptable states
    pattern = {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["initializing", "running"]},
    }
    # WHEN / THEN it matches the running instance but not one from another source
    assert matches(pattern, EC2_EVENT)
    assert not matches({**pattern, "source": ["aws.fargate"]}, EC2_EVENT)


def test_missing_field_never_matches_an_ordinary_condition() -> None:
    # GIVEN a pattern on a field the event does not carry
    pattern = detail(reason=["stopped-by-user"])
    # WHEN / THEN it does not match
    assert not matches(pattern, EC2_EVENT)


def test_null_and_empty_string_match_only_themselves() -> None:
    # GIVEN the guide's Auto Scaling event with an empty eventVersion and a null responseElements
    event = {"source": "aws.autoscaling", "detail": {"eventVersion": "", "responseElements": None}}
    # WHEN / THEN [null] and [""] match those fields, and neither matches the other
    assert matches(detail(responseElements=[None]), event)
    assert matches(detail(eventVersion=[""]), event)
    assert not matches(detail(responseElements=[""]), event)
    assert not matches(detail(eventVersion=[None]), event)


def test_numbers_compare_numerically_but_never_equal_strings_or_booleans() -> None:
    # GIVEN the guide's Macie value-matching example: severity score 1 and count 2
    event = detail(severity={"score": 1}, count=2, flag=True, code="7")
    # WHEN / THEN numbers match across int/float forms only
    assert matches(detail(severity={"score": [1.0]}, count=[2]), event)
    assert not matches(detail(count=["2"]), event)
    assert not matches(detail(flag=[1]), event)
    assert matches(detail(flag=[True]), event)
    assert not matches(detail(code=[7]), event)


# --- prefix / suffix / equals-ignore-case / wildcard ----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ({"prefix": "2017-10-02"}, "2017-10-02T18:43:48Z", True),
        ({"prefix": "2017-10-02"}, "2017-10-03T18:43:48Z", False),
        ({"prefix": {"equals-ignore-case": "eventb"}}, "EventBridge", True),
        ({"prefix": {"equals-ignore-case": "eventb"}}, "Lambda", False),
        ({"suffix": ".png"}, "photo.png", True),
        ({"suffix": ".png"}, "photo.PNG", False),
        ({"suffix": {"equals-ignore-case": "tBridge"}}, "EVENTBRIDGE", True),
        ({"equals-ignore-case": "alice"}, "ALICE", True),
        ({"equals-ignore-case": "alice"}, "alicia", False),
        ({"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}, "arn:aws:events:us-east-1:111:event-bus/a", True),
        ({"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}, "arn:aws:events:eu-west-1:111:event-bus/a", False),
        ({"wildcard": "dir/*.png"}, "dir/a.png", True),
        ({"wildcard": "a\\*b"}, "a*b", True),
        ({"wildcard": "a\\*b"}, "axb", False),
        ({"prefix": "1"}, 123, False),
    ],
)
def test_string_operators_follow_the_documented_examples(condition: Any, value: Any, expected: bool) -> None:
    # GIVEN a field holding value and a pattern with one string operator
    event = detail(field=value)
    # WHEN the pattern is evaluated
    result = matches(detail(field=[condition]), event)
    # THEN it matches exactly as the guide's example says (string operators ignore non-strings)
    assert result is expected


# --- anything-but ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        ("initializing", "running", True),
        ("initializing", "initializing", False),
        (["stopped", "overloaded"], "running", True),
        (["stopped", "overloaded"], "stopped", False),
        ([100, 200, 300], 301.8, True),
        ([100, 200, 300], 200.0, False),
        ({"prefix": "us-"}, "eu-west-1", True),
        ({"prefix": "us-"}, "us-east-1", False),
        ({"suffix": ".png"}, "notes.txt", True),
        ({"suffix": ".png"}, "photo.png", False),
        ({"equals-ignore-case": "initializing"}, "INITIALIZING", False),
        ({"equals-ignore-case": ["initializing", "stopped"]}, "Running", True),
        ({"wildcard": "*/lib/*"}, "/usr/bin/x", True),
        ({"wildcard": "*/lib/*"}, "/usr/lib/x", False),
    ],
)
def test_anything_but_excludes_only_the_listed_values(operand: Any, value: Any, expected: bool) -> None:
    # GIVEN a field holding value and an anything-but condition
    pattern = detail(field=[{"anything-but": operand}])
    # WHEN / THEN it matches every other value
    assert matches(pattern, detail(field=value)) is expected


def test_anything_but_needs_the_field_to_be_present() -> None:
    # GIVEN an anything-but pattern on a field the event lacks
    pattern = detail(state=[{"anything-but": "initializing"}])
    # WHEN / THEN EventBridge does not match, unlike a plain "not equal"
    assert not matches(pattern, detail(other="x"))


# --- numeric, cidr, exists ------------------------------------------------------------------------------------


def test_numeric_ranges_match_the_documented_example() -> None:
    # GIVEN the guide's numeric pattern
    pattern = detail(
        **{
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"numeric": ["=", 3.018e2]}],
        }
    )
    # WHEN / THEN it matches the sample event and fails once a bound is crossed
    assert matches(pattern, EC2_EVENT)
    out_of_range = copy.deepcopy(EC2_EVENT)
    out_of_range["detail"]["c-count"] = 6
    assert not matches(pattern, out_of_range)


def test_numeric_matches_only_json_numbers() -> None:
    # GIVEN a numeric pattern
    pattern = detail(severity=[{"numeric": [">=", 7]}])
    # WHEN / THEN a numeric string or a boolean does not match, a number does
    assert not matches(pattern, detail(severity="8"))
    assert not matches(pattern, detail(severity=True))
    assert matches(pattern, detail(severity=7))


@pytest.mark.parametrize(
    ("cidr", "address", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.33", True),
        ("10.0.0.0/24", "10.0.1.33", False),
        ("10.0.0.0/24", "not-an-ip", False),
        ("2001:db8::/64", "2001:db8::1", True),
        ("2001:db8::/64", "2001:db9::1", False),
        ("10.0.0.0/8", "2001:db8::1", False),
    ],
)
def test_cidr_matches_ipv4_and_ipv6_addresses_in_the_block(cidr: str, address: str, expected: bool) -> None:
    # GIVEN a cidr pattern and a source IP
    pattern = detail(**{"source-ip": [{"cidr": cidr}]})
    # WHEN / THEN membership decides
    assert matches(pattern, detail(**{"source-ip": address})) is expected


def test_exists_checks_presence_of_a_leaf() -> None:
    # GIVEN exists true / false patterns on c-count
    present = detail(**{"c-count": [{"exists": True}]})
    absent = detail(**{"c-count": [{"exists": False}]})
    # WHEN / THEN they follow the field's presence, null counting as present
    assert matches(present, EC2_EVENT)
    assert not matches(absent, EC2_EVENT)
    assert matches(absent, detail(state="running"))
    assert matches(present, detail(**{"c-count": None}))


def test_exists_only_sees_leaf_nodes() -> None:
    # GIVEN c-count holding an object (the event-ruler README example)
    event = detail(**{"c-count": {"c1": 100}})
    # WHEN / THEN the intermediate node counts as absent for exists
    assert matches(detail(**{"c-count": [{"exists": False}]}), event)
    assert not matches(detail(**{"c-count": [{"exists": True}]}), event)


def test_exists_false_matches_when_a_whole_parent_object_is_missing() -> None:
    # GIVEN the GuardDuty "exclude samples" refinement and a finding without additionalInfo
    pattern = detail(service={"additionalInfo": {"sample": [{"exists": False}]}})
    # WHEN / THEN the missing parent does not block the match, a sample flag does
    assert matches(pattern, detail(service={"action": {}}))
    assert not matches(pattern, detail(service={"additionalInfo": {"sample": True}}))


# --- Arrays and $or -------------------------------------------------------------------------------------------


def test_event_array_matches_when_the_intersection_is_non_empty() -> None:
    # GIVEN the guide's resources example
    pattern = {
        "resources": [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
        ]
    }
    event = {
        "resources": [
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56:autoScalingGroupName/ASGTerminate",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        ]
    }
    # WHEN / THEN one common ARN suffices, none does not
    assert matches(pattern, event)
    assert not matches(pattern, {"resources": event["resources"][:1]})
    assert not matches(pattern, {"resources": []})


def test_pattern_over_an_array_of_objects_is_matched_per_element() -> None:
    # GIVEN the event-ruler employees example
    event = {
        "employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"},
        ]
    }
    # WHEN / THEN conditions satisfied by one element match; conditions split across elements do not
    assert matches({"employees": {"firstName": ["Anna"]}}, event)
    assert matches({"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}, event)
    assert not matches({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}, event)


@pytest.mark.parametrize(("product", "expected"), [("Inspector", True), ("GuardDuty", False)])
def test_anything_but_inside_an_array_of_objects(product: str, expected: bool) -> None:
    # GIVEN a Security Hub event with one finding (the case moto gets wrong)
    event = detail(findings=[{"ProductName": product, "Id": "f-1"}])
    # WHEN matched against anything-but GuardDuty under detail.findings
    result = matches(detail(findings={"ProductName": [{"anything-but": "GuardDuty"}]}), event)
    # THEN only the non-GuardDuty finding matches
    assert result is expected


def test_or_matches_when_any_alternative_matches() -> None:
    # GIVEN the guide's $or example
    pattern = {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}
    # WHEN / THEN either field suffices, neither does not
    assert matches(pattern, {"Location": "Paris", "Day": "Monday"})
    assert matches(pattern, {"Location": "New York", "Day": "Sunday"})
    assert not matches(pattern, {"Location": "Paris", "Day": "Sunday"})


# --- Firebreak's rules ----------------------------------------------------------------------------------------

GUARDDUTY_RULE: dict[str, Any] = {
    "source": ["aws.guardduty"],
    "detail-type": ["GuardDuty Finding"],
    "$or": [
        {"detail": {"severity": [{"numeric": [">=", 7]}]}},
        {"detail": {"type": ["UnauthorizedAccess:EC2/SSHBruteForce", "UnauthorizedAccess:EC2/RDPBruteForce"]}},
    ],
}


def guardduty_event(severity: float, finding_type: str, detail_type: str = "GuardDuty Finding") -> dict[str, Any]:
    return {
        "source": "aws.guardduty",
        "detail-type": detail_type,
        "detail": {"severity": severity, "type": finding_type, "resource": {"resourceType": "Instance"}},
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (guardduty_event(8, "Backdoor:EC2/C&CActivity.B"), True),
        (guardduty_event(9.5, "CryptoCurrency:EC2/BitcoinTool.B"), True),
        (guardduty_event(2, "UnauthorizedAccess:EC2/SSHBruteForce"), True),
        (guardduty_event(2, "Recon:EC2/PortProbeUnprotectedPort"), False),
        (guardduty_event(8, "Backdoor:EC2/C&CActivity.B", "GuardDuty Runtime Protection Healthy"), False),
    ],
    ids=["high", "critical", "low-ssh-brute-force", "low-port-probe", "runtime-health"],
)
def test_guardduty_rule_takes_high_severity_or_brute_force(event: dict[str, Any], expected: bool) -> None:
    # GIVEN the template's GuardDuty rule
    # WHEN a finding event is evaluated
    result = matches(GUARDDUTY_RULE, event)
    # THEN high/critical findings and brute-force types trigger, other findings and health events do not
    assert result is expected


SECURITY_HUB_RULE: dict[str, Any] = {
    "source": ["aws.securityhub"],
    "detail-type": ["Security Hub Findings - Imported"],
    "detail": {
        "findings": {
            "Severity": {"Label": ["HIGH", "CRITICAL"]},
            "Workflow": {"Status": ["NEW"]},
            "RecordState": ["ACTIVE"],
            "ProductFields": {"aws/securityhub/ProductName": [{"anything-but": "GuardDuty"}]},
        }
    },
}


def security_hub_event(
    product: str = "Inspector", label: str = "HIGH", status: str = "NEW", state: str = "ACTIVE"
) -> dict[str, Any]:
    finding = {
        "Id": "arn:aws:inspector2:us-east-1:123456789012:finding/abc",
        "ProductFields": {"aws/securityhub/ProductName": product},
        "Severity": {"Label": label, "Normalized": 70},
        "Workflow": {"Status": status},
        "RecordState": state,
    }
    return {
        "source": "aws.securityhub",
        "detail-type": "Security Hub Findings - Imported",
        "detail": {"findings": [finding]},
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (security_hub_event(), True),
        (security_hub_event(label="CRITICAL"), True),
        (security_hub_event(product="GuardDuty"), False),
        (security_hub_event(status="NOTIFIED"), False),
        (security_hub_event(state="ARCHIVED"), False),
        (security_hub_event(label="MEDIUM"), False),
    ],
    ids=["inspector-high-new-active", "critical", "guardduty", "notified", "archived", "medium"],
)
def test_security_hub_rule_takes_new_active_high_findings_not_from_guardduty(
    event: dict[str, Any], expected: bool
) -> None:
    # GIVEN the template's Security Hub Imported rule
    # WHEN a findings event is evaluated
    result = matches(SECURITY_HUB_RULE, event)
    # THEN only a new, active, high/critical non-GuardDuty finding triggers
    assert result is expected


def test_security_hub_rule_needs_one_finding_that_satisfies_every_condition() -> None:
    # GIVEN two findings: an active GuardDuty HIGH one and an archived Inspector HIGH one
    event = security_hub_event(product="GuardDuty")
    event["detail"]["findings"].append(security_hub_event(state="ARCHIVED")["detail"]["findings"][0])
    # WHEN / THEN no single finding qualifies, so the rule does not trigger
    assert not matches(SECURITY_HUB_RULE, event)
    # AND adding a qualifying finding makes it trigger
    event["detail"]["findings"].append(security_hub_event()["detail"]["findings"][0])
    assert matches(SECURITY_HUB_RULE, event)


# --- Invalid patterns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"source": "aws.ec2"},
        {"source": []},
        {"source": [["nested"]]},
        {"source": [{"contains": "ec2"}]},
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"source": [{"prefix": 1}]},
        {"source": [{"prefix": {"ignore-case": "a"}}]},
        {"detail": {"severity": [{"numeric": [">=", "7"]}]}},
        {"detail": {"severity": [{"numeric": ["!=", 7]}]}},
        {"detail": {"severity": [{"numeric": ["<", 9, ">", 1]}]}},
        {"detail": {"severity": [{"numeric": [">", 1, "<"]}]}},
        {"detail": {"ip": [{"cidr": "10.0.0.0/33"}]}},
        {"detail": {"x": [{"exists": "yes"}]}},
        {"detail": {"x": [{"anything-but": None}]}},
        {"detail": {"x": [{"anything-but": ["a", 1]}]}},
        {"detail": {"x": [{"anything-but": {"numeric": [">", 1]}}]}},
        {"detail": {"x": [{"wildcard": "a**b"}]}},
        {"detail": {"x": [{"wildcard": "a\\b"}]}},
        {"$or": [{"source": ["aws.ec2"]}]},
        {"$or": {"source": ["aws.ec2"]}},
    ],
)
def test_invalid_patterns_raise_pattern_error(pattern: dict[str, Any]) -> None:
    # GIVEN a malformed pattern
    # WHEN validated or used for matching
    # THEN PatternError is raised, before any event is looked at
    with pytest.raises(PatternError):
        validate(pattern)
    with pytest.raises(PatternError):
        matches(pattern, EC2_EVENT)


def test_invalid_alternative_is_reported_even_when_another_would_match() -> None:
    # GIVEN an $or whose first branch matches and whose second has an unknown operator
    pattern = {"$or": [{"source": ["aws.ec2"]}, {"source": [{"bogus": 1}]}]}
    # WHEN / THEN the whole pattern is rejected rather than silently matching
    with pytest.raises(PatternError):
        matches(pattern, EC2_EVENT)


def test_valid_firebreak_rules_pass_validation() -> None:
    # GIVEN the template's rules
    # WHEN / THEN validation accepts them
    validate(GUARDDUTY_RULE)
    validate(SECURITY_HUB_RULE)
