"""What the read queries need from a store of the read model; one adapter per tier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.domain.order import OrderStatus


class ListScope(StrEnum):
    """Whose orders a list query returns."""

    CUSTOMER = "customer"
    RESTAURANT = "restaurant"


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page ends: the last order's (updated_at, order_id). Lists run newest first."""

    updated_at: datetime
    order_id: UUID


@dataclass(frozen=True, slots=True)
class ListQuery:
    scope: ListScope
    owner_id: UUID
    status: OrderStatus | None
    limit: int
    after: PageCursor | None


class OrderReadStore(Protocol):
    """A tier of the read path. None means "not here"; a store failure raises."""

    name: str

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None: ...

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None: ...

    async def get_summaries(
        self, order_ids: Sequence[UUID]
    ) -> dict[UUID, order_pb2.OrderSummary]: ...

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        """Up to `query.limit` orders after the cursor, newest first."""
        ...
