"""One PostgreSQL transaction around a command: commit explicitly, or it rolls back."""

from __future__ import annotations

from types import TracebackType

import asyncpg
from opentelemetry.trace import SpanKind

from uoom_orders.observability import tracing
from uoom_orders.write.order_repository import PostgresOrderRepository
from uoom_orders.write.outbox import PostgresOutbox
from uoom_orders.write.request_log import PostgresRequestLog

_SPAN_ATTRIBUTES = {"db.system": "postgresql", "db.system.name": "postgresql"}


class PostgresUnitOfWork:
    """`async with uow: ...; await uow.commit()`; leaving without commit rolls back."""

    orders: PostgresOrderRepository
    outbox: PostgresOutbox
    requests: PostgresRequestLog
    _span: tracing.OpenSpan

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self._done = False

    async def __aenter__(self) -> PostgresUnitOfWork:
        # Current until exit, so the outbox row captures this transaction as the event's
        # parent span; it includes the wait for a pooled connection.
        self._span = tracing.open_span(
            "postgresql transaction", kind=SpanKind.CLIENT, attributes=_SPAN_ATTRIBUTES
        )
        try:
            return await self._begin()
        except BaseException as error:
            self._span.end(error)
            raise

    async def _begin(self) -> PostgresUnitOfWork:
        self._conn = await self._pool.acquire()
        try:
            self._tx = self._conn.transaction()
            await self._tx.start()
        except BaseException:
            await self._pool.release(self._conn)
            raise
        self.orders = PostgresOrderRepository(self._conn)
        self.outbox = PostgresOutbox(self._conn)
        self.requests = PostgresRequestLog(self._conn)
        return self

    async def commit(self) -> None:
        assert self._tx is not None, "commit outside `async with`"
        await self._tx.commit()
        self._done = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        assert self._tx is not None
        try:
            if not self._done:
                await self._tx.rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = None
            outcome = "commit" if self._done else "rollback"
            self._span.end(exc, {"uoom.transaction.outcome": outcome})
