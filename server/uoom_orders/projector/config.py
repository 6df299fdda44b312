"""The projector's configuration: where it reads, how much at a time, how it retries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProjectorConfig:
    """Where the projector reads and how. The fields without a default come from the settings
    (built in `config.components.projector_config`); the others are tuning knobs."""

    bootstrap_servers: str
    topic: str
    group_id: str
    # Empty means "<topic>.dlq".
    dead_letter_topic: str
    # Items live this long after their last write (see `dynamodb.items.ttl_after`).
    ttl_hours: int
    # A join takes about half the session timeout; 6 s rides out a GC pause or a slow batch.
    session_timeout_ms: int
    heartbeat_interval_ms: int
    # Kafka answers a fetch as soon as records arrive; tansu holds it this long regardless.
    fetch_max_wait_ms: int
    # The local tansu broker rejects aiokafka's idempotent producer; real Kafka takes it.
    idempotent_producer: bool
    # Whether a stopping consumer says so to the group (LeaveGroup): its partitions move at
    # once rather than after the session timeout. The local tansu broker stalls the group on it
    # after a broker pause (see `membership`), so the local stack turns it off.
    leave_group_on_stop: bool = True
    # Written offsets are committed at most this often (and on stop): a commit per batch cost
    # the projector and the broker a round trip each, and held the next batch behind it. A
    # crash re-applies what was written since, which changes nothing.
    commit_interval_seconds: float = 0.5
    max_records: int = 500
    poll_timeout_ms: int = 100
    # Orders written at once; each is two PutItems.
    concurrency: int = 32
    # Tries for an order whose write fails unexpectedly (not an outage, not a refusal).
    apply_attempts: int = 3
    retry_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 1.0
    max_poll_interval_ms: int = 300_000
    client_id: str = "uoom-orders-projector"

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"
