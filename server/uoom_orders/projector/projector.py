"""The projector: order events from Kafka into the read model, offsets committed after writes.

Events are state transfer (each carries the whole order as of its version), so applying one
means "write this version unless the read model holds it or a newer one". That makes the
projection insensitive to duplicates and to order, which is what lets it:
- keep only the newest version per order within a batch;
- write a batch's orders concurrently;
- replay anything after a crash: offsets are committed only once the batch is written, so a
  crash re-delivers at most the uncommitted batches, and re-applying them changes nothing.

Failures are told apart by whose fault they are. A record that cannot be decoded, or an order
the read model refuses, is poison: it goes to the dead-letter topic and the partition moves
on. A read model that cannot be reached (connection errors, timeouts, throttling, 5xx, a
missing table) is an outage: nothing is dead-lettered and nothing committed; the batch is
retried with backoff, fetching paused, until the writes succeed or the projector is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from google.protobuf.message import DecodeError
from uoom.orders.v1 import order_events_pb2

from uoom_orders import wire
from uoom_orders.config import Settings
from uoom_orders.observability import tracing
from uoom_orders.observability.metrics import (
    PROJECTOR_APPLIED,
    PROJECTOR_CONSUMER_LAG,
    PROJECTOR_DEAD_LETTERS,
    PROJECTOR_E2E_LAG,
    PROJECTOR_STALE,
)
from uoom_orders.projector.dead_letters import dead_letter_headers
from uoom_orders.readmodel.items import ttl_after
from uoom_orders.readmodel.ports import (
    ProjectionWriter,
    PutResult,
    ReadModelUnavailable,
    ReadModelWriteRejected,
)
from uoom_orders.readmodel.tables import DETAILS_TABLE, STATUS_TABLE

_log = logging.getLogger(__name__)

# How often a consumer waiting for its group's assignment checks whether the join is stuck.
_JOIN_CHECK_SECONDS = 1.0


_PUT_ORDER_SPAN = {"db.system": "dynamodb", "rpc.system": "aws-api", "rpc.service": "DynamoDB"}


def _outcome_name(outcome: PutResult | _Poison | _Outage) -> str:
    if isinstance(outcome, PutResult):
        return "applied" if outcome.applied else "stale"
    return "dead-letter" if isinstance(outcome, _Poison) else "outage"


class PoisonMessage(ValueError):
    """A record that is not a well-formed order event."""


_CORRECTED = order_events_pb2.ORDER_EVENT_TYPE_CORRECTED
_REMOVED = order_events_pb2.ORDER_EVENT_TYPE_REMOVED


def decode_event(value: bytes | None) -> order_events_pb2.OrderEvent:
    """The event in a record's value, validated; raises PoisonMessage for anything else.

    A REMOVED event carries only `order_id`; every other kind carries the whole order.
    """
    if value is None:
        raise PoisonMessage("record has no value")
    try:
        message = order_events_pb2.OrderEvent.FromString(value)
    except DecodeError as error:
        raise PoisonMessage(f"not a protobuf OrderEvent: {error}") from error
    try:
        if message.event_type == _REMOVED:
            if message.HasField("order"):
                raise ValueError("a removal carries no order")
            UUID(message.order_id)
            return message
        if message.event_type == _CORRECTED:
            if not message.HasField("order") or message.version != message.order.version:
                raise ValueError("a correction without an order, or with another version")
            wire.order_from_proto(message.order)
        else:
            # The domain conversion checks ids, status, event type and version consistency.
            wire.event_from_proto(message)
    except (ValueError, OverflowError, TypeError) as error:
        raise PoisonMessage(f"malformed OrderEvent: {error}") from error
    if message.version < 1:
        raise PoisonMessage(f"malformed OrderEvent: version {message.version}")
    return message


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


@dataclass
class ProjectorStats:
    """Counts since start; every consumed record ends up in exactly one of applied, stale,
    superseded, removed and dead_lettered (or is still in flight when the projector is stopped
    during an outage). `corrections` counts reconciliation's events among them."""

    batches: int = 0
    consumed: int = 0
    outage_retries: int = 0
    applied: int = 0
    stale: int = 0
    superseded: int = 0
    # REMOVED events: reconciliation deleted the order's items, nothing to write.
    removed: int = 0
    dead_lettered: int = 0
    corrections: int = 0
    # Times the consumer left a group join that did not end and joined again.
    rejoins: int = 0
    commit_failures: int = 0


@dataclass
class _Pending:
    event: order_events_pb2.OrderEvent
    record: Any  # aiokafka ConsumerRecord


@dataclass
class _Letter:
    record: Any
    error: str


@dataclass
class _Outage:
    error: BaseException


@dataclass
class _Poison:
    error: str


