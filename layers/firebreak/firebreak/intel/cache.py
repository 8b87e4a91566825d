"""Provider answers cached in DynamoDB per provider and address, so a storm of findings does not spend the quota."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from firebreak.intel.providers import CACHEABLE, Provider, ProviderResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)


class ResultCache:
    """One item per provider and address: {key, result (JSON), expires_at (the table's TTL attribute)}."""

    def __init__(
        self, dynamodb: DynamoDBClient, table: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    @staticmethod
    def key(provider: str, address: str) -> str:
        return f"{provider}#{address}"

    def get(self, provider: str, address: str) -> ProviderResult | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"key": {"S": self.key(provider, address)}}, ConsistentRead=False
        ).get("Item")
        # DynamoDB deletes expired items only eventually (within days), so expiry is checked here too.
        if not item or float(item["expires_at"]["N"]) <= self._clock():
            return None
        return replace(ProviderResult.from_dict(json.loads(item["result"]["S"])), cached=True, elapsed_ms=0)

    def put(self, address: str, result: ProviderResult) -> None:
        stored = replace(result, cached=False, elapsed_ms=0).to_dict()
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "key": {"S": self.key(result.provider, address)},
                "result": {"S": json.dumps(stored)},
                "expires_at": {"N": str(int(self._clock()) + self._ttl_seconds)},
            },
        )


class CachedProvider:
    """A provider that asks the cache first and keeps definitive answers; a cache failure only costs a lookup."""

    def __init__(self, inner: Provider, cache: ResultCache) -> None:
        self.name = inner.name
        self._inner = inner
        self._cache = cache

    def lookup(self, address: str, deadline: float) -> ProviderResult:
        try:
            hit = self._cache.get(self.name, address)
        except (ClientError, BotoCoreError, ValueError, KeyError) as error:
            logger.warning("Enrichment cache unreadable", extra={"provider": self.name, "error": str(error)})
            hit = None
        if hit is not None:
            return hit
        result = self._inner.lookup(address, deadline)
        if result.status in CACHEABLE:
            try:
                self._cache.put(address, result)
            except (ClientError, BotoCoreError) as error:
                logger.warning("Enrichment cache not written", extra={"provider": self.name, "error": str(error)})
        return result
