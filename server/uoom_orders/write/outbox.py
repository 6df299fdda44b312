"""Appending events to the transactional outbox, in the same transaction as the change."""

from __future__ import annotations

import json

import asyncpg

from uoom_orders import wire
from uoom_orders.domain.events import OrderEvent

OUTBOX_CHANNEL = "uoom_outbox"


class PostgresOutbox:
    """Writes outbox rows; the relay publishes them after the transaction commits."""

    # NOTIFY inside the transaction is delivered only at commit, and not at all on rollback.
    _APPEND = f"""
        WITH appended AS (
            INSERT INTO outbox (event_id, order_id, event_type, version, payload, trace_context)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb)
            RETURNING id
        )
        SELECT pg_notify('{OUTBOX_CHANNEL}', id::text) FROM appended
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._conn = connection

    async def append(self, event: OrderEvent, trace_context: dict[str, str] | None = None) -> None:
        await self._conn.execute(
            self._APPEND,
            event.event_id,
            event.order.order_id,
            event.event_type.value,
            event.version,
            wire.event_to_proto(event).SerializeToString(),
            json.dumps(trace_context or {}),
        )
