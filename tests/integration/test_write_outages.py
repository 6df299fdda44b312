"""A write PostgreSQL cuts off is an outage the caller may retry, never an INTERNAL error.

Two ways a real PostgreSQL ends a write in the middle of its statement: an operator ends the
session (`pg_terminate_backend`; a fast shutdown and another backend's crash end it the same
way), or the statement runs into the `statement_timeout` an operator set. Either way the caller
gets UNAVAILABLE (STORE_UNAVAILABLE), nothing of the write is left behind, and a retry with the
same request_id creates the order once.

The write is held inside PostgreSQL by another session's lock on the outbox
(tests/support/held_writes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from uoom.orders.v1 import order_service_pb2, order_service_pb2_grpc

from tests.builders import create_request
from tests.integration.projector_support import eventually
from tests.support.held_writes import outbox_locked
from tests.support.rich_errors import RichError, rich_error
from uoom_orders.bootstrap import running_service
from uoom_orders.config import Settings

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

NOTHING = {"request_log": 0, "orders": 0, "order_items": 0, "outbox": 0}
ONE_ORDER = {"request_log": 1, "orders": 1, "order_items": 1, "outbox": 1}


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[OrderServiceAsyncStub]:
    async with (
        running_service(settings) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        yield order_service_pb2_grpc.OrderServiceStub(channel)


async def _rows(db: asyncpg.Connection) -> dict[str, int]:
    counts = {}
    for table in NOTHING:
        counts[table] = await db.fetchval(f"SELECT count(*) FROM {table}")
    return counts


async def _cut_off_then_retried(
    stub: OrderServiceAsyncStub,
    db: asyncpg.Connection,
    request: order_service_pb2.CreateOrderRequest,
    failed: RichError,
) -> None:
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
    assert await _rows(db) == NOTHING
    created = await stub.CreateOrder(request, timeout=10)
    replayed = await stub.CreateOrder(request, timeout=10)
    assert replayed.order == created.order
    assert await _rows(db) == ONE_ORDER


async def test_a_create_whose_session_is_terminated_is_unavailable_and_retryable(
    settings: Settings, db: asyncpg.Connection
) -> None:
    request = create_request()
    waiting: list[asyncpg.Record] = []

    async def create_waits_for_the_lock() -> bool:
        waiting[:] = await db.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return len(waiting) == 1

    async with serving(settings) as stub:
        async with outbox_locked(db):
            pending = asyncio.ensure_future(stub.CreateOrder(request, timeout=30))
            await eventually(create_waits_for_the_lock, "the create waiting for the outbox")
            assert await db.fetchval("SELECT pg_terminate_backend($1)", waiting[0]["pid"])
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await pending
        await _cut_off_then_retried(stub, db, request, rich_error(failed.value))


async def test_a_create_past_the_statement_timeout_is_unavailable_and_retryable(
    settings: Settings, db: asyncpg.Connection
) -> None:
    # Set before the service opens its sessions; this test's own session keeps no timeout.
    database = await db.fetchval("SELECT current_database()")
    await db.execute(f'ALTER DATABASE "{database}" SET statement_timeout = 300')
    request = create_request()
    async with serving(settings) as stub:
        async with outbox_locked(db):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.CreateOrder(request, timeout=30)
        await _cut_off_then_retried(stub, db, request, rich_error(failed.value))
