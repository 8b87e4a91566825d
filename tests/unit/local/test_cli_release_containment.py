"""`firebreak run --release` for a contained instance and a revoked key: the world reported is the world before."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from firebreak_local.cli import main
from tests.support import ROOT, load_event

SCHEMA = json.loads((ROOT / "contracts" / "run-report.schema.json").read_text())
CRYPTO_MINING = "events/eventbridge/guardduty_crypto_mining.json"
KEY_COMPROMISED = "events/eventbridge/guardduty_iam_user_key_compromised.json"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def finding_groups(name: str) -> list[list[str]]:
    """Each interface's group ids as the finding names them, in device order."""
    interfaces = load_event(name)["detail"]["resource"]["instanceDetails"]["networkInterfaces"]
    return [sorted(group["groupId"] for group in eni["securityGroups"]) for eni in interfaces]


def test_release_of_a_contained_instance_and_a_revoked_key_reports_the_world_as_it_was(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN crypto mining on an instance and a compromised access key
    # WHEN both run with --json --release
    status = main(["run", "--json", "--release", CRYPTO_MINING, KEY_COMPROMISED])
    document: dict[str, Any] = json.loads(capsys.readouterr().out)

    # THEN the report is valid and both incidents are RELEASED, each undo step listed as released
    jsonschema.validate(document, SCHEMA)
    assert status == 0
    assert [r["status"] for r in document["results"]] == ["RELEASED", "RELEASED"]
    contain, revoke = document["results"]
    assert [a["outcome"] for a in contain["actions"] if a["type"] == "isolate_instance"][-4:] == ["released"] * 4
    assert [a["outcome"] for a in revoke["actions"] if a["type"] == "revoke_credentials"][-2:] == ["released"] * 2

    # AND the instance is back in its own groups, unprotected and untagged, with its snapshot kept as evidence
    (instance,) = document["world"]["instances"].values()
    assert instance["security_groups"] == finding_groups("eventbridge/guardduty_crypto_mining")
    assert instance["quarantined"] is False
    assert instance["termination_protection"] is False
    assert instance["snapshots"] == 1
    assert not [key for key in instance["tags"] if key.startswith("firebreak:") and key != "firebreak:finding-id"]

    # AND the key is active again and nothing is blocked any more
    key = load_event("eventbridge/guardduty_iam_user_key_compromised")["detail"]["resource"]["accessKeyDetails"]
    assert document["world"]["access_keys"] == {key["accessKeyId"]: "Active"}
    assert document["world"]["blocked_ips"] == []
