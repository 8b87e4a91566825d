"""Fetching feeds whole or not at all from 127.0.0.1: size caps, cut-off bodies, redirects, credentials, TAXII."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import boto3
import pytest
from taxii2client.v21 import Collection as TaxiiCollection

from firebreak.core.errors import FeedFetchFailed
from firebreak.feeds.config import Feed, FeedAuth
from firebreak.feeds.sources import check_url, fetch, fetch_url
from tests.feed_server import Collection, FeedServer, feed_server
from tests.threat_feeds import taxii_objects


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://feeds.example/a.txt", True),
        ("http://127.0.0.1:8000/a.txt", True),
        ("http://localhost/a.txt", True),
        ("http://[::1]/a.txt", True),
        ("http://feeds.example/a.txt", False),
        ("http://10.0.0.1/a.txt", False),
        ("file:///etc/passwd", False),
        ("ftp://feeds.example/a.txt", False),
    ],
)
def test_only_https_or_loopback_http_is_fetched(url: str, allowed: bool) -> None:
    if allowed:
        check_url(url)
    else:
        with pytest.raises(FeedFetchFailed, match="HTTPS only"):
            check_url(url)


def test_body_larger_than_the_cap_fails(server: FeedServer) -> None:
    url = server.serve("/big.txt", "45.155.205.10\n" * 200)
    with pytest.raises(FeedFetchFailed, match="more than 1024 bytes"):
        fetch_url(url, {}, {}, 5, 1024)


def test_body_cut_off_halfway_fails_instead_of_reading_short(server: FeedServer) -> None:
    url = server.serve("/cut.txt", "45.155.205.10\n" * 50, truncate=True)
    with pytest.raises(FeedFetchFailed, match="closed the connection"):
        fetch_url(url, {}, {}, 5, 1 << 20)


def test_http_error_fails_with_the_status(server: FeedServer) -> None:
    url = server.serve("/down.txt", "oops", status=503)
    with pytest.raises(FeedFetchFailed, match="HTTP 503"):
        fetch_url(url, {}, {}, 5, 1 << 20)


def test_redirect_to_plain_http_elsewhere_is_refused(server: FeedServer) -> None:
    url = server.serve("/moved.txt", "", status=302, location="http://feeds.example/a.txt")
    with pytest.raises(FeedFetchFailed, match="HTTPS only"):
        fetch_url(url, {}, {}, 5, 1 << 20)


def test_credentials_from_secrets_manager_go_to_the_feed_host_but_never_follow_a_redirect(
    aws: None, server: FeedServer
) -> None:
    # GIVEN a basic-auth secret and a feed URL that redirects (to the same server)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="firebreak/feeds/a", SecretString=json.dumps({"username": "u", "password": "p"}))
    server.serve("/final.txt", "45.155.205.10\n")
    url = server.serve("/start.txt", "", status=301, location=server.url("/final.txt"))
    feed = Feed(name="a", format="plaintext", url=url, auth=FeedAuth("firebreak/feeds/a", "basic"))

    # WHEN it is fetched
    body = fetch(feed, secrets, None)

    # THEN the first request carried the credentials and the redirected one did not
    assert body == b"45.155.205.10\n"
    (first, first_headers), (second, second_headers) = server.requests
    assert first == "/start.txt" and second == "/final.txt"
    assert first_headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert "Authorization" not in second_headers


def test_api_key_header_comes_from_the_secret(aws: None, server: FeedServer) -> None:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="firebreak/feeds/key", SecretString="s3cr3t\n")
    url = server.serve("/a.txt", "45.155.205.10\n")
    feed = Feed(name="a", format="plaintext", url=url, auth=FeedAuth("firebreak/feeds/key", "header", "X-Api-Key"))
    fetch(feed, secrets, None)
    assert server.requests[0][1]["X-Api-Key"] == "s3cr3t"


def test_missing_secret_fails_the_fetch(aws: None, server: FeedServer) -> None:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    feed = Feed(name="a", format="plaintext", url=server.url("/a.txt"), auth=FeedAuth("firebreak/feeds/no", "basic"))
    with pytest.raises(FeedFetchFailed, match="cannot read secret"):
        fetch(feed, secrets, None)


def test_s3_object_is_read_and_a_missing_one_fails(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="feed-bucket")
    s3.put_object(Bucket="feed-bucket", Key="feeds/a.txt", Body=b"45.155.205.10\n")
    assert fetch(Feed(name="a", format="plaintext", url="s3://feed-bucket/feeds/a.txt"), None, s3) == b"45.155.205.10\n"
    with pytest.raises(FeedFetchFailed, match="NoSuchKey"):
        fetch(Feed(name="a", format="plaintext", url="s3://feed-bucket/feeds/none.txt"), None, s3)


def test_taxii_collection_is_read_page_by_page(server: FeedServer) -> None:
    # GIVEN a collection of five indicators served two per page
    served = taxii_objects()
    server.collections["intel"] = Collection(served, page_size=2)
    feed = Feed(name="intel", format="taxii", url=server.api_root, collection="intel")

    # WHEN it is fetched
    objects = fetch(feed, None, None)

    # THEN all five came back over three requests following next
    assert objects == served
    queries = [path.split("?", 1)[1] for path, _ in server.requests]
    assert queries == [
        "match%5Btype%5D=indicator",
        "match%5Btype%5D=indicator&next=2",
        "match%5Btype%5D=indicator&next=4",
    ]


def test_taxii_page_that_fails_halfway_fails_the_whole_feed(server: FeedServer) -> None:
    server.collections["intel"] = Collection(taxii_objects(), page_size=2, fail_at_offset=2)
    feed = Feed(name="intel", format="taxii", url=server.api_root, collection="intel")
    with pytest.raises(FeedFetchFailed, match="HTTP 500"):
        fetch(feed, None, None)


def test_test_server_speaks_taxii_as_taxii2_client_reads_it(server: FeedServer) -> None:
    # GIVEN the test TAXII endpoint the feed tests rely on
    server.collections["intel"] = Collection(taxii_objects(), page_size=2)
    # WHEN the reference client reads the collection and its first page
    collection = TaxiiCollection(f"{server.api_root}collections/intel/")
    envelope = collection.get_objects()
    # THEN it accepts the media type and the envelope
    assert collection.can_read is True
    assert envelope["more"] is True and len(envelope["objects"]) == 2 and envelope["next"] == "2"
