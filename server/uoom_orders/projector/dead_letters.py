"""The dead-letter topic: what the projector puts there, and listing and replaying it.

A dead letter is the original record (key, value, headers) plus `dlq-*` headers saying why
and where from. Replaying publishes the original record again, `dlq-*` headers removed, so
the projector sees exactly what the relay published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import tenacity
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from uoom_orders.kafka_clients import FETCH_MAX_WAIT_MS, kafka_consumer, kafka_producer, started
from uoom_orders.projector.batch import Letter
from uoom_orders.runtime.retry import retried

_log = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "dlq-"
ERROR_HEADER = "dlq-error"
SOURCE_TOPIC_HEADER = "dlq-source-topic"
SOURCE_PARTITION_HEADER = "dlq-source-partition"
SOURCE_OFFSET_HEADER = "dlq-source-offset"
FAILED_AT_HEADER = "dlq-failed-at"
# Kafka headers are small by convention; a traceback is not needed to tell what went wrong.
_MAX_ERROR_BYTES = 2000

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic, its `dlq-*` headers parsed out."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    """The original record's headers, without `dlq-*`."""
    error: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    failed_at: str


def original_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The headers without any `dlq-*` ones (a replayed record may carry old ones)."""
    return [(name, value) for name, value in headers if not name.startswith(DLQ_HEADER_PREFIX)]


def dead_letter_headers(
    headers: Iterable[tuple[str, bytes]],
    *,
    error: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    failed_at: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers followed by the `dlq-*` ones describing this failure."""
    moment = (failed_at or datetime.now(UTC)).astimezone(UTC)
    return [
        *original_headers(headers),
        (ERROR_HEADER, error.encode("utf-8", "replace")[:_MAX_ERROR_BYTES]),
        (SOURCE_TOPIC_HEADER, source_topic.encode()),
        (SOURCE_PARTITION_HEADER, str(source_partition).encode()),
        (SOURCE_OFFSET_HEADER, str(source_offset).encode()),
        (FAILED_AT_HEADER, moment.isoformat(timespec="microseconds").encode()),
    ]


def _int_or_none(raw: bytes | None) -> int | None:
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None


def parse_dead_letter(record: Any) -> DeadLetter:
    """A DeadLetter from an aiokafka ConsumerRecord of the dead-letter topic."""
    headers = [(name, bytes(value)) for name, value in (record.headers or ())]
    extra = {name: value for name, value in headers if name.startswith(DLQ_HEADER_PREFIX)}

    def text(name: str) -> str:
        return extra.get(name, b"").decode("utf-8", "replace")

    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple(original_headers(headers)),
        error=text(ERROR_HEADER),
        source_topic=text(SOURCE_TOPIC_HEADER),
        source_partition=_int_or_none(extra.get(SOURCE_PARTITION_HEADER)),
        source_offset=_int_or_none(extra.get(SOURCE_OFFSET_HEADER)),
        failed_at=text(FAILED_AT_HEADER),
    )


