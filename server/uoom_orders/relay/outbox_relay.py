"""The outbox relay: publishes committed outbox rows to Kafka, in order per order.

Ordering across several relays: a transaction-level advisory lock (`pg_try_advisory_xact_lock`)
lets one relay claim and publish a batch at a time; the others stand by as hot spares and
take over at their next poll when the holder stops or dies (PostgreSQL drops the lock with its
connection). Rows leave in id order, and one order's rows have ids in version order (a change
inserts its row only after the previous change committed, under the order's row lock), so a
single publisher at a time sends version N before N+1. The alternatives were weaker: with
`FOR UPDATE SKIP LOCKED` alone, a second relay skips version N that the first relay holds and
publishes N+1 first; splitting work by hash(order_id) needs a membership protocol to hand
partitions over. One relay publishes about 20,000 events/s on the local stack, far above the
API's write rate, so a single publisher costs no needed throughput; and the lock is released
between batches, so a relay whose broker connection is broken does not hold the others up.

Skipping: rows are found by `published_at IS NULL`, not by a high-water-mark id, so a row whose
transaction commits after a higher id was published is still found. On top of that the xid
horizon (on by default) holds a committed row back until every transaction that started
before it has ended, so rows are published in id order overall, not only per order. Its cost is
latency behind long-open writers; a rolled-back writer sends no NOTIFY, so held-back rows are
re-checked within milliseconds, and a warning names the transaction that holds them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import Any

import asyncpg

from uoom_orders.config import ConfigError, Settings
from uoom_orders.observability.metrics import (
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_ERRORS,
    OUTBOX_PUBLISHED,
    OUTBOX_PURGED,
)
from uoom_orders.relay.backoff import Backoff
from uoom_orders.relay.outbox_store import OutboxStats, PostgresOutboxStore
from uoom_orders.relay.publisher import EventPublisher, KafkaEventPublisher, PublishError
from uoom_orders.write.outbox import OUTBOX_CHANNEL

_log = logging.getLogger(__name__)

# The LISTEN connection is checked this often: a connection that died without a FIN (a network
# partition) would otherwise look alive and stop delivering notifications.
_LISTENER_CHECK_SECONDS = 10.0
_LISTENER_CHECK_TIMEOUT = 5.0
# A held-back row is checked again this soon at first: the older transaction blocking it may
# roll back, and a rollback sends no NOTIFY.
_HELD_BACK_RECHECK_SECONDS = 0.005
_HELD_BACK_WARNING_EVERY_SECONDS = 30.0


class OutboxRelay:
    """Publishes outbox rows until stopped: `async with relay:` or `await relay.run()`.

    Wakes on NOTIFY `uoom_outbox` and also polls every `poll_interval`, so a lost
    notification or a dropped LISTEN connection only delays a row until the next poll. Drains
    batch after batch while rows are waiting. A failed batch is rolled back (its rows stay
    unpublished) and retried with capped exponential backoff. Published rows are deleted
    after `retention`. Delivery is at-least-once: a crash between Kafka's acknowledgement and
    the commit publishes the batch again.
    """

    def __init__(
        self,
        database_url: str,
        publisher: EventPublisher,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(hours=24),
        purge_interval: float = 60.0,
        purge_chunk_size: int = 5000,
        listen: bool = True,
        respect_xid_horizon: bool = True,
        backoff_initial: float = 0.05,
        backoff_max: float = 1.0,
        held_back_warning_after: float = 10.0,
        application_name: str = "uoom-outbox-relay",
    ) -> None:
        if batch_size < 1 or purge_chunk_size < 1:
            raise ValueError("batch_size and purge_chunk_size must be positive")
        if poll_interval <= 0 or purge_interval <= 0:
            raise ValueError("poll_interval and purge_interval must be positive")
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        self._database_url = database_url
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._purge_interval = purge_interval
        self._purge_chunk_size = purge_chunk_size
        self._listen = listen
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._held_back_warning_after = held_back_warning_after
        self._application_name = application_name
        self._store = PostgresOutboxStore(respect_xid_horizon=respect_xid_horizon)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._finished = asyncio.Event()
        self._started = False
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self._stats: OutboxStats | None = None
        self._published = 0
        self._last_held_back_warning = -math.inf

    @classmethod
    def from_settings(
        cls, settings: Settings, publisher: EventPublisher | None = None
    ) -> OutboxRelay:
        """A relay configured by Settings; publishes to KAFKA_TOPIC unless given a publisher."""
        if publisher is None:
            if not settings.kafka_bootstrap_servers:
                raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is required to run the outbox relay")
            publisher = KafkaEventPublisher(
                settings.kafka_bootstrap_servers,
                settings.kafka_topic,
                enable_idempotence=settings.kafka_idempotent_producer,
            )
        return cls(
            settings.database_url,
            publisher,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
        )

    @property
    def publisher(self) -> EventPublisher:
        """Where the relay publishes; it closes the publisher when it stops."""
        return self._publisher

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task `async with` started (None before it and after `stop()`)."""
        return self._task

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._listening

    @property
    def stats(self) -> OutboxStats | None:
        """The outbox as of this relay's last poll (None before the first)."""
        return self._stats

    @property
    def published(self) -> int:
        """Rows this relay has published and marked."""
        return self._published

    async def __aenter__(self) -> OutboxRelay:
        """Starts `run()` in a task; returns once connected, or raises why it could not start."""
        self._task = asyncio.create_task(self.run(), name="outbox-relay")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
        if self._task.done():
            task, self._task = self._task, None
            task.result()  # raises the start error
            raise RuntimeError("the outbox relay stopped while starting")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def request_stop(self) -> None:
        """Asks the relay to stop after the batch in flight; returns at once (signal-safe)."""
        self._stopping.set()
        self._wake.set()

    async def stop(self) -> None:
        """Stops after the batch in flight and waits until everything is closed; safe twice."""
        self.request_stop()
        task, self._task = self._task, None
        if task is not None:
            await task
        elif self._started:
            await self._finished.wait()

    async def run(self) -> None:
        """Publishes until `stop()`; raises only if it cannot connect to PostgreSQL at start."""
        if self._started:
            raise RuntimeError("an OutboxRelay runs once; make a new one")
        self._started = True
        try:
            async with AsyncExitStack() as stack:
                # Two connections: the publish loop and the purge loop. LISTEN has its own,
                # outside the pool, because it must stay on one session.
                pool: asyncpg.Pool = await asyncpg.create_pool(
                    self._database_url,
                    min_size=1,
                    max_size=2,
                    server_settings={"application_name": self._application_name},
                )
                stack.push_async_callback(pool.close)
                await stack.enter_async_context(self._publisher)
                tasks: list[asyncio.Task[None]] = []
                stack.push_async_callback(_cancel_and_wait, tasks)
                if self._listen:
                    tasks.append(asyncio.create_task(self._listen_loop(), name="outbox-listen"))
                tasks.append(asyncio.create_task(self._purge_loop(pool), name="outbox-purge"))
                self._ready.set()
                _log.info(
                    "outbox relay started (batch %d, poll %.3gs, listen %s, xid horizon %s)",
                    self._batch_size,
                    self._poll_interval,
                    self._listen,
                    self._store.respect_xid_horizon,
                )
                await self._publish_loop(pool)
        finally:
            self._listening = False
            self._finished.set()
            _log.info("outbox relay stopped after publishing %d rows", self._published)

    # --- publishing ------------------------------------------------------------------------

    async def _publish_loop(self, pool: asyncpg.Pool) -> None:
        failures = Backoff(self._backoff_initial, self._backoff_max)
        recheck = Backoff(min(_HELD_BACK_RECHECK_SECONDS, self._poll_interval), self._poll_interval)
        while not self._stopping.is_set():
            # Cleared before reading: a NOTIFY arriving during the drain wakes the next cycle.
            self._wake.clear()
            try:
                active, stats = await self._cycle(pool)
            except Exception as error:
                OUTBOX_PUBLISH_ERRORS.inc()
                delay = failures.next_delay()
                _log.warning(
                    "outbox relay: publishing failed (attempt %d), rows stay unpublished; "
                    "retrying in %.3fs: %s",
                    failures.attempts,
                    delay,
                    error,
                    # Kafka failures are expected and say enough; anything else gets a trace.
                    exc_info=not isinstance(error, PublishError),
                )
                # A NOTIFY does not cut a backoff short; only stop() does.
                await self._sleep(delay)
                continue
            if failures.attempts:
                _log.info(
                    "outbox relay: publishing again after %d failed attempts", failures.attempts
                )
                failures.reset()
            if not active:
                # Standby: another relay holds the publisher lock. Try again at the next poll,
                # not at every NOTIFY, so a standby costs the database almost nothing.
                await self._sleep(self._poll_interval)
            elif stats.held_back:
                await self._wait_for_wake(recheck.next_delay())
            else:
                recheck.reset()
                await self._wait_for_wake(self._poll_interval)

    async def _cycle(self, pool: asyncpg.Pool) -> tuple[bool, OutboxStats]:
        """Drains the outbox, then measures it: (whether this relay was the publisher, stats)."""
        async with pool.acquire() as conn:
            try:
                active = await self._drain(conn)
            except PublishError:
                # Measure after a failed batch too: the oldest row's age matters most while
                # publishing fails. The publish error is the one to report, not this one.
                with contextlib.suppress(Exception):
                    await self._refresh_stats(conn)
                raise
            return active, await self._refresh_stats(conn)

    async def _drain(self, conn: asyncpg.Connection) -> bool:
        """Publishes batches back to back until the outbox is drained; False on standby."""
        while True:
            async with self._store.claim(conn, self._batch_size) as batch:
                if batch is None:
                    return False
                if batch.records:
                    await self._publisher.publish_batch(batch.records)
                await batch.mark_published()
            count = len(batch.records)
            if count:
                OUTBOX_PUBLISHED.inc(count)
                self._published += count
                _log.debug(
                    "outbox relay: published %d rows up to id %d", count, batch.records[-1].id
                )
            # Stopping ends the drain after the batch in flight.
            if count < self._batch_size or self._stopping.is_set():
                return True

    async def _refresh_stats(self, conn: asyncpg.Connection) -> OutboxStats:
        stats = await self._store.stats(conn)
        self._stats = stats
        OUTBOX_PENDING.set(stats.pending)
        OUTBOX_OLDEST_AGE.set(stats.oldest_age_seconds)
        if stats.held_back and stats.oldest_age_seconds >= self._held_back_warning_after:
            await self._warn_held_back(conn, stats)
        return stats

    async def _warn_held_back(self, conn: asyncpg.Connection, stats: OutboxStats) -> None:
        now = time.monotonic()
        if now - self._last_held_back_warning < _HELD_BACK_WARNING_EVERY_SECONDS:
            return
        self._last_held_back_warning = now
        writer = await self._store.oldest_writer(conn)
        blocker = (
            f"pid {writer.pid} ({writer.application_name or 'no application_name'}, "
            f"{writer.state}, open {writer.open_seconds:.1f}s)"
            if writer is not None
            else "a transaction that has since ended"
        )
        _log.warning(
            "outbox relay: %d committed rows wait for an older open transaction to end; "
            "oldest unpublished row is %.1fs old; oldest open writer: %s",
            stats.held_back,
            stats.oldest_age_seconds,
            blocker,
        )

    # --- waking up -------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        """Keeps a LISTEN connection up, reconnecting with backoff; every NOTIFY wakes us."""
        backoff = Backoff(min(0.1, self._backoff_max), self._backoff_max)
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._database_url,
                    server_settings={"application_name": f"{self._application_name}-listen"},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(OUTBOX_CHANNEL, self._on_notify)
                self._listening = True
                if backoff.attempts:
                    _log.info("outbox relay: LISTEN %s restored", OUTBOX_CHANNEL)
                backoff.reset()
                # Rows committed while nobody listened sent their NOTIFY into the void.
                self._wake.set()
                await self._watch_listener(conn, lost)
                if not self._stopping.is_set():
                    _log.warning("outbox relay: LISTEN connection lost; polling until it is back")
            except Exception as error:
                _log.warning("outbox relay: LISTEN %s failed: %s", OUTBOX_CHANNEL, error)
            finally:
                self._listening = False
                if conn is not None:
                    await _close_quietly(conn)
            if not self._stopping.is_set():
                await self._sleep(backoff.next_delay())

    async def _watch_listener(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection is lost, fails a liveness check, or the relay stops."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), _LISTENER_CHECK_SECONDS)
            if lost.is_set() or conn.is_closed():
                return
            if self._stopping.is_set():
                return
            await conn.fetchval("SELECT 1", timeout=_LISTENER_CHECK_TIMEOUT)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self._wake.set()

    async def _wait_for_wake(self, seconds: float) -> None:
        """Waits for a NOTIFY (or stop()) at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, cut short only by stop()."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- retention -------------------------------------------------------------------------

    async def _purge_loop(self, pool: asyncpg.Pool) -> None:
        """Deletes rows published more than `retention` ago: at start, then every interval."""
        while not self._stopping.is_set():
            try:
                async with pool.acquire() as conn:
                    purged = await self._purge(conn)
                if purged:
                    _log.info("outbox relay: purged %d published rows", purged)
            except Exception as error:
                _log.warning("outbox relay: purge failed: %s", error, exc_info=True)
            await self._sleep(self._purge_interval)

    async def _purge(self, conn: asyncpg.Connection) -> int:
        # Bounded chunks, each its own short transaction: a big delete would hold the xid
        # horizon back (delaying every newer row) and bloat one transaction.
        total = 0
        while not self._stopping.is_set():
            deleted = await self._store.purge_chunk(conn, self._retention, self._purge_chunk_size)
            if deleted is None:  # another relay is purging
                break
            total += deleted
            OUTBOX_PURGED.inc(deleted)
            if deleted < self._purge_chunk_size:
                break
        return total


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), _LISTENER_CHECK_TIMEOUT)
    except Exception:
        conn.terminate()
