"""The projector's configuration: where it reads, how much at a time, how it retries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from uoom_orders.config import Settings


@dataclass(frozen=True)
class ProjectorConfig:
    """Where the projector reads and how; `from_settings` fills it from the environment."""

    bootstrap_servers: str
    topic: str = "uoom.orders.v1.order-events"
    group_id: str = "uoom-orders-projector"
    # Empty means "<topic>.dlq".
    dead_letter_topic: str = ""
    # Items live this long after their last write (see `readmodel.items.ttl_after`).
    ttl_hours: int = 72
    max_records: int = 500
    poll_timeout_ms: int = 100
    # Orders written at once; each is two PutItems.
    concurrency: int = 32
    # Tries for an order whose write fails unexpectedly (not an outage, not a refusal).
    apply_attempts: int = 3
    retry_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 1.0
    # A join takes about half the session timeout; 6 s rides out a GC pause or a slow batch.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300_000
    # tansu holds a fetch until this passes even when records are there: keep it low.
    fetch_max_wait_ms: int = 20
    # The local tansu broker rejects aiokafka's idempotent producer; real Kafka takes it.
    idempotent_producer: bool = False
    client_id: str = "uoom-orders-projector"

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ProjectorConfig:
        """KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, KAFKA_DEAD_LETTER_TOPIC, PROJECTOR_GROUP_ID,
        PROJECTOR_SESSION_TIMEOUT_MS, ORDER_CACHE_TTL_HOURS and KAFKA_IDEMPOTENT_PRODUCER;
        keyword arguments override."""
        if not settings.kafka_bootstrap_servers:
            raise ValueError("the projector needs KAFKA_BOOTSTRAP_SERVERS")
        config = cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.kafka_topic,
            group_id=settings.projector_group_id,
            dead_letter_topic=settings.dead_letter_topic,
            ttl_hours=settings.order_cache_ttl_hours,
            idempotent_producer=settings.kafka_idempotent_producer,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            session_timeout_ms=settings.projector_session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.projector_session_timeout_ms // 6),
        )
        return replace(config, **overrides)
