"""One PostgreSQL transaction around a command: commit explicitly, or it rolls back. A create,
which reads nothing first, is one statement instead (`create`, write/order_creation.py), and a
status change is one read and one statement (`read_for_change`, `change`,
write/status_change.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from uuid import UUID

import asyncpg
from opentelemetry.trace import Span, SpanKind
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.application.ports import LoggedRequest, TraceContext
from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import Order
from uoom_orders.observability import tracing
from uoom_orders.write import order_creation, status_change
from uoom_orders.write.order_repository import PostgresOrderRepository
from uoom_orders.write.outbox import PostgresOutbox
from uoom_orders.write.request_log import PostgresRequestLog

_SPAN_ATTRIBUTES = {"db.system": "postgresql", "db.system.name": "postgresql"}
_OUTCOME = "uoom.transaction.outcome"


class PostgresUnitOfWork:
    """`async with uow: ...; await uow.commit()`; leaving without commit rolls back. The
    application's UnitOfWork port, with orders encoded as the contract's `Order` message.

    The transaction is plain BEGIN / COMMIT / ROLLBACK statements rather than an asyncpg
    Transaction object, because of cancellation: a caller's deadline can cut off any of them.
    After a cut-off BEGIN or COMMIT, an asyncpg Transaction is in an error state that refuses
    ROLLBACK, and the pool then rolls back on release but reports it as an error ("Resetting
    connection with an active transaction"); a caller's deadline is not an error of the
    service. A ROLLBACK statement here waits for the cancel request asyncpg still has in flight
    and then ends whatever the session has open (after a completed COMMIT it does nothing).
    """

    orders: PostgresOrderRepository
    outbox: PostgresOutbox
    requests: PostgresRequestLog
    _span: tracing.OpenSpan

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
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
            await self._conn.execute("BEGIN")
        except BaseException:
            await self._release(self._conn, rolled_back=False)
            raise
        self.orders = PostgresOrderRepository(self._conn)
        self.outbox = PostgresOutbox(self._conn)
        self.requests = PostgresRequestLog(self._conn)
        return self

    def encode(self, order: Order) -> order_pb2.Order:
        """The order as the request log keeps answers and the outbox's events carry it."""
        return wire.order_to_proto(order)

    async def create(
        self,
        request_id: UUID,
        request: LoggedRequest[order_pb2.Order],
        order: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> None:
        """CreateOrder's writes in one statement, its own transaction (write/order_creation.py)."""
        async with self._statement() as (connection, span):
            await order_creation.create_order(
                connection, request_id, request, order, event, trace_context()
            )
            span.set_attribute(_OUTCOME, "commit")

    async def read_for_change(
        self, order_id: UUID, request_id: UUID
    ) -> tuple[Order | None, LoggedRequest[order_pb2.Order] | None]:
        """The order and the request's logged answer in one query (write/status_change.py)."""
        assert self._conn is None, "read_for_change runs outside `async with`"
        async with self._pool.acquire() as connection:
            return await status_change.read_for_change(connection, order_id, request_id)

    async def change(
        self,
        request_id: UUID,
        request: LoggedRequest[order_pb2.Order],
        changed: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> bool:
        """A status change's writes in one statement, its own transaction
        (write/status_change.py)."""
        async with self._statement() as (connection, span):
            stored = await status_change.change_status(
                connection, request_id, request, changed, event, trace_context()
            )
            # A statement that matched no order commits having written nothing.
            span.set_attribute(_OUTCOME, "commit" if stored else "conflict")
        return stored

    @contextlib.asynccontextmanager
    async def _statement(self) -> AsyncIterator[tuple[asyncpg.Connection, Span]]:
        """A pooled connection for a write that is one statement, its own transaction, and the
        transaction's span: current meanwhile, so the outbox row names it as the event's
        parent; its outcome is "rollback" until the caller says otherwise."""
        assert self._conn is None, "a one-statement write is not one inside `async with`"
        with tracing.client_span("postgresql transaction", _SPAN_ATTRIBUTES) as span:
            span.set_attribute(_OUTCOME, "rollback")
            async with self._pool.acquire() as connection:
                yield connection, span

    async def commit(self) -> None:
        assert self._conn is not None, "commit outside `async with`"
        await self._conn.execute("COMMIT")
        self._done = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        rolled_back = self._done
        try:
            if not self._done:
                await self._conn.execute("ROLLBACK")
                rolled_back = True
        except Exception:
            # The error that brought us here, if any, is the one to report; a failed
            # rollback after a clean exit is reported itself.
            if exc is None:
                raise
        finally:
            await self._release(self._conn, rolled_back=rolled_back)
            self._conn = None
            outcome = "commit" if self._done else "rollback"
            self._span.end(exc, {_OUTCOME: outcome})

    async def _release(self, conn: asyncpg.Connection, *, rolled_back: bool) -> None:
        """Returns the connection to the pool with no transaction open; a session that cannot
        even roll back is closed (PostgreSQL rolls back what a closed session left open)."""
        if not rolled_back:
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                conn.terminate()
        await self._pool.release(conn)
