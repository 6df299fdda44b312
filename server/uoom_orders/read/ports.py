"""The read path's ports: what the read queries need from a store of the read model (one
adapter per tier), and from what copies an answer up and what remembers versions."""

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


class NotServing(Exception):
    """A store that is up declines to answer for now (e.g. the near cache while its feed is
    down): the read path passes over it as it would over a miss, which is not a failure."""


class OrderReadStore(Protocol):
    """A tier of the read path. None means "not here"; NotServing means "not now"; a store
    failure raises anything else."""

    name: str

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None: ...

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None: ...

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        """The orders found, keyed by their ids' integers (`UUID.int`): a UUID's hash is
        Python code, and a batch read would hash each id three times over."""
        ...

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        """Up to `query.limit` orders after the cursor, newest first."""
        ...


class WriteBack(Protocol):
    """Copies an order found only in PostgreSQL into the read model (in the background)."""

    def schedule(self, summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        """`summary` as PostgreSQL answered it, with the whole `order` if that was read."""
        ...


class VersionMemory(Protocol):
    """What this replica remembers of the versions it has seen (the near cache, see
    near_cache.py): its floors, and the one way to go below them."""

    def floor(self, order_id: UUID) -> int:
        """The newest version of the order seen here; 0 when none is remembered."""
        ...

    def floors(self, order_ids: Sequence[UUID]) -> dict[int, int]:
        """`floor` of each remembered id, keyed by the id's integer; others are left out."""
        ...

    def replace(
        self,
        summary: order_pb2.OrderSummary,
        order: order_pb2.Order | None,
        expires_at: float,
        *,
        if_version: int | None,
    ) -> bool:
        """Stores what the source of truth said although it is older than the floor."""
        ...
