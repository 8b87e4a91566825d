"""A threat-intelligence stand-in on 127.0.0.1: replays canned answers, hangs, throttles or talks garbage, and counts.

Tests point the providers' base URLs at it; nothing else is ever contacted. Answers are keyed by path prefix, so
one server can play every provider at once (each under its own prefix).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import SERVER_POLL_SECONDS

DATA = Path(__file__).parent / "data" / "intel"


def documented(name: str) -> Any:
    """A provider answer in its documented shape, from tests/data/intel/<name>.json."""
    return json.loads((DATA / f"{name}.json").read_text("utf-8"))


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    raw: bytes | None = None
    hang: bool = False


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class FakeIntel:
    """The server's script and what it saw."""

    base_url: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, prefix: str, status: int = 200, body: Any = None, raw: bytes | None = None) -> None:
        self.answers[prefix] = Answer(status, body, raw)

    def hang(self, prefix: str) -> None:
        """Answer nothing until the test ends: a provider that is up but never responds."""
        self.answers[prefix] = Answer(hang=True)

    def url(self, prefix: str) -> str:
        return self.base_url + prefix

    def count(self, prefix: str = "") -> int:
        with self.lock:
            return sum(1 for request in self.requests if request.path.startswith(prefix))

    def answer_for(self, path: str) -> Answer:
        matches = [prefix for prefix in self.answers if path.startswith(prefix)]
        return self.answers[max(matches, key=len)] if matches else Answer(404, {"error": "no script for " + path})


def _handler(intel: FakeIntel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with intel.lock:
                intel.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}))
            answer = intel.answer_for(self.path)
            if answer.hang:
                intel.release.wait(30)
                return
            payload = answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def fake_intel() -> Iterator[FakeIntel]:
    """Serve on an ephemeral port of 127.0.0.1 for the duration of the block."""
    intel = FakeIntel()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(intel))
    server.daemon_threads = True
    server.block_on_close = False  # type: ignore[attr-defined]
    intel.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL_SECONDS}, name="fake-intel", daemon=True
    )
    thread.start()
    try:
        yield intel
    finally:
        intel.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
