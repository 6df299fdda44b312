"""What every node of one endpoint shares: DynamoDB, the caches, the attribute lists and the
roster that discovery answers with.

Real DAX nodes each keep their own caches; here they share them, so that a test sees the same
staleness whichever node the client's random routing picks.
"""

from __future__ import annotations

import json
from base64 import b64encode
from dataclasses import dataclass, field
from typing import Any

from uoom_orders_dax.attribute_lists import AttributeLists
from uoom_orders_dax.caches import ItemCache, QueryCache
from uoom_orders_dax.dynamodb import DynamoDBForwarder
from uoom_orders_dax.keys import KeySchema, encode_key
from uoom_orders_dax.values import Item


@dataclass(frozen=True)
class NodeAddress:
    host: str
    port: int


@dataclass
class SharedState:
    dynamodb: DynamoDBForwarder
    items: ItemCache
    queries: QueryCache
    attribute_lists: AttributeLists = field(default_factory=AttributeLists)
    nodes: list[NodeAddress] = field(default_factory=list)  # the first is the leader

    async def get_item(
        self, table: str, schema: KeySchema, key: Item, consistent: bool
    ) -> Item | None:
        """An item through the item cache; strongly consistent reads bypass it, as in DAX."""
        cache_key = (table, encode_key(key, schema))
        if not consistent:
            hit = self.items.get(cache_key)
            if hit is not None:
                return hit.value
        answer = await self.dynamodb.call(
            "get_item", TableName=table, Key=key, ConsistentRead=consistent
        )
        item: Item | None = answer.get("Item")
        if not consistent:
            self.items.put(cache_key, item)
        return item

    async def query(self, request: dict[str, Any]) -> dict[str, Any]:
        """A Query through the query cache, keyed by the whole forwarded request."""
        consistent = bool(request.get("ConsistentRead"))
        cache_key = json.dumps(request, sort_keys=True, default=_bytes_as_text)
        if not consistent:
            hit = self.queries.get(cache_key)
            if hit is not None:
                return hit.value
        answer = await self.dynamodb.call("query", **request)
        if not consistent:
            self.queries.put(cache_key, answer)
        return answer

    def remember_item(self, table: str, schema: KeySchema, key: Item, item: Item | None) -> None:
        """A write through DAX: the item cache now holds what was written."""
        self.items.put((table, encode_key(key, schema)), item)

    def forget_item(self, table: str, schema: KeySchema, key: Item) -> None:
        self.items.discard((table, encode_key(key, schema)))


def _bytes_as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return b64encode(value).decode()
    raise TypeError(f"cannot serialise {type(value).__name__}")
