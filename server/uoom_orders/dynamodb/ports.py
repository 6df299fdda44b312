"""What the projector, the rebuild and the read path's write-back need from the read model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from uoom.orders.v1 import order_pb2


@dataclass(frozen=True, slots=True)
class PutResult:
    """What one `put_order` did to each table.

    A table not written already held this version or a newer one (a stale or duplicate write),
    which is the expected outcome of at-least-once delivery, not an error.
    """

    order_id: str
    version: int
    status_written: bool
    details_written: bool

    @property
    def applied(self) -> bool:
        """True when at least one table took the write."""
        return self.status_written or self.details_written


class ReadModelWriteRejected(Exception):
    """The read model refused this order (e.g. an item over the size limit, an invalid value).

    Retrying cannot help: the projector dead-letters the event.
    """


class ReadModelUnavailable(Exception):
    """The read model could not be reached or kept throttling, after the writer's retries.

    Nothing about the order is wrong: the projector keeps the event and retries later.
    """


class ReadModelThrottled(ReadModelUnavailable):
    """The read model answered but kept refusing for throughput: an outage of capacity, in
    which nothing it held was lost (no reconciliation walk is called for)."""


class ProjectionWriter(Protocol):
    """Writes orders into both read-model tables, newest version wins."""

    async def put_order(self, order: order_pb2.Order, ttl_epoch: int) -> PutResult:
        """Writes the order unless a table holds this version or a newer one.

        An expired item (`ttl` passed, not yet deleted) at the same version is overwritten, so
        a write-back can revive it. Raises ValueError for an order the items cannot represent,
        ReadModelWriteRejected or ReadModelUnavailable as described there.
        """
        ...

    async def put_status(self, summary: order_pb2.OrderSummary, ttl_epoch: int) -> bool:
        """Writes the order-status item alone, under the same condition as `put_order`;
        returns whether it was written. For a write-back of a status read, which has no
        items to write the details item with."""
        ...
