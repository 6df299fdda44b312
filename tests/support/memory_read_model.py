"""An in-memory read model for unit tests: the same items and the same condition as DynamoDB.

Kept honest by the contract suite in tests/contract, which runs the same tests against this
fake and against `ReadModelWriter` on a DynamoDB endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.ports import PutResult, ReadModelUnavailable
from uoom_orders.dynamodb.tables import TableNames


class InMemoryReadModelWriter:
    """Holds both tables as dicts of items keyed by order id.

    Set `unavailable` to make writes raise ReadModelUnavailable, as an outage would.
    """

    def __init__(
        self, table_prefix: str = "memory-", *, clock: Callable[[], float] = time.time
    ) -> None:
        self.tables = TableNames.for_prefix(table_prefix)
        self.items: dict[str, dict[str, items.Item]] = {name: {} for name in self.tables.all()}
        self.unavailable = False
        self._clock = clock

    async def put_order(self, order: order_pb2.Order, ttl_epoch: int) -> PutResult:
        status = items.status_item(order, ttl_epoch)
        details = items.details_item(order, ttl_epoch)
        await asyncio.sleep(0)  # a real write yields to the loop; so does this one
        if self.unavailable:
            raise ReadModelUnavailable("the in-memory read model is marked unavailable")
        now = self._clock()
        return PutResult(
            order.order_id,
            order.version,
            self._put(self.tables.status, status, order.version, now),
            self._put(self.tables.details, details, order.version, now),
        )

    async def put_status(self, summary: order_pb2.OrderSummary, ttl_epoch: int) -> bool:
        status = items.status_item(summary, ttl_epoch)
        await asyncio.sleep(0)
        if self.unavailable:
            raise ReadModelUnavailable("the in-memory read model is marked unavailable")
        return self._put(self.tables.status, status, summary.version, self._clock())

    def get(self, table: str, order_id: str) -> items.Item | None:
        """The stored item, expired or not (as GetItem returns it)."""
        return self.items[table].get(order_id)

    def _put(self, table: str, item: items.Item, version: int, now: float) -> bool:
        # Mirrors ReadModelWriter's condition expression.
        current = self.items[table].get(item[items.ORDER_ID]["S"])
        if current is not None:
            current_version = items.item_version(current)
            same_but_expired = current_version == version and items.is_expired(current, int(now))
            if not (current_version < version or same_but_expired):
                return False
        self.items[table][item[items.ORDER_ID]["S"]] = item
        return True
