"""The one place the service makes Kafka clients: consumers, producers and admin clients.

Every role (relay, projector, near-cache feed, dead-letter tools, topic creation) builds its
aiokafka clients here from explicit arguments; nothing is read from the environment. What all
of them share is decided once below, and so are the workarounds for the local broker (tansu),
each with the reason, so that moving to a managed Kafka is a change to the settings, not to
every caller:

- tansu rejects aiokafka's idempotent producer (InitProducerId v0) while real Kafka takes it:
  idempotence is an explicit argument of every producer (KAFKA_IDEMPOTENT_PRODUCER), never a
  silent default.
- Kafka answers a fetch as soon as records arrive; tansu holds it until `fetch_max_wait_ms`
  has passed even when records are there, which adds that much to every hop: the wait is an
  explicit argument of every consumer (KAFKA_FETCH_MAX_WAIT_MS, 10-20 ms on the local stack).
- tansu creates a topic it does not know with 4 partitions on first use: the service creates
  its topics itself, with an admin client, before a role uses them (`relay.topics`).
- After a restart, memory-backed tansu acknowledges and then drops records sent with metadata
  cached from before it: a producer that saw a failure is replaced, not reused (the relay's
  publisher does so).
- tansu can answer two members that join a group at the same moment with a group that has no
  leader: the projector notices a join that does not end and joins again as a new member
  (`projector.membership`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

FETCH_MAX_WAIT_MS = 20
"""A fetch wait for tools that read a topic once (listing dead letters): low, for tansu."""


def kafka_consumer(
    bootstrap_servers: str,
    *,
    group_id: str | None,
    auto_offset_reset: Literal["earliest", "latest"],
    fetch_max_wait_ms: int,
    client_id: str | None = None,
    session_timeout_ms: int | None = None,
    heartbeat_interval_ms: int | None = None,
    max_poll_interval_ms: int | None = None,
    request_timeout_ms: int | None = None,
    metadata_max_age_ms: int | None = None,
) -> AIOKafkaConsumer:
    """A consumer, not started. `group_id` None reads without a group (partitions assigned by
    the caller); an option left None keeps aiokafka's default.

    Offsets are never committed automatically: a group member commits after the work the
    records caused is done, so a crash re-delivers instead of losing them.
    """
    options = _given(
        client_id=client_id,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        max_poll_interval_ms=max_poll_interval_ms,
        request_timeout_ms=request_timeout_ms,
        metadata_max_age_ms=metadata_max_age_ms,
    )
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        fetch_max_wait_ms=fetch_max_wait_ms,
        **options,
    )


def kafka_producer(
    bootstrap_servers: str,
    *,
    enable_idempotence: bool,
    client_id: str | None = None,
    linger_ms: int | None = None,
    request_timeout_ms: int | None = None,
    max_batch_size: int | None = None,
    retry_backoff_ms: int | None = None,
) -> AIOKafkaProducer:
    """A producer, not started; an option left None keeps aiokafka's default.

    Every in-sync replica has a record before it counts as sent (acks=all): the outbox marks
    a row published, and the projector commits past a dead letter, only after that.
    """
    options = _given(
        client_id=client_id,
        linger_ms=linger_ms,
        request_timeout_ms=request_timeout_ms,
        max_batch_size=max_batch_size,
        retry_backoff_ms=retry_backoff_ms,
    )
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=enable_idempotence,
        **options,
    )


def kafka_admin(
    bootstrap_servers: str, *, client_id: str | None = None, request_timeout_ms: int | None = None
) -> AIOKafkaAdminClient:
    """An admin client, not started (`start()`, then `close()`)."""
    options = _given(client_id=client_id, request_timeout_ms=request_timeout_ms)
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **options)


class _Client(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_C = TypeVar("_C", bound=_Client)


async def started(client: _C) -> _C:
    """Starts a consumer or producer and returns it. One that fails to start is stopped again
    before the error is raised: it may already hold sockets, and would warn when collected."""
    try:
        await client.start()
    except BaseException:
        # The start error is the one that matters; a failure to stop must not hide it.
        with contextlib.suppress(Exception):
            await client.stop()
        raise
    return client


def _given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}
