"""An outbox row as the relay reads it, and the Kafka message it becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

CONTENT_TYPE = "application/x-protobuf; messageType=uoom.orders.v1.OrderEvent"
"""The `content-type` header of every event: the payload is a serialized OrderEvent."""

# Our own headers; a trace-context key with one of these names is dropped, never allowed to
# overwrite them.
_RESERVED_HEADERS = frozenset({"event_id", "event_type", "content-type"})


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One committed outbox row: a serialized OrderEvent and what to publish it with."""

    id: int
    event_id: UUID
    order_id: UUID
    event_type: str
    version: int
    payload: bytes
    created_at: datetime
    trace_context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventMessage:
    """The Kafka record for one outbox row (the topic is the publisher's)."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def event_message(record: OutboxRecord) -> EventMessage:
    """Key = the order id as canonical text (so one order's events share a partition and any
    tool shows it readably), value = the payload as stored, headers = event id, event type,
    content type, then the W3C trace context (traceparent, tracestate, ...) captured at write.
    """
    headers: list[tuple[str, bytes]] = [
        ("event_id", str(record.event_id).encode("ascii")),
        ("event_type", record.event_type.encode("utf-8")),
        ("content-type", CONTENT_TYPE.encode("ascii")),
    ]
    for name, value in record.trace_context.items():
        if isinstance(value, str) and name.lower() not in _RESERVED_HEADERS:
            headers.append((name, value.encode("utf-8")))
    return EventMessage(
        key=str(record.order_id).encode("ascii"),
        value=record.payload,
        headers=tuple(headers),
    )
