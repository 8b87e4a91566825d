"""`firebreak run --json` on credential findings: every revoke-credentials case is visible in the world report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from firebreak_local.cli import main
from tests.support import ROOT, load_event

SCHEMA = json.loads((ROOT / "contracts" / "run-report.schema.json").read_text())
USER_FINDING = "events/eventbridge/guardduty_iam_user_key_compromised.json"
ROLE_FINDING = "events/eventbridge/guardduty_access_key_malicious_ip.json"
ROOT_FINDING = "events/eventbridge/guardduty_root_credential_usage.json"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def variant(tmp_path: Path, name: str, base: str, finding_id: str, **details: Any) -> str:
    """An event file like events/eventbridge/<base>, with its own finding id and accessKeyDetails changed."""
    event = copy.deepcopy(load_event(f"eventbridge/{base}"))
    event["detail"]["id"] = finding_id
    event["detail"]["resource"]["accessKeyDetails"].update(details)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(event))
    return str(path)


def test_world_shows_each_revocation_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN credential findings of every kind, in one account:
    #   a sample finding that seeds a second key of ci-deployer (samples only plan), the real finding on its first
    #   key, an instance role, root, an AWS service, one of Firebreak's own roles, and a redelivery
    files = [
        variant(
            tmp_path, "other_key", "guardduty_iam_user_key_compromised", "0a8c0a8c", accessKeyId="AKIAZ4FQH7XKN2LD3VB9"
        ),
        USER_FINDING,
        ROLE_FINDING,
        ROOT_FINDING,
        variant(tmp_path, "service", "guardduty_iam_user_key_compromised", "5e5e5e5e", userType="AWSService"),
        variant(
            tmp_path,
            "own_role",
            "guardduty_access_key_malicious_ip",
            "0f0f0f0f",
            userName="firebreak-RevokeCredentialsFunctionRole-1A2B3C",
        ),
        USER_FINDING,
    ]
    sample = json.loads(Path(files[0]).read_text())
    sample["detail"]["service"]["additionalInfo"]["sample"] = True
    Path(files[0]).write_text(json.dumps(sample))

    # WHEN they run through `firebreak run --json`
    status = main(["run", "--json", *files])
    document = json.loads(capsys.readouterr().out)

    # THEN the report is valid, and each case is told apart by its status
    jsonschema.validate(document, SCHEMA)
    results = document["results"]
    assert status == 0
    assert [(r["playbook"], r["status"]) for r in results] == [
        ("revoke-credentials", "DRY_RUN"),
        ("revoke-credentials", "CONTAINED"),
        ("revoke-credentials", "CONTAINED"),
        ("notify-only", "NOTIFIED"),
        ("notify-only", "NOTIFIED"),
        ("revoke-credentials", "PARTIALLY_CONTAINED"),
        ("revoke-credentials", "DUPLICATE"),
    ]
    own_role = [a for a in results[5]["actions"] if a["type"] == "revoke_credentials"]
    assert [a["outcome"] for a in own_role] == ["skipped"]
    # AND the world shows the finding's key inactive, the other key of the same user still active, the instance role
    # revoked, Firebreak's own role untouched, and root and the service left alone
    world = document["world"]
    assert world["access_keys"] == {"AKIAZ4FQH7XKN2LD3VB9": "Active", "AKIAZ4FQH7XKN2LD3VB6": "Inactive"}
    assert world["revoked_roles"] == ["web-server-role"]
    assert world["incidents"] == 6
    assert len(world["notifications"]) == 6
