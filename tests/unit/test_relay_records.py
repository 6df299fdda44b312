"""Outbox rows to Kafka messages: key, value and headers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uoom_orders.relay import CONTENT_TYPE, OutboxRecord, event_message


def record(trace_context: dict[str, str] | None = None) -> OutboxRecord:
    return OutboxRecord(
        id=7,
        event_id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
        order_id=uuid.UUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        event_type="ORDER_STATUS_CHANGED",
        version=3,
        payload=b"\x08\x01payload",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        trace_context=trace_context or {},
    )


def test_key_is_the_order_id_and_value_the_payload_as_stored() -> None:
    message = event_message(record())
    assert message.key == b"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert message.value == b"\x08\x01payload"


def test_headers_name_the_event_and_its_content_type() -> None:
    assert event_message(record()).headers == (
        ("event_id", b"11111111-2222-3333-4444-555555555555"),
        ("event_type", b"ORDER_STATUS_CHANGED"),
        ("content-type", CONTENT_TYPE.encode()),
    )


def test_trace_context_keys_become_headers() -> None:
    headers = dict(
        event_message(record({"traceparent": "00-abc-def-01", "tracestate": "k=v"})).headers
    )
    assert headers["traceparent"] == b"00-abc-def-01"
    assert headers["tracestate"] == b"k=v"


def test_trace_context_cannot_overwrite_the_event_headers() -> None:
    message = event_message(record({"event_id": "forged", "Content-Type": "text/plain"}))
    assert [name for name, _ in message.headers] == ["event_id", "event_type", "content-type"]
    assert dict(message.headers)["event_id"] == b"11111111-2222-3333-4444-555555555555"
