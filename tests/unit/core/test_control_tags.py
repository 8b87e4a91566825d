"""The two tags a resource's owner steers Firebreak with, read one way by triage and by every playbook."""

from __future__ import annotations

import pytest

from firebreak.core.models import asks_approval, says_exempt


@pytest.mark.parametrize("value", ["true", "True", "TRUE", " true ", "true\n"])
def test_exempt_is_true_however_written(value: str) -> None:
    # GIVEN a firebreak:exempt value an owner typed
    # THEN it exempts the resource, at triage and at the playbook's step alike
    assert says_exempt(value)


@pytest.mark.parametrize("value", [None, "", "false", "yes", "1", "truee"])
def test_anything_else_exempts_nothing(value: str | None) -> None:
    assert not says_exempt(value)


@pytest.mark.parametrize("value", ["required", "Required", " REQUIRED "])
def test_approval_is_asked_for_by_required_however_written(value: str) -> None:
    assert asks_approval(value)


@pytest.mark.parametrize("value", [None, "", "no", "optional", "true"])
def test_anything_else_asks_no_approval(value: str | None) -> None:
    assert not asks_approval(value)
