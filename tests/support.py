"""Helpers the tests share: where the repo is, and the sample events in events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


def load_event(name: str) -> dict[str, Any]:
    """An event from events/ by its path without .json: load_event("eventbridge/guardduty_ssh_brute_force")."""
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event
