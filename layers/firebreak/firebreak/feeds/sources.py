"""Fetching a feed whole or not at all: HTTPS (urllib, timeout, size cap), S3 objects and TAXII 2.1 collections.

Any download that does not complete raises FeedFetchFailed, so a broken feed never looks like an empty one.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from firebreak.core.errors import FeedFetchFailed, FeedParseFailed
from firebreak.feeds.config import Feed, FeedAuth

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
MAX_TAXII_PAGES = 100
_CHUNK = 64 * 1024
_USER_AGENT = "firebreak-feeds/1"


def check_url(url: str) -> None:
    """HTTPS only; plain HTTP just to a loopback host, which is where local tests serve feeds."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise FeedFetchFailed(f"refusing {parts.scheme or 'no'} scheme for {parts.hostname or url[:100]}: HTTPS only")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL the feed itself could have named (no downgrade to plain HTTP)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def auth_headers(auth: FeedAuth | None, secrets: Any) -> dict[str, str]:
    """The credential header for a feed, from its Secrets Manager secret."""
    if auth is None:
        return {}
    try:
        secret = secrets.get_secret_value(SecretId=auth.secret_id)["SecretString"]
    except ClientError as error:
        raise FeedFetchFailed(f"cannot read secret {auth.secret_id}: {error.response['Error']['Code']}") from None
    if auth.scheme == "header":
        return {auth.header or "X-Api-Key": secret.strip()}
    try:
        credentials = json.loads(secret)
        pair = f"{credentials['username']}:{credentials['password']}"
    except (ValueError, KeyError, TypeError):
        raise FeedFetchFailed(f"secret {auth.secret_id} is not JSON with username and password") from None
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def fetch_url(
    url: str, headers: Mapping[str, str], secret_headers: Mapping[str, str], timeout: float, max_bytes: int
) -> bytes:
    """The whole body, or FeedFetchFailed: HTTP errors, timeouts, a body over max_bytes or cut short."""
    check_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **headers})
    for name, value in secret_headers.items():
        # Unredirected: credentials go to the host the feed names, never to one a redirect points at.
        request.add_unredirected_header(name, value)
    opener = urllib.request.build_opener(_CheckedRedirects())
    host = urllib.parse.urlsplit(url).hostname
    chunks: list[bytes] = []
    size = 0
    try:
        with opener.open(request, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FeedFetchFailed(f"{host} sent more than {max_bytes} bytes")
                chunks.append(chunk)
            # http.client returns a short body without complaint when the server hangs up early.
            if getattr(response, "length", None):
                raise FeedFetchFailed(f"{host} closed the connection after {size} bytes, {response.length} short")
    except urllib.error.HTTPError as error:
        raise FeedFetchFailed(f"{host} answered HTTP {error.code}") from None
    except urllib.error.URLError as error:
        raise FeedFetchFailed(f"cannot reach {host}: {error.reason}") from None
    except (http.client.HTTPException, TimeoutError, ConnectionError) as error:
        raise FeedFetchFailed(f"download from {host} broke: {type(error).__name__}") from None
    return b"".join(chunks)


def fetch_s3(url: str, s3: Any, max_bytes: int) -> bytes:
    parts = urllib.parse.urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        raise FeedFetchFailed(f"cannot read s3://{bucket}/{key}: {error.response['Error']['Code']}") from None
    if response["ContentLength"] > max_bytes:
        raise FeedFetchFailed(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
    body: bytes = response["Body"].read()
    return body


def fetch_taxii(feed: Feed, secret_headers: Mapping[str, str]) -> list[Any]:
    """Every object of a TAXII 2.1 collection, following `more`/`next` to the last page (bounded)."""
    base = f"{feed.url.rstrip('/')}/collections/{urllib.parse.quote(feed.collection or '', safe='')}/objects/"
    params = {"match[type]": "indicator"}
    objects: list[Any] = []
    budget = feed.max_bytes
    for _ in range(MAX_TAXII_PAGES):
        page_url = f"{base}?{urllib.parse.urlencode(params)}"
        body = fetch_url(page_url, {"Accept": TAXII_MEDIA_TYPE}, secret_headers, feed.timeout_seconds, budget)
        budget -= len(body)
        try:
            envelope = json.loads(body)
        except ValueError as error:
            raise FeedParseFailed(f"TAXII envelope is not JSON: {error}") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("objects", []), list):
            raise FeedParseFailed("not a TAXII 2.1 envelope: no objects list")
        objects += envelope.get("objects", [])
        if envelope.get("more") is not True:
            return objects
        if not isinstance(envelope.get("next"), str) or not envelope["next"]:
            raise FeedParseFailed("TAXII envelope says more but gives no next")
        params["next"] = envelope["next"]
    raise FeedFetchFailed(f"TAXII collection {feed.collection} has more than {MAX_TAXII_PAGES} pages")


def fetch(feed: Feed, secrets: Any, s3: Any) -> bytes | Sequence[Any]:
    """The feed's document (bytes), or for taxii the objects of every page."""
    if feed.url.startswith("s3://"):
        if feed.format == "taxii":
            raise FeedFetchFailed("a TAXII collection is read over HTTPS, not from S3")
        return fetch_s3(feed.url, s3, feed.max_bytes)
    secret_headers = auth_headers(feed.auth, secrets)
    if feed.format == "taxii":
        return fetch_taxii(feed, secret_headers)
    return fetch_url(feed.url, {}, secret_headers, feed.timeout_seconds, feed.max_bytes)