async def publish_dead_letters(
    producer: AIOKafkaProducer,
    topic: str,
    letters: Sequence[Letter],
    *,
    backoff: tuple[float, float],
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Publishes the letters, retrying (`backoff`: first and longest delay) until the broker
    takes every one; `sleep` waits between tries and may raise to give up."""

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = None if state.outcome is None else state.outcome.exception()
        delay = 0.0 if state.next_action is None else state.next_action.sleep
        _log.warning("dead-letter topic %s unavailable (%r); retry in %.1f s", topic, error, delay)

    async def publish() -> None:
        sent = [
            await producer.send(
                topic,
                value=letter.record.value,
                key=letter.record.key,
                headers=dead_letter_headers(
                    letter.record.headers or (),
                    error=letter.error,
                    source_topic=letter.record.topic,
                    source_partition=letter.record.partition,
                    source_offset=letter.record.offset,
                ),
            )
            for letter in letters
        ]
        await asyncio.gather(*sent)

    # Committing past a letter that was not stored would lose it: retry instead, without end.
    await retried(
        publish,
        *backoff,
        retry_if=lambda error: isinstance(error, KafkaError),
        sleep=sleep,
        before_sleep=log_retry,
    )
    for letter in letters:
        _log.error(
            "dead-lettered %s[%d]@%d to %s: %s",
            letter.record.topic,
            letter.record.partition,
            letter.record.offset,
            topic,
            letter.error,
        )


async def _read_to_end(
    consumer: AIOKafkaConsumer, topic: str, per_partition_limit: int | None, deadline: float
) -> list[Any]:
    """Records from each assigned partition's position up to its end as of now."""
    await consumer.topics()  # refreshes metadata so a topic created just now is known
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        return []
    tps = [TopicPartition(topic, partition) for partition in sorted(partitions)]
    consumer.assign(tps)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    taken: dict[TopicPartition, int] = dict.fromkeys(tps, 0)
    records: list[Any] = []

    async def done(tp: TopicPartition) -> bool:
        if per_partition_limit is not None and taken[tp] >= per_partition_limit:
            return True
        return bool(await consumer.position(tp) >= ends[tp])

    open_tps = [tp for tp in tps if not await done(tp)]
    while open_tps:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"reading {topic} did not reach its end in time")
        batches = await consumer.getmany(*open_tps, timeout_ms=200)
        for tp, batch in batches.items():
            for record in batch:
                if record.offset >= ends[tp]:
                    break
                if per_partition_limit is not None and taken[tp] >= per_partition_limit:
                    break
                records.append(record)
                taken[tp] += 1
        open_tps = [tp for tp in open_tps if not await done(tp)]
    return records


async def list_dead_letters(
    bootstrap_servers: str, dlq_topic: str, limit: int = 100, *, wait_seconds: float = 30.0
) -> list[DeadLetter]:
    """Up to `limit` dead letters, oldest failure first; reads without joining any group."""
    consumer = await started(
        kafka_consumer(
            bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
    )
    try:
        records = await _read_to_end(consumer, dlq_topic, limit, time.monotonic() + wait_seconds)
    finally:
        await consumer.stop()
    letters = sorted(
        (parse_dead_letter(record) for record in records),
        key=lambda letter: (letter.failed_at, letter.partition, letter.offset),
    )
    return letters[:limit]


async def replay_dead_letters(
    bootstrap_servers: str,
    dlq_topic: str,
    topic: str,
    *,
    group_id: str | None = None,
    limit: int | None = None,
    idempotent_producer: bool = False,
    wait_seconds: float = 60.0,
) -> int:
    """Publishes dead letters again to `topic` (key, value, original headers); returns how many.

    The replay position is committed under `group_id` (default "<dlq_topic>.replay"), so each
    dead letter is replayed once; one that fails again comes back as a new dead letter. The
    projector applies versions idempotently, so a replay after a crash between publish and
    commit does no harm. Run one replay at a time: partitions are assigned, not balanced.
    """
    consumer = await started(
        kafka_consumer(
            bootstrap_servers,
            group_id=group_id or f"{dlq_topic}.replay",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
    )
    try:
        producer = await started(
            kafka_producer(bootstrap_servers, enable_idempotence=idempotent_producer)
        )
        try:
            records = await _read_to_end(
                consumer, dlq_topic, limit, time.monotonic() + wait_seconds
            )
            records.sort(key=lambda record: (record.partition, record.offset))
            if limit is not None:
                records = records[:limit]
            sent = [
                await producer.send(
                    topic,
                    value=record.value,
                    key=record.key,
                    headers=original_headers(record.headers or ()),
                )
                for record in records
            ]
            await asyncio.gather(*sent)
            # Commit only what was replayed: each partition's last replayed offset + 1.
            offsets: dict[TopicPartition, int] = {}
            for record in records:
                tp = TopicPartition(record.topic, record.partition)
                offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
            if offsets:
                await consumer.commit(offsets)
            return len(records)
        finally:
            await producer.stop()
    finally:
        await consumer.stop()
