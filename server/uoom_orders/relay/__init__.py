"""The outbox relay: committed outbox rows → Kafka, in order per order, at least once."""

from __future__ import annotations

from uoom_orders.relay.config import RelayConfig
from uoom_orders.relay.outbox_relay import OutboxRelay
from uoom_orders.relay.outbox_store import OutboxStats, PostgresOutboxStore
from uoom_orders.relay.publisher import EventPublisher, KafkaEventPublisher, PublishError
from uoom_orders.relay.records import CONTENT_TYPE, EventMessage, OutboxRecord, event_message
from uoom_orders.relay.topics import (
    DEAD_LETTER_TOPIC_PARTITIONS,
    EVENT_TOPIC_PARTITIONS,
    ensure_topics,
)

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_TOPIC_PARTITIONS",
    "EVENT_TOPIC_PARTITIONS",
    "EventMessage",
    "EventPublisher",
    "KafkaEventPublisher",
    "OutboxRecord",
    "OutboxRelay",
    "OutboxStats",
    "PostgresOutboxStore",
    "PublishError",
    "RelayConfig",
    "ensure_topics",
    "event_message",
]
