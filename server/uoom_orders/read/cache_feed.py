"""Keeps the near cache coherent: every API replica tails the event topic from its end.

No consumer group: each replica needs every event, and a restarted replica starts empty, so
it tails from the end. The feed is "live" while the broker answers; when it stops answering,
the near cache is bypassed (it may be missing events). When the broker answers again the feed
resumes where it stopped and answers again once it has applied every event it missed, so the
cache stays whole. When it cannot resume (the records are gone, a broker restarted empty) it
tails from the end and every entry is demoted: it no longer answers, but its version still
bounds what this replica answers (see near_cache.py). Either way a replica never goes back in
time because its feed went down.

Reconciliation's events apply whatever their version: ORDER_EVENT_TYPE_CORRECTED replaces the
entry with the order as PostgreSQL has it, ORDER_EVENT_TYPE_REMOVED drops it.

Once applied, an event goes to the feed's listener (the watches' hub, watch/hub.py), unless it
is older than what the cache holds (a duplicate or late event that changes nothing); and when
the feed starts again from the end, events may have been missed: the listener's `on_gap` is
called first, before any event after the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from uoom.orders.v1 import order_events_pb2, order_pb2

from uoom_orders.kafka_clients import kafka_consumer
from uoom_orders.observability.metrics import NEAR_CACHE_FEED_LAG
from uoom_orders.observability.stage_lag import observe_since_published
from uoom_orders.read.near_cache import NearCache
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.retry import Backoff
from uoom_orders.runtime.tasks import cancel_and_wait
from uoom_orders.wire import summary_from_order

_log = logging.getLogger(__name__)

# Reconnect delays: a replica whose feed is down serves from slower tiers, so it retries often.
_FIRST_RETRY = 0.1
_MAX_RETRY = 1.0

FeedListener = Callable[[order_events_pb2.OrderEvent, order_pb2.OrderSummary | None], None]
"""Called with each applied event and its order's status record (None for a removal)."""


