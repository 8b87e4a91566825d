"""Settings.mode_for: a playbook's own mode against the stack's ResponseMode."""

from __future__ import annotations

import pytest

from firebreak.core.models import Mode, Playbook
from firebreak.core.settings import PLAYBOOK_MODE_VARIABLES, Settings

ENFORCE, APPROVAL, DRY_RUN = Mode.ENFORCE, Mode.APPROVAL, Mode.DRY_RUN
INHERIT = None

# (stack's ResponseMode, the playbook's own mode or inherit, the mode the playbook runs in)
MODES = [
    pytest.param(ENFORCE, INHERIT, ENFORCE, id="enforce-stack-inherit"),
    pytest.param(ENFORCE, APPROVAL, APPROVAL, id="enforce-stack-approval-playbook-waits"),
    pytest.param(ENFORCE, DRY_RUN, DRY_RUN, id="enforce-stack-dry-run-playbook-plans"),
    pytest.param(ENFORCE, ENFORCE, ENFORCE, id="enforce-stack-enforce-playbook"),
    pytest.param(APPROVAL, INHERIT, APPROVAL, id="approval-stack-inherit"),
    pytest.param(APPROVAL, ENFORCE, ENFORCE, id="approval-stack-enforce-playbook-acts"),
    pytest.param(APPROVAL, DRY_RUN, DRY_RUN, id="approval-stack-dry-run-playbook-plans"),
    pytest.param(DRY_RUN, INHERIT, DRY_RUN, id="dry-run-stack-inherit"),
    pytest.param(DRY_RUN, APPROVAL, DRY_RUN, id="dry-run-stack-approval-playbook-never-loosens-it"),
    pytest.param(DRY_RUN, DRY_RUN, DRY_RUN, id="dry-run-stack-dry-run-playbook"),
    pytest.param(DRY_RUN, ENFORCE, ENFORCE, id="dry-run-stack-explicit-enforce-playbook-still-wins"),
]


def settings(response_mode: Mode, own: dict[Playbook, Mode]) -> Settings:
    return Settings(
        incident_table="incidents",
        responder_topic_arn="arn:aws:sns:us-east-1:123456789012:topic",
        blocked_ipv4_set_arn="",
        blocked_ipv6_set_arn="",
        response_mode=response_mode,
        playbook_modes=tuple(own.items()),
        allow_list=(),
        max_addresses_per_incident=50,
    )


@pytest.mark.parametrize("playbook", sorted(PLAYBOOK_MODE_VARIABLES))
@pytest.mark.parametrize(("stack", "own", "expected"), MODES)
def test_playbook_mode_against_the_stacks_mode(
    playbook: Playbook, stack: Mode, own: Mode | None, expected: Mode
) -> None:
    # GIVEN a stack mode, and every playbook set to one mode of its own or left to inherit
    configured = settings(stack, {} if own is None else dict.fromkeys(PLAYBOOK_MODE_VARIABLES, own))

    # WHEN the playbook's mode is read
    mode = configured.mode_for(playbook)

    # THEN approval never loosens dry-run, an explicit enforce or dry-run wins, and inherit takes the stack's
    assert mode is expected


def test_dry_run_stack_with_the_default_contain_database_mode_only_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the environment a dry-run stack gives its functions, ContainDatabaseMode left at its default (approval)
    for variable in PLAYBOOK_MODE_VARIABLES.values():
        monkeypatch.setenv(variable, "inherit")
    monkeypatch.setenv("RESPONSE_MODE", "dry-run")
    monkeypatch.setenv("CONTAIN_DATABASE_MODE", "approval")
    monkeypatch.setenv("CONTAIN_INSTANCE_MODE", "enforce")

    # WHEN the playbooks' modes are read from it
    configured = Settings.from_env()

    # THEN contain-database plans like every inheriting playbook, and only the explicitly enforcing one acts
    assert configured.mode_for(Playbook.CONTAIN_DATABASE) is DRY_RUN
    assert configured.mode_for(Playbook.BLOCK_IP) is DRY_RUN
    assert configured.mode_for(Playbook.CONTAIN_INSTANCE) is ENFORCE
