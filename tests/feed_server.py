"""A threat-feed server for tests, on 127.0.0.1 only: static feed files and a minimal TAXII 2.1 API root.

Routes answer with a body, a status, or a body cut off halfway (Content-Length promises more than is sent); the TAXII
collection pages its objects with `more`/`next` and can be told to fail one page with HTTP 500.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import SERVER_POLL_SECONDS

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
API_ROOT = "/taxii2/api"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain"
    truncate: bool = False
    location: str | None = None


@dataclass
class Collection:
    objects: list[dict[str, Any]]
    page_size: int = 2
    fail_at_offset: int | None = None


@dataclass
class FeedServer:
    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def api_root(self) -> str:
        return self.base_url + API_ROOT + "/"

    def serve(self, path: str, body: str | bytes, **options: Any) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **options)
        return self.url(path)


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            parts = urllib.parse.urlsplit(self.path)
            server.requests.append((self.path, dict(self.headers.items())))
            if parts.path.startswith(API_ROOT + "/collections/"):
                self._taxii(parts.path.removeprefix(API_ROOT + "/collections/"), urllib.parse.parse_qs(parts.query))
                return
            route = server.routes.get(parts.path)
            if route is None:
                self._send(404, b"not found", "text/plain")
                return
            self._send(route.status, route.body, route.content_type, route.truncate, route.location)

        def _taxii(self, rest: str, query: dict[str, list[str]]) -> None:
            collection_id, _, tail = rest.partition("/")
            collection = server.collections.get(collection_id)
            if collection is None:
                self._send(404, b'{"title": "no such collection"}', TAXII_MEDIA_TYPE)
                return
            if tail == "":
                info = {"id": collection_id, "title": collection_id, "can_read": True, "can_write": False}
                self._send(200, json.dumps({**info, "media_types": [TAXII_MEDIA_TYPE]}).encode(), TAXII_MEDIA_TYPE)
                return
            offset = int(query.get("next", ["0"])[0])
            if collection.fail_at_offset is not None and offset >= collection.fail_at_offset:
                self._send(500, b'{"title": "internal error"}', TAXII_MEDIA_TYPE)
                return
            wanted = query.get("match[type]", [None])[0]
            objects = [o for o in collection.objects if wanted is None or o.get("type") == wanted]
            page = objects[offset : offset + collection.page_size]
            envelope: dict[str, Any] = {"more": offset + collection.page_size < len(objects), "objects": page}
            if envelope["more"]:
                envelope["next"] = str(offset + collection.page_size)
            self._send(200, json.dumps(envelope).encode(), TAXII_MEDIA_TYPE)

        def _send(
            self, status: int, body: bytes, content_type: str, truncate: bool = False, location: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # Half the promised body, then the connection closes: a download that broke in the middle.
            self.wfile.write(body[: len(body) // 2] if truncate else body)
            if truncate:
                self.close_connection = True

    return Handler


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    """A FeedServer listening on an ephemeral port of 127.0.0.1, stopped when the block ends."""
    state = FeedServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": SERVER_POLL_SECONDS}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