class _Stopped(Exception):
    """Stop was requested while a batch could not finish; it stays uncommitted."""


@dataclass
class _Backoff:
    base: float
    ceiling: float
    failures: int = field(default=0)

    def next_delay(self) -> float:
        self.failures += 1
        # Full jitter, capped: replicas hit by the same outage do not retry in step.
        return random.uniform(self.base, min(self.ceiling, self.base * 2**self.failures))


class _GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells whether the consumer is in the group with an assignment (possibly empty) or still
    joining: a join starts when partitions are revoked and ends when some are assigned."""

    def __init__(self) -> None:
        self._joining_since: float | None = time.monotonic()

    def joining_for(self) -> float:
        """Seconds since the current join began; 0 when the consumer has its assignment."""
        since = self._joining_since
        return 0.0 if since is None else time.monotonic() - since

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self._joining_since is None:
            self._joining_since = time.monotonic()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._joining_since = None


class OrderProjector:
    """Consumes the order event topic in a consumer group and writes the read model.

    `run()` consumes until `stop()`; `stop()` lets the current batch finish and commit, then
    closes the clients, and is safe to call twice. As an async context manager, entering
    starts the clients and leaving stops. Offsets are committed only after a batch's writes
    and dead letters succeeded.
    """

    def __init__(
        self,
        writer: ProjectionWriter,
        config: ProjectorConfig,
        *,
        clock: Callable[[], float] = time.time,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self._writer = writer
        self._on_recovered = on_recovered
        self._config = config
        self._clock = clock
        self.stats = ProjectorStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._stopping = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._run_finished = asyncio.Event()
        self._running = False
        self._closed = False
        self._next_offsets: dict[TopicPartition, int] = {}
        self._membership = _GroupMembership()

    @property
    def config(self) -> ProjectorConfig:
        return self._config

    async def __aenter__(self) -> OrderProjector:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connects the consumer (subscribed to the topic) and the dead-letter producer."""
        async with self._start_lock:  # run() starts too; a concurrent start() must wait
            await self._start()

    async def _start(self) -> None:
        if self._closed:
            raise RuntimeError("the projector is stopped; make a new one")
        if self._consumer is not None:
            return
        config = self._config
        producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap_servers,
            client_id=config.client_id,
            acks="all",
            enable_idempotence=config.idempotent_producer,
        )
        consumer = self._new_consumer()
        # A client that failed to start still holds sockets and warns when collected.
        try:
            await producer.start()
            await consumer.start()
        except BaseException:
            await consumer.stop()
            await producer.stop()
            raise
        self._producer, self._consumer = producer, consumer
        _log.info(
            "projector started: topic %s, group %s, dead letters to %s",
            config.topic,
            config.group_id,
            config.dlq_topic,
        )

    def _new_consumer(self) -> AIOKafkaConsumer:
        config = self._config
        consumer = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap_servers,
            client_id=config.client_id,
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=config.fetch_max_wait_ms,
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_interval_ms=config.max_poll_interval_ms,
        )
        self._membership = _GroupMembership()
        consumer.subscribe([config.topic], listener=self._membership)
        return consumer

    async def _rejoin_if_stuck(self) -> None:
        """Leaves the group and joins again as a new member when a join has not ended.

        A join normally takes a fraction of the session timeout. The local tansu broker can
        answer two members that join at the same moment with a group that has no leader: both
        then rejoin in step forever and nothing is projected. A new member, after a random
        pause, breaks the tie; with Kafka it costs one extra join.
        """
        waited = self._membership.joining_for()
        limit = max(5.0, 3 * self._config.session_timeout_ms / 1000)
        if waited < limit:
            return
        _log.warning(
            "projector: no partitions assigned after %.1fs in the group; rejoining as a new member",
            waited,
        )
        self.stats.rejoins += 1
        old, self._consumer = self._consumer, None
        if old is not None:
            await old.stop()
        await asyncio.sleep(random.uniform(0, self._config.session_timeout_ms / 1000))
        consumer = self._new_consumer()
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def run(self) -> None:
        """Consumes and projects until `stop()`, then closes the clients."""
        if self._running:
            raise RuntimeError("the projector is already running")
        self._running = True
        try:
            await self.start()
            while not self._stopping.is_set():
                consumer = self._consumer
                assert consumer is not None
                batch = {}
                # getmany() waits without a timeout while the group rebalances: bounded here,
                # so that a join that never ends is noticed.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_JOIN_CHECK_SECONDS):
                        batch = await consumer.getmany(
                            timeout_ms=self._config.poll_timeout_ms,
                            max_records=self._config.max_records,
                        )
                if batch:
                    try:
                        await self._process(batch)
                    except _Stopped:
                        _log.info("stopped during an outage; the last batch stays uncommitted")
                        break
                else:
                    await self._rejoin_if_stuck()
                self._update_lag()
        finally:
            await self._close()
            self._run_finished.set()

    async def stop(self) -> None:
        """Finishes the batch in hand, commits it, closes the clients. Safe to call twice.

        During an outage the batch cannot finish: it is left uncommitted (and so re-delivered
        to whoever consumes the partitions next).
        """
        self._stopping.set()
        if self._running:
            await self._run_finished.wait()
        else:
            await self._close()

    async def _close(self) -> None:
        self._closed = True
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        try:
            if consumer is not None:
                await consumer.stop()  # leaves the group, so the partitions move at once
        finally:
            if producer is not None:
                await producer.stop()

    # --- one batch ---------------------------------------------------------------------
    async def _process(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        self.stats.batches += 1
        newest: dict[str, _Pending] = {}
        letters: list[_Letter] = []
        for records in batch.values():
            for record in records:
                self.stats.consumed += 1
                try:
                    event = decode_event(record.value)
                except PoisonMessage as error:
                    letters.append(_Letter(record, str(error)))
                    continue
                if event.event_type == _REMOVED:
                    # Reconciliation deleted the order's items itself; nothing before this
                    # event in the batch may bring them back.
                    if newest.pop(event.order_id, None) is not None:
                        self._count_superseded()
                    self.stats.removed += 1
                    self.stats.corrections += 1
                    continue
                order_id = event.order.order_id
                kept = newest.get(order_id)
                if event.event_type == _CORRECTED:
                    # In stream order a correction replaces what came before it, whatever the
                    # versions. Reconciliation has already repaired the tables; writing it
                    # again under the usual condition is harmless and covers a lost repair.
                    self.stats.corrections += 1
                    newest[order_id] = _Pending(event, record)
                    if kept is not None:
                        self._count_superseded()
                elif kept is None or event.version >= kept.event.version:
                    newest[order_id] = _Pending(event, record)
                    if kept is not None:
                        self._count_superseded()
                else:
                    self._count_superseded()
        letters += await self._apply(list(newest.values()))
        await self._dead_letter(letters)
        await self._commit(batch)

    def _count_superseded(self) -> None:
        # A newer version of the same order is in the batch: as stale as an older one in
        # the table, and counted the same way.
        self.stats.superseded += 1
        for table in (STATUS_TABLE, DETAILS_TABLE):
            PROJECTOR_STALE.labels(table=table).inc()

    async def _apply(self, pending: list[_Pending]) -> list[_Letter]:
        """Writes every pending event; returns the poison ones. Retries outages until done."""
        letters: list[_Letter] = []
        backoff = _Backoff(self._config.retry_backoff_seconds, self._config.max_backoff_seconds)
        while pending:
            outcomes = await asyncio.gather(*(self._apply_one(item) for item in pending))
            retry: list[_Pending] = []
            last_outage: BaseException | None = None
            for item, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, PutResult):
                    self._count_written(item, outcome)
                elif isinstance(outcome, _Poison):
                    letters.append(_Letter(item.record, outcome.error))
                else:
                    retry.append(item)
                    last_outage = outcome.error
            if retry:
                delay = backoff.next_delay()
                self.stats.outage_retries += 1
                _log.warning(
                    "read model unavailable (%s): keeping %d event(s) uncommitted, "
                    "retrying in %.1f s",
                    last_outage,
                    len(retry),
                    delay,
                )
                await self._wait_out(delay)
            pending = retry
        if backoff.failures and self._on_recovered is not None:
            # The read model was unreachable and answers again: it may have lost what it held
            # (a restore, a new table) — reconciliation is told to look now.
            self._on_recovered()
        return letters

    async def _apply_one(self, item: _Pending) -> PutResult | _Poison | _Outage:
        record = item.record
        # Continues the trace in the record's headers: gRPC call → transaction → publish → here.
        with tracing.consume_span(
            record.topic,
            record.headers,
            group=self._config.group_id,
            partition=record.partition,
            offset=record.offset,
            order_id=item.event.order.order_id,
            version=item.event.version,
        ) as span:
            outcome = await self._write_one(item)
            span.set_attribute("uoom.projection.outcome", _outcome_name(outcome))
        return outcome

    async def _write_one(self, item: _Pending) -> PutResult | _Poison | _Outage:
        attempts = self._config.apply_attempts
        backoff = _Backoff(self._config.retry_backoff_seconds, self._config.max_backoff_seconds)
        failure: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                async with self._semaphore:
                    ttl = ttl_after(self._config.ttl_hours, self._clock())
                    with tracing.client_span("DynamoDB put_order", _PUT_ORDER_SPAN):
                        return await self._writer.put_order(item.event.order, ttl)
            except ReadModelUnavailable as error:
                return _Outage(error)
            except (ReadModelWriteRejected, ValueError) as error:
                return _Poison(f"{type(error).__name__}: {error}")
            except Exception as error:
                # Neither an outage nor a refusal: maybe transient, maybe a bug. A few
                # tries, then the dead-letter topic, so one order cannot stall its partition.
                failure = error
                _log.warning(
                    "applying order %s v%d failed (attempt %d of %d): %r",
                    item.event.order.order_id,
                    item.event.version,
                    attempt,
                    attempts,
                    error,
                )
                if attempt < attempts:
                    await asyncio.sleep(backoff.next_delay())
        return _Poison(f"failed after {attempts} attempts: {failure!r}")

    def _count_written(self, item: _Pending, result: PutResult) -> None:
        tables = ((STATUS_TABLE, result.status_written), (DETAILS_TABLE, result.details_written))
        for table, written in tables:
            (PROJECTOR_APPLIED if written else PROJECTOR_STALE).labels(table=table).inc()
        if result.applied:
            self.stats.applied += 1
            occurred = item.event.occurred_at
            PROJECTOR_E2E_LAG.observe(
                max(0.0, self._clock() - (occurred.seconds + occurred.nanos / 1e9))
            )
        else:
            self.stats.stale += 1

    async def _dead_letter(self, letters: list[_Letter]) -> None:
        """Publishes the letters to the dead-letter topic; retries until the broker takes them."""
        if not letters:
            return
        assert self._producer is not None
        topic = self._config.dlq_topic
        backoff = _Backoff(self._config.retry_backoff_seconds, self._config.max_backoff_seconds)
        while True:
            try:
                sent = [
                    await self._producer.send(
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
                break
            except KafkaError as error:
                # Committing past a letter that was not stored would lose it: wait instead.
                delay = backoff.next_delay()
                _log.warning(
                    "dead-letter topic %s unavailable (%r); retry in %.1f s", topic, error, delay
                )
                await self._wait_out(delay)
        for letter in letters:
            PROJECTOR_DEAD_LETTERS.inc()
            self.stats.dead_lettered += 1
            _log.error(
                "dead-lettered %s[%d]@%d to %s: %s",
                letter.record.topic,
                letter.record.partition,
                letter.record.offset,
                topic,
                letter.error,
            )

    async def _commit(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        consumer = self._consumer
        assert consumer is not None
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        # A partition revoked mid-batch belongs to another member now; it re-delivers those
        # records, and re-applying them is harmless.
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        backoff = _Backoff(self._config.retry_backoff_seconds, self._config.max_backoff_seconds)
        for attempt in range(1, 4):
            try:
                await consumer.commit(offsets)
                self._next_offsets.update(offsets)
                return
            except (CommitFailedError, IllegalStateError) as error:
                _log.warning("commit refused after a rebalance (%r); records re-delivered", error)
                break
            except KafkaError as error:
                _log.warning("commit failed (attempt %d of 3): %r", attempt, error)
                if attempt < 3:
                    await asyncio.sleep(backoff.next_delay())
        # Not fatal: the next batch's commit covers these offsets, and a restart before it
        # re-applies them, which the version condition makes harmless.
        self.stats.commit_failures += 1

    async def _wait_out(self, delay: float) -> None:
        """Sleeps `delay` with fetching paused; raises _Stopped when stop is requested."""
        consumer = self._consumer
        assert consumer is not None
        # Heartbeats continue in the background, so the group keeps our partitions for up to
        # max_poll_interval_ms; fetching is paused so no more records pile up meanwhile.
        consumer.pause(*consumer.assignment())
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return
        finally:
            consumer.resume(*consumer.paused())
        raise _Stopped

    def _update_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._next_offsets.get(tp)
            if highwater is None or position is None:
                continue
            PROJECTOR_CONSUMER_LAG.labels(partition=str(tp.partition)).set(
                max(0, highwater - position)
            )


async def run_projector(
    settings: Settings,
    stop: asyncio.Event,
    *,
    session: Any = None,
    **overrides: Any,
) -> ProjectorStats:
    """Runs a projector configured from `settings` until `stop` is set or it fails.

    Owns its DynamoDB client (`ReadModelWriter.from_settings`); `overrides` go to
    `ProjectorConfig`. For the CLI and bootstrap.
    """
    from uoom_orders.readmodel.writer import ReadModelWriter

    config = ProjectorConfig.from_settings(settings, **overrides)
    async with await ReadModelWriter.from_settings(settings, session) as writer:
        projector = OrderProjector(writer, config)
        running = asyncio.create_task(projector.run(), name="order-projector")
        stopping = asyncio.create_task(stop.wait(), name="order-projector-stop")
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await projector.stop()
            await running  # re-raises what ended the run, if anything did
        return projector.stats
