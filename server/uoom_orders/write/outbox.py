"""Appending events to the transactional outbox, in the same transaction as the change."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_events_pb2, order_pb2

from uoom_orders import wire
from uoom_orders.domain.events import OrderEvent

OUTBOX_CHANNEL = "uoom_outbox"

INSERT_OUTBOX_COLUMNS = (
    "INSERT INTO outbox (event_id, order_id, event_type, version, payload, trace_context)"
)
"""The head of an outbox row's INSERT; its six values are `outbox_parameters`."""


def outbox_parameters(
    message: order_events_pb2.OrderEvent, event_type: str, trace_context: dict[str, str] | None
) -> tuple[Any, ...]:
    """The values of an outbox row, in INSERT_OUTBOX_COLUMNS' order (the last one is jsonb)."""
    return (
        UUID(message.event_id),
        UUID(message.order_id),
        event_type,
        message.version,
        message.SerializeToString(),
        json.dumps(trace_context or {}),
    )


class PostgresOutbox:
    """Writes outbox rows; the relay publishes them after the transaction commits."""

    # NOTIFY inside the transaction is delivered only at commit, and not at all on rollback.
    _APPEND = f"""
        WITH appended AS (
            {INSERT_OUTBOX_COLUMNS}
            VALUES ($1, $2, $3, $4, $5, $6::jsonb)
            RETURNING id
        )
        SELECT pg_notify('{OUTBOX_CHANNEL}', id::text) FROM appended
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._conn = connection

    async def append(
        self,
        event: OrderEvent,
        order: order_pb2.Order,
        trace_context: dict[str, str] | None = None,
    ) -> None:
        """Appends the event with `order`, its order already encoded (by the unit of work)."""
        message = wire.event_to_proto(event, order=order)
        await self.append_message(message, event.event_type.value, trace_context)

    async def append_message(
        self,
        message: order_events_pb2.OrderEvent,
        event_type: str,
        trace_context: dict[str, str] | None = None,
    ) -> None:
        """Appends an event already in its wire form (e.g. reconciliation's corrections)."""
        await self._conn.execute(
            self._APPEND, *outbox_parameters(message, event_type, trace_context)
        )
