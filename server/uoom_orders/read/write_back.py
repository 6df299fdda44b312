"""After a PostgreSQL fallback, copy what it read into the DynamoDB read model (best effort).

The write uses the projector's version condition, so it can never put an older version over
a newer one, whichever of the two writers gets there first. It runs in the background: the
reader who fell back is answered at once. It writes what the fallback read and reads nothing
itself: the whole order (both tables) after a details read, the status item alone after a
status read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.ports import ProjectionWriter
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.tasks import cancel_and_wait

_log = logging.getLogger(__name__)


class ReadModelWriteBack(LongRunning):
    """An async context manager: writes are taken while it is entered; exit waits up to
    `drain_seconds` for those in flight, then cancels the rest.

    Bounded: at most `max_in_flight` writes at once, one per order; beyond that, and outside
    the context, skipped (the next fallback for that order tries again).
    """

    def __init__(
        self,
        writer: ProjectionWriter,
        *,
        ttl_hours: int,
        max_in_flight: int = 64,
        drain_seconds: float = 1.0,
    ) -> None:
        self._writer = writer
        self._ttl_hours = ttl_hours
        self._max_in_flight = max_in_flight
        self._drain_seconds = drain_seconds
        self._tasks: dict[UUID, asyncio.Task[None]] = {}
        self._running = False

    def schedule(self, summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        """Copies what PostgreSQL answered: `order` when the read was of the whole order (its
        summary is `summary`), else `summary` alone."""
        order_id = UUID(summary.order_id)
        if not self._running or order_id in self._tasks:
            return
        if len(self._tasks) >= self._max_in_flight:
            return
        task = asyncio.create_task(self._write(order_id, summary, order))
        self._tasks[order_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(order_id, None))

    async def _write(
        self, order_id: UUID, summary: order_pb2.OrderSummary, order: order_pb2.Order | None
    ) -> None:
        ttl = items.ttl_after(self._ttl_hours, time.time())
        try:
            if order is None:
                await self._writer.put_status(summary, ttl)
            else:
                await self._writer.put_order(order, ttl)
        except Exception as error:  # the read was answered; the next fallback retries
            _log.debug("write-back of order %s failed: %r", order_id, error)

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        """Takes no more writes, waits a bounded time for those in flight, cancels the rest.
        Safe to call twice."""
        self._running = False
        try:
            if self._tasks:
                await asyncio.wait(list(self._tasks.values()), timeout=self._drain_seconds)
        finally:
            await cancel_and_wait(*self._tasks.values())
