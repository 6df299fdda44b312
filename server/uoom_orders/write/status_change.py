"""UpdateOrderStatus in two round trips: one query reads the order with its items and the request
log's entry for the request_id; one statement stores the change, appends its outbox row (with
its NOTIFY) and logs the request, atomically, if the order is still the version that was read.

The interactive transaction it replaces took eight round trips (BEGIN, the row lock, the
items, the request log, the UPDATE, the outbox row, the request's row, COMMIT), each one a
chance to be descheduled on a busy machine, with the row locked throughout.

Concurrency is optimistic. The UPDATE matches only the version that was read (its row lock is
held from there to the commit, within the statement): a concurrent change that committed first
makes it match nothing, so nothing is written and the caller reads again and decides on the new
state, as it would have under the lock. A duplicate request in flight is one of those: once it
commits, its version is gone and its answer is logged, and the next read replays it. A
request_id already logged for another change makes the request log's INSERT fail on its unique
index, which undoes the UPDATE too (DuplicateRequest). The request's row and the outbox row are
inserted only from what the UPDATE returned: no answer is logged for a change that did not
happen.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.application.ports import LoggedRequest
from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import Order
from uoom_orders.write.order_rows import order_from_rows
from uoom_orders.write.outbox import INSERT_OUTBOX_COLUMNS, OUTBOX_CHANNEL, outbox_parameters
from uoom_orders.write.request_log import (
    INSERT_REQUEST_COLUMNS,
    duplicate_request_refused,
    logged_request,
)

# One row whatever exists: the order's columns (NULL when there is no order), its items as
# arrays in line order, and the request log's entry (NULL when the request_id is new).
_READ = """
    SELECT o.*, i.item_ids, i.names, i.quantities, i.unit_prices,
        r.method AS logged_method, r.request_hash AS logged_hash, r.response AS logged_response
    FROM (VALUES (1)) AS one
    LEFT JOIN orders o ON o.order_id = $1
    LEFT JOIN LATERAL (
        SELECT array_agg(item_id ORDER BY line_no) AS item_ids,
            array_agg(name ORDER BY line_no) AS names,
            array_agg(quantity ORDER BY line_no) AS quantities,
            array_agg(unit_price_minor ORDER BY line_no) AS unit_prices
        FROM order_items WHERE order_id = $1
    ) i ON o.order_id IS NOT NULL
    LEFT JOIN request_log r ON r.request_id = $2
"""

# $1-$5: the change (order_id, status, estimated_delivery_time, updated_at, new version); $6-$9:
# the request; $10-$15: the outbox row (outbox_parameters). A row back: the change is stored.
_CHANGE = f"""
    WITH changed AS (
        UPDATE orders SET status = $2, estimated_delivery_time = $3, updated_at = $4,
            version = $5
        WHERE order_id = $1 AND version = $5 - 1
        RETURNING order_id
    ), logged AS (
        {INSERT_REQUEST_COLUMNS} SELECT $6, $7, $8, $9 FROM changed
        RETURNING request_id
    ), appended AS (
        {INSERT_OUTBOX_COLUMNS} SELECT $10, $11, $12, $13, $14, $15::jsonb FROM logged
        RETURNING id
    )
    SELECT pg_notify('{OUTBOX_CHANNEL}', id::text) FROM appended
"""


async def read_for_change(
    connection: asyncpg.Connection, order_id: UUID, request_id: UUID
) -> tuple[Order | None, LoggedRequest[order_pb2.Order] | None]:
    """The order as committed (None: there is none) and the request's logged answer (None:
    the request_id is new), in one query."""
    row = await connection.fetchrow(_READ, order_id, request_id)
    assert row is not None  # the query returns one row whatever exists
    order = None
    if row["order_id"] is not None:
        items = zip(
            row["item_ids"] or (),
            row["names"] or (),
            row["quantities"] or (),
            row["unit_prices"] or (),
            strict=True,
        )
        order = order_from_rows(
            row,
            [
                {"item_id": i, "name": n, "quantity": q, "unit_price_minor": p}
                for i, n, q, p in items
            ],
        )
    logged = None
    if row["logged_method"] is not None:
        logged = logged_request(row["logged_method"], row["logged_hash"], row["logged_response"])
    return order, logged


async def change_status(
    connection: asyncpg.Connection,
    request_id: UUID,
    request: LoggedRequest[order_pb2.Order],
    changed: Order,
    event: OrderEvent,
    trace_context: dict[str, str] | None,
) -> bool:
    """Stores `changed` if the stored order is the version before it, appends `event` carrying
    the answer and logs the request, atomically, on a connection with no transaction open.
    False, having written nothing, when the stored order is another version; raises
    DuplicateRequest, having written nothing, when the request_id is logged already."""
    message = wire.event_to_proto(event, order=request.answer)
    with duplicate_request_refused(request_id):
        rows = await connection.fetch(
            _CHANGE,
            changed.order_id,
            changed.status.value,
            changed.estimated_delivery_time,
            changed.updated_at,
            changed.version,
            request_id,
            request.method,
            request.fingerprint,
            request.answer.SerializeToString(),
            *outbox_parameters(message, event.event_type.value, trace_context),
        )
    return len(rows) == 1
