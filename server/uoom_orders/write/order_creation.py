"""CreateOrder's writes in one statement: the request log's entry, the order with its items and
the order's first outbox row, in one round trip that is its own transaction.

A create writes only new rows and reads nothing first, so it needs no interactive transaction:
BEGIN, three INSERTs and COMMIT were five round trips, each one a chance for the API process to
be descheduled on a busy machine (CreateOrder's p99). PostgreSQL runs a statement atomically,
so every row is written or none is, and the outbox's NOTIFY goes out when it commits.

The request log's row comes first and the others are inserted from what it returned: a retry
of a request_id fails there, on the unique index, having written nothing; a concurrent first
request with the same id makes it wait for that one's outcome, as a transaction did.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.application.ports import LoggedRequest
from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import Order
from uoom_orders.write.order_repository import (
    INSERT_ORDER_COLUMNS,
    INSERT_PLACED_ITEMS,
    ORDER_VALUES,
    order_parameters,
)
from uoom_orders.write.outbox import INSERT_OUTBOX_COLUMNS, OUTBOX_CHANNEL, outbox_parameters
from uoom_orders.write.request_log import INSERT_REQUEST_COLUMNS, duplicate_request_refused

# $1-$23: the order and its items (order_parameters); $24-$27: the request; $28-$33: the
# outbox row (outbox_parameters).
_CREATE = f"""
    WITH logged AS (
        {INSERT_REQUEST_COLUMNS} VALUES ($24, $25, $26, $27)
        RETURNING request_id
    ), placed AS (
        {INSERT_ORDER_COLUMNS} SELECT {ORDER_VALUES} FROM logged
        RETURNING order_id
    ), items AS (
        {INSERT_PLACED_ITEMS}
    ), appended AS (
        {INSERT_OUTBOX_COLUMNS} SELECT $28, $29, $30, $31, $32, $33::jsonb FROM placed
        RETURNING id
    )
    SELECT pg_notify('{OUTBOX_CHANNEL}', id::text) FROM appended
"""


async def create_order(
    connection: asyncpg.Connection,
    request_id: UUID,
    request: LoggedRequest[order_pb2.Order],
    order: Order,
    event: OrderEvent,
    trace_context: dict[str, str] | None,
) -> None:
    """Logs the request with its answer, stores the order and appends `event` carrying the
    answer (the order as encoded once), atomically, on a connection with no transaction open.
    Raises DuplicateRequest, having written nothing, when the request_id is logged already."""
    message = wire.event_to_proto(event, order=request.answer)
    with duplicate_request_refused(request_id):
        await connection.execute(
            _CREATE,
            *order_parameters(order),
            request_id,
            request.method,
            request.fingerprint,
            request.answer.SerializeToString(),
            *outbox_parameters(message, event.event_type.value, trace_context),
        )
