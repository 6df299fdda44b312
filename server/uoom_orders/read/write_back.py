"""After a PostgreSQL fallback, copy the order into the DynamoDB read model (best effort).

The write uses the projector's version condition, so it can never put an older version over
a newer one, whichever of the two writers gets there first. It runs in the background: the
reader who fell back is answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.read.postgres_store import PostgresOrderReadStore
from uoom_orders.readmodel import items
from uoom_orders.readmodel.ports import ProjectionWriter

_log = logging.getLogger(__name__)


class ReadModelWriteBack:
    """Bounded: at most `max_in_flight` writes at once, one per order; beyond that, skipped
    (the next fallback for that order tries again)."""

    def __init__(
        self,
        writer: ProjectionWriter,
        source: PostgresOrderReadStore,
        *,
        ttl_hours: int,
        max_in_flight: int = 64,
    ) -> None:
        self._writer = writer
        self._source = source
        self._ttl_hours = ttl_hours
        self._max_in_flight = max_in_flight
        self._tasks: dict[UUID, asyncio.Task[None]] = {}
        self.written = 0

    def schedule(self, order_id: UUID, order: order_pb2.Order | None) -> None:
        if order_id in self._tasks or len(self._tasks) >= self._max_in_flight:
            return
        task = asyncio.create_task(self._write(order_id, order))
        self._tasks[order_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(order_id, None))

    async def _write(self, order_id: UUID, order: order_pb2.Order | None) -> None:
        try:
            if order is None:
                order = await self._source.get_order(order_id)
                if order is None:
                    return
            result = await self._writer.put_order(
                order, items.ttl_after(self._ttl_hours, time.time())
            )
            if result.applied:
                self.written += 1
        except Exception as error:  # the read was answered; the next fallback retries
            _log.debug("write-back of order %s failed: %r", order_id, error)

    async def drain(self) -> None:
        """Waits for the writes in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
