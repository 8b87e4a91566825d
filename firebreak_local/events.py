"""Event files as EventBridge would deliver them: read, size-checked and shape-checked, or one clear reason why not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# EventBridge refuses a PutEvents entry over 256 KB, so no rule, and no state machine, ever sees a larger event.
EVENTBRIDGE_EVENT_LIMIT_BYTES = 256 * 1024


class Unusable(Exception):
    """An argument or event file the command cannot use; the message is the one line printed for it."""


def read_event(path: str) -> dict[str, Any]:
    """One EventBridge event from a file, or Unusable saying exactly what is wrong with it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise Unusable(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise Unusable(f"{path}: not UTF-8 text") from None
    if len(text.encode()) > EVENTBRIDGE_EVENT_LIMIT_BYTES:
        raise Unusable(f"{path}: larger than EventBridge's 256 KB event limit: PutEvents would refuse it, nothing runs")
    try:
        event = json.loads(text)
    except ValueError as error:
        raise Unusable(f"{path}: not JSON: {error}") from None
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise Unusable(f"{path}: not an EventBridge event: no 'detail' object")
    missing = [key for key in ("source", "detail-type") if not isinstance(event.get(key), str)]
    if missing:
        raise Unusable(f"{path}: not an EventBridge event: no {' or '.join(repr(key) for key in missing)}")
    return event