class NearCacheFeed(LongRunning):
    """Applies each event's order snapshot to the near cache (newest version wins)."""

    def __init__(
        self,
        cache: NearCache,
        *,
        bootstrap_servers: str,
        topic: str,
        entry_ttl_seconds: float,
        fetch_max_wait_ms: int = 500,
        probe_interval: float = 0.5,
        max_silence: float = 2.0,
    ) -> None:
        self._cache = cache
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._entry_ttl = entry_ttl_seconds
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._probe_interval = probe_interval
        self._max_silence = max_silence
        self._last_ok = 0.0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        # The next offset to apply in each partition: where a reconnect resumes.
        self._positions: dict[TopicPartition, int] = {}
        self.applied = 0
        self._listener: FeedListener | None = None
        self._on_gap: Callable[[], None] | None = None

    def listen(
        self, listener: FeedListener | None, on_gap: Callable[[], None] | None = None
    ) -> None:
        """Hands every event applied from now on to `listener`, and calls `on_gap` whenever the
        feed may have missed events (one listener at most; None: none)."""
        self._listener = listener
        self._on_gap = on_gap

    def is_live(self) -> bool:
        """True while the broker answered within `max_silence` seconds and we tail from a
        position that has seen every event since the cache was last cleared."""
        return self._live and time.monotonic() - self._last_ok < self._max_silence

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="near-cache-feed")

    async def stop(self) -> None:
        """Stops tailing; safe to call twice."""
        task, self._task = self._task, None
        self._live = False
        await cancel_and_wait(task)

    async def wait_live(self, within: float) -> bool:
        """Waits until the feed is live (for start-up and tests); returns whether it is."""
        deadline = time.monotonic() + within
        while not self.is_live():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _run(self) -> None:
        backoff = Backoff(_FIRST_RETRY, _MAX_RETRY)
        while True:
            was_live_at = self._last_ok
            # A feed that was live since the last attempt starts over: the broker is back
            # within a second of answering again, not after a backoff grown during an outage.
            failure: Exception | None = None
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failure = error
            self._live = False
            if self._last_ok != was_live_at:
                backoff.reset()
            delay = backoff.next_delay()
            if failure is not None:
                _log.warning("near cache feed interrupted: %r; retrying in %.2fs", failure, delay)
            await asyncio.sleep(delay)

    async def _follow(self) -> None:
        consumer = kafka_consumer(
            self._bootstrap,
            group_id=None,
            auto_offset_reset="latest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            request_timeout_ms=5000,
            metadata_max_age_ms=30_000,
        )
        try:
            await consumer.start()
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            catch_up = await self._resume(consumer, partitions)
            if catch_up is None:
                await consumer.seek_to_end(*partitions)
                # Resolve the end offsets now, so everything after this point is seen.
                for partition in partitions:
                    self._positions[partition] = await consumer.position(partition)
                # Events may have been missed since the entries were stored: they stop
                # answering and stay as floors until a read or an event brings them up to date.
                self._cache.demote()
                if self._on_gap is not None:
                    self._on_gap()
                self._live = True
                _log.info(
                    "near cache feed live on %s (%d partitions)", self._topic, len(partitions)
                )
            else:
                _log.info("near cache feed resumes %s where it stopped", self._topic)
            self._mark_ok()
            next_probe = time.monotonic() + self._probe_interval
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=1000)
                for partition, records in batches.items():
                    for record in records:
                        try:
                            self._apply(record.value)
                        except ValueError:  # e.g. a malformed order id: the projector's poison
                            _log.debug("near cache feed skipped a malformed event")
                        observe_since_published(NEAR_CACHE_FEED_LAG, record, time.time())
                    if records:
                        self._positions[partition] = records[-1].offset + 1
                if batches:
                    self._mark_ok()
                if catch_up is not None and all(
                    self._positions[p] >= end for p, end in catch_up.items()
                ):
                    # Every event missed while the feed was down is applied: answer again.
                    catch_up = None
                    self._live = True
                    _log.info("near cache feed live again on %s, nothing missed", self._topic)
                if time.monotonic() >= next_probe:
                    # getmany() hides a dead broker (it retries quietly): ask it something.
                    async with asyncio.timeout(self._max_silence):
                        await consumer.end_offsets(partitions)
                    self._mark_ok()
                    next_probe = time.monotonic() + self._probe_interval
        finally:
            self._live = False
            await consumer.stop()

    async def _resume(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int] | None:
        """Seeks back to where the feed stopped, when the broker still has every record from
        there; returns the end offsets to reach before answering again, or None when the feed
        cannot resume (first start, other partitions, records gone, a broker that restarted
        empty) and must start from the end."""
        saved = self._positions
        if not saved or set(saved) != set(partitions):
            return None
        async with asyncio.timeout(self._max_silence * 2):
            first = await consumer.beginning_offsets(partitions)
            end = await consumer.end_offsets(partitions)
        if not all(first[p] <= saved[p] <= end[p] for p in partitions):
            _log.warning("near cache feed cannot resume %s: records are gone", self._topic)
            return None
        for partition in partitions:
            consumer.seek(partition, saved[partition])
        return {partition: int(end[partition]) for partition in partitions}

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        async with asyncio.timeout(10):
            while True:
                numbers = consumer.partitions_for_topic(self._topic)
                if numbers:
                    return [TopicPartition(self._topic, n) for n in sorted(numbers)]
                await consumer.topics()  # refreshes the cluster metadata
                await asyncio.sleep(0.1)

    def _mark_ok(self) -> None:
        self._last_ok = time.monotonic()

    def _apply(self, payload: bytes | None) -> None:
        if not payload:
            return
        try:
            event = order_events_pb2.OrderEvent.FromString(payload)
        except Exception:  # a poison message is the projector's to dead-letter, not ours
            _log.debug("near cache feed skipped an undecodable message")
            return
        listener = self._listener
        if event.event_type == order_events_pb2.ORDER_EVENT_TYPE_REMOVED:
            with contextlib.suppress(ValueError):
                self._cache.discard(UUID(event.order_id))
                self.applied += 1
                if listener is not None:
                    listener(event, None)
            return
        if not event.HasField("order") or not event.order.order_id:
            return
        order = event.order
        summary = summary_from_order(order)
        expires_at = time.time() + self._entry_ttl
        if event.event_type == order_events_pb2.ORDER_EVENT_TYPE_CORRECTED:
            stored = self._cache.replace(summary, order, expires_at)
        else:
            stored = self._cache.put(summary, order, expires_at)
        if stored:
            self.applied += 1
        if listener is not None and (
            stored
            or event.event_type == order_events_pb2.ORDER_EVENT_TYPE_CORRECTED
            # Not stored: the same version is cached (a read filled it first: still news to
            # a watch), or a newer one (a stale event: news to nobody).
            or self._cache.floor(UUID(order.order_id)) <= order.version
        ):
            listener(event, summary)
