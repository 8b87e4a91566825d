"""Feed documents to candidate values: plaintext lines, a CSV column, STIX 2.1 bundles and TAXII envelopes."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from firebreak.core.errors import FeedParseFailed
from firebreak.feeds.config import Candidate, Feed, Parsed, Rejection
from firebreak.feeds.stix import indicator_candidates

_COMMENT = re.compile(r"[#;]")


def decode(body: bytes, feed: Feed) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedParseFailed(f"feed {feed.name} is not UTF-8 text") from None


def parse_plaintext(text: str) -> Parsed:
    """One address or CIDR per line; '#' and ';' start comments; anything else on a line makes it malformed."""
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    for number, line in enumerate(text.splitlines(), 1):
        value = _COMMENT.split(line, maxsplit=1)[0].strip()
        if not value:
            continue
        if len(value.split()) > 1:
            rejections.append(Rejection(value[:200], f"line {number}", "more than one value on the line"))
            continue
        candidates.append(Candidate(value, f"line {number}"))
    return Parsed(tuple(candidates), tuple(rejections))


def parse_csv(text: str, column: str, delimiter: str = ",") -> Parsed:
    """The named column of a CSV whose first non-comment row is the header; '#' lines are comments."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    try:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header = [name.strip() for name in next(reader, [])]
        if column not in header:
            raise FeedParseFailed(f"CSV has no column {column!r} (columns: {', '.join(header)[:200] or 'none'})")
        index = header.index(column)
        for number, row in enumerate(reader, 2):
            value = row[index].strip() if index < len(row) else ""
            if value:
                candidates.append(Candidate(value, f"row {number}"))
            else:
                rejections.append(Rejection("", f"row {number}", f"no {column} value"))
    except csv.Error as error:
        raise FeedParseFailed(f"CSV is malformed: {error}") from None
    return Parsed(tuple(candidates), tuple(rejections))


def bundle_objects(text: str) -> Sequence[Any]:
    """The objects of a STIX 2.1 bundle."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise FeedParseFailed(f"STIX bundle is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("type") != "bundle":
        raise FeedParseFailed("not a STIX bundle: no top-level type 'bundle'")
    objects = document.get("objects", [])
    if not isinstance(objects, list):
        raise FeedParseFailed("STIX bundle objects is not a list")
    return objects


def parse_document(feed: Feed, body: bytes | Sequence[Any], now: datetime) -> Parsed:
    """Candidates from a fetched feed: bytes for plaintext, csv and stix; the collected objects for taxii."""
    if feed.format == "taxii":
        return indicator_candidates(body, now)
    if not isinstance(body, bytes):
        raise FeedParseFailed(f"feed {feed.name} did not yield a document")
    text = decode(body, feed)
    if feed.format == "plaintext":
        return parse_plaintext(text)
    if feed.format == "csv":
        return parse_csv(text, feed.column or "", feed.delimiter)
    return indicator_candidates(bundle_objects(text), now)
