"""The outbox relay: publishes committed outbox rows to Kafka, in order per order.

Ordering across several relays: a transaction-level advisory lock (`pg_try_advisory_xact_lock`)
lets one relay claim and publish a batch at a time; the others stand by as hot spares and
take over at their next poll when the holder stops or dies (PostgreSQL drops the lock with its
connection). Rows leave in id order, and one order's rows have ids in version order (a change
inserts its row after its UPDATE took the order's row lock, in the same statement or
transaction, so only after the previous change committed), so a single publisher at a time
sends version N before N+1. The alternatives were weaker: with
`FOR UPDATE SKIP LOCKED` alone, a second relay skips version N that the first relay holds and
publishes N+1 first; splitting work by hash(order_id) needs a membership protocol to hand
partitions over. One relay publishes about 20,000 events/s on the local stack, far above the
API's write rate, so a single publisher costs no needed throughput; and the lock is released
between batches, so a relay whose broker connection is broken does not hold the others up.

Skipping: rows are found by `published_at IS NULL`, so a row whose transaction commits after a
higher id was published is still found (a claim starts past the highest id published, and from
the xid horizon for rows below it: outbox_store.ClaimPosition). On top of that the xid
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
from contextlib import AsyncExitStack

import asyncpg

from uoom_orders.observability.metrics import (
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_ERRORS,
    OUTBOX_PUBLISH_LAG,
    OUTBOX_PUBLISHED,
)
from uoom_orders.observability.stage_lag import observe_since_committed
from uoom_orders.postgres_outages import POSTGRES_UNAVAILABLE
from uoom_orders.postgres_pools import postgres_pool
from uoom_orders.relay.config import RelayConfig
from uoom_orders.relay.listener import NotifyListener
from uoom_orders.relay.outbox_store import OutboxStats, PostgresOutboxStore
from uoom_orders.relay.publisher import EventPublisher, PublishError
from uoom_orders.relay.retention import purge_published
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.retry import Backoff
from uoom_orders.runtime.tasks import BackgroundTasks, cancel_and_wait

_log = logging.getLogger(__name__)

# A failed cycle whose cause is one of these is logged as a line, without a traceback.
_EXPECTED_FAILURES: tuple[type[BaseException], ...] = (PublishError, *POSTGRES_UNAVAILABLE)

# A held-back row is checked again this soon at first: the older transaction blocking it may
# roll back, and a rollback sends no NOTIFY. The wait grows while rows stay held back, but no
# further than this (or the poll interval, if shorter): a long transaction that finally rolls
# back must not leave the rows after it waiting for a whole poll. Seen: held back for some
# seconds on a loaded machine, the wait had grown to the 30 s poll of a test.
_HELD_BACK_RECHECK_SECONDS = 0.005
_HELD_BACK_RECHECK_MAX_SECONDS = 1.0
_HELD_BACK_WARNING_EVERY_SECONDS = 30.0


class OutboxRelay(LongRunning):
    """Publishes outbox rows until stopped: `async with relay:` or `await relay.run()`.

    Wakes on NOTIFY `uoom_outbox` and also polls every `poll_interval`, so a lost
    notification or a dropped LISTEN connection only delays a row until the next poll. Drains
    batch after batch while rows are waiting. A failed batch is rolled back (its rows stay
    unpublished) and retried with capped exponential backoff. Published rows are deleted
    after `retention`. Delivery is at-least-once: a crash between Kafka's acknowledgement and
    the commit publishes the batch again.
    """

    def __init__(self, config: RelayConfig, publisher: EventPublisher) -> None:
        self._config = config
        self._publisher = publisher
        self._store = PostgresOutboxStore(respect_xid_horizon=config.respect_xid_horizon)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._finished = asyncio.Event()
        self._listener = NotifyListener(
            config.database_url,
            config.application_name,
            self._wake.set,
            self._stopping,
            config.backoff_max,
        )
        self._started = False
        self._task: asyncio.Task[None] | None = None
        self._stats: OutboxStats | None = None
        self._published = 0
        self._last_held_back_warning = -math.inf

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
        return self._listener.listening

    @property
    def stats(self) -> OutboxStats | None:
        """The outbox as of this relay's last poll (None before the first)."""
        return self._stats

    @property
    def published(self) -> int:
        """Rows this relay has published and marked."""
        return self._published

    async def start(self) -> None:
        """Starts `run()` in a task; returns once connected, or raises why it could not start."""
        self._task = asyncio.create_task(self.run(), name="outbox-relay")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(ready)
        if self._task.done():
            task, self._task = self._task, None
            task.result()  # raises the start error
            raise RuntimeError("the outbox relay stopped while starting")

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
                config = self._config
                pool = await postgres_pool(
                    config.database_url,
                    min_size=1,
                    max_size=2,
                    server_settings={"application_name": config.application_name},
                )
                stack.push_async_callback(pool.close)
                await stack.enter_async_context(self._publisher)
                tasks = await stack.enter_async_context(BackgroundTasks())
                if config.listen:
                    tasks.spawn(self._listener.run(), "outbox-listen")
                tasks.spawn(
                    purge_published(pool, self._store, config, self._stopping), "outbox-purge"
                )
                self._ready.set()
                _log.info(
                    "outbox relay started (batch %d, poll %.3gs, listen %s, xid horizon %s)",
                    config.batch_size,
                    config.poll_interval,
                    config.listen,
                    config.respect_xid_horizon,
                )
                await self._publish_loop(pool)
        finally:
            self._finished.set()
            _log.info("outbox relay stopped after publishing %d rows", self._published)

    # --- publishing ------------------------------------------------------------------------

    async def _publish_loop(self, pool: asyncpg.Pool) -> None:
        config = self._config
        failures = Backoff(config.backoff_initial, config.backoff_max)
        recheck = Backoff(
            min(_HELD_BACK_RECHECK_SECONDS, config.poll_interval),
            min(_HELD_BACK_RECHECK_MAX_SECONDS, config.poll_interval),
        )
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
                    failures.failures,
                    delay,
                    error,
                    # Kafka's failures and PostgreSQL's outages are expected and say enough;
                    # anything else gets a trace.
                    exc_info=not isinstance(error, _EXPECTED_FAILURES),
                )
                # A NOTIFY does not cut a backoff short; only stop() does.
                await self._sleep(delay)
                continue
            if failures.failures:
                _log.info(
                    "outbox relay: publishing again after %d failed attempts", failures.failures
                )
                failures.reset()
            if not active:
                # Standby: another relay holds the publisher lock. Try again at the next poll,
                # not at every NOTIFY, so a standby costs the database almost nothing.
                await self._sleep(self._config.poll_interval)
            elif stats.pending:
                # Rows still pending after a drain are held back by an older open transaction,
                # or were freed since the drain's claim (that transaction ended meanwhile, and
                # a rollback sends no NOTIFY). Either way, look again soon rather than at the
                # next poll (seen: a freed row left waiting for the whole 30 s poll of a test).
                await self._wait_for_wake(recheck.next_delay())
            else:
                recheck.reset()
                await self._wait_for_wake(self._config.poll_interval)

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
            async with self._store.claim(conn, self._config.batch_size) as batch:
                if batch is None:
                    return False
                if batch.records:
                    await self._publisher.publish_batch(batch.records)
                acknowledged = time.time()
                await batch.mark_published()
            count = len(batch.records)
            if count:
                OUTBOX_PUBLISHED.inc(count)
                # Counted once the batch is marked: a batch published again is not counted twice.
                observe_since_committed(
                    OUTBOX_PUBLISH_LAG, (r.created_at for r in batch.records), acknowledged
                )
                self._published += count
                _log.debug(
                    "outbox relay: published %d rows up to id %d", count, batch.records[-1].id
                )
            # Stopping ends the drain after the batch in flight.
            if count < self._config.batch_size or self._stopping.is_set():
                return True

    async def _refresh_stats(self, conn: asyncpg.Connection) -> OutboxStats:
        stats = await self._store.stats(conn)
        self._stats = stats
        OUTBOX_PENDING.set(stats.pending)
        OUTBOX_OLDEST_AGE.set(stats.oldest_age_seconds)
        if stats.held_back and stats.oldest_age_seconds >= self._config.held_back_warning_after:
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

    async def _wait_for_wake(self, seconds: float) -> None:
        """Waits for a NOTIFY (or stop()) at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, cut short only by stop()."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
