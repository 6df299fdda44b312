"""Reconciliation on a schedule: a full pass every so often, in one process at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import asyncpg

from uoom_orders.projector.reconcile.differences import ReconcileReport
from uoom_orders.projector.reconcile.reconciler import Reconciler
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.retry import Backoff
from uoom_orders.runtime.tasks import BackgroundTasks

_log = logging.getLogger(__name__)

RECONCILE_LOCK_KEY = 0x756F6F6D_0003
"""Session advisory lock: one background reconciliation at a time across projectors."""
IN_FLIGHT_SECONDS = 2.0
"""How long before a projector first saw an outage an order's event may still have been on its
way to the projectors: such orders are walked last with those changed during the outage."""


class ReconcileSchedule(LongRunning):
    """A pass every `interval` seconds, in one process at a time: each pass holds a session
    advisory lock, and a process that cannot take it skips its turn. A scheduled pass that
    fails (the read model or PostgreSQL is down) is logged and retried at the next turn; a
    walk brought forward is tried again within seconds (backing off to 30 s). Every
    `scan_every`-th scheduled pass also scans the tables for orphans (it reads every item, as
    the walk does, and orphans only come from commits PostgreSQL lost: rare). `trigger()`
    brings a walk forward (the projector calls it when the read model answers again after an
    outage: it may have come back empty, and what heals it is the walk, soon); that walk takes
    the orders changed since the outage began last (see `Reconciler.run`'s `recent_from`).

    An async context manager: entering starts the schedule in a background task; leaving
    cancels it and waits until it has ended, a pass in progress included (every repair is
    conditioned on what it read, so a pass cut short leaves nothing half done). Safe twice.
    """

    def __init__(
        self,
        reconciler: Reconciler,
        pool: asyncpg.Pool,
        interval: float,
        scan_every: int = 1,
        *,
        retry_seconds: float = 1.0,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if scan_every < 1:
            raise ValueError("scan_every must be at least 1")
        self._scan_every = scan_every
        self._scheduled = 0
        self._retry = Backoff(retry_seconds, 30.0)
        self._reconciler = reconciler
        self._pool = pool
        self._interval = interval
        self._tasks = BackgroundTasks()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.passes = 0
        # Wall-clock starts of this process's pass in progress and of its last one that ended
        # well: what a trigger `since` an earlier moment needs no second pass for.
        self._running_since: float | None = None
        self._succeeded_since: float | None = None
        self._wake_if_it_fails = False
        # The earliest `changed_since` of the triggers the next walk answers.
        self._recent_from: float | None = None

    def trigger(self, since: float | None = None, changed_since: float | None = None) -> None:
        """Runs a walk now rather than at the end of the interval.

        `since` (epoch seconds) is when what calls for it had happened by (a table created
        again; the projector's writes first failing in an outage they have come through): a
        pass of this process that began at or after it covers it. One that ended well absorbs
        the trigger; one in progress holds it, and it fires if that pass fails. Without
        `since`, a walk always follows.

        `changed_since` (default: `since`) is when the read model was last known to take the
        projectors' writes: orders changed after it are walked last."""
        if since is not None:
            if self._succeeded_since is not None and self._succeeded_since >= since:
                return
            if self._running_since is not None and self._running_since >= since:
                self._wake_if_it_fails = True
                return
        self._remember_recent(since if changed_since is None else changed_since)
        self._wake.set()

    def _remember_recent(self, since: float | None) -> None:
        if since is not None and (self._recent_from is None or since < self._recent_from):
            self._recent_from = since

    async def start(self) -> None:
        if self._task is None:
            self._task = self._tasks.spawn(self._run(), name="reconcile")

    async def stop(self) -> None:
        self._task = None
        await self._tasks.aclose()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            await self._turn()

    async def _turn(self) -> None:
        """The pass due now: a walk when triggered, else a scheduled pass (scanning or not)."""
        triggered = self._wake.is_set()
        recent: float | None = None
        if triggered:
            self._wake.clear()
            scan = False
            recent, self._recent_from = self._recent_from, None
        else:
            scan = self._scheduled % self._scan_every == 0
            self._scheduled += 1
        try:
            await self.run_once(scan=scan, recent_from=recent)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not triggered:
                _log.warning("reconciliation pass failed: %r; next in %.0fs", error, self._interval)
                return
            self._remember_recent(recent)
            # A read model that just came back may still stumble: the walk it needs is
            # tried again soon, not at the next turn.
            delay = min(self._interval, self._retry.next_delay())
            _log.warning("reconciliation walk failed: %r; again in %.1fs", error, delay)
            asyncio.get_running_loop().call_later(delay, self._wake.set)
        else:
            if triggered:
                self._retry.reset()

    async def run_once(
        self, *, scan: bool = True, recent_from: float | None = None
    ) -> ReconcileReport | None:
        """One pass if no other process runs one now; None when it skipped its turn.
        `recent_from` (epoch seconds): a projector first saw the read model out of reach then;
        orders changed since (and `IN_FLIGHT_SECONDS` before) are walked last."""
        last = (
            None
            if recent_from is None
            else datetime.fromtimestamp(recent_from - IN_FLIGHT_SECONDS, UTC)
        )
        async with self._pool.acquire() as conn:
            if not await _on_the_lock(conn, "SELECT pg_try_advisory_lock($1)"):
                return None
            started = time.time()
            self._running_since = started
            try:
                report = await self._reconciler.run(scan=scan, recent_from=last)
            except BaseException:
                if self._wake_if_it_fails:
                    self._wake.set()
                raise
            finally:
                self._running_since = None
                self._wake_if_it_fails = False
                await _on_the_lock(conn, "SELECT pg_advisory_unlock($1)")
            self._succeeded_since = started
        self.passes += 1
        level = logging.WARNING if report.differences else logging.INFO
        _log.log(
            level,
            "reconciliation: %d orders, %d items scanned in %.1fs; %d differences %s, "
            "%d repaired, %d raced, %d corrections",
            report.checked,
            report.scanned,
            report.seconds,
            len(report.differences),
            dict(report.counts()),
            report.repaired,
            report.raced,
            report.corrections,
        )
        return report


async def _on_the_lock(conn: asyncpg.Connection, query: str) -> bool:
    """Takes or releases reconciliation's session lock. One that fails or is cut off (a stop)
    may have left the lock held, and the pool does not release session locks
    (postgres_pools): the session is closed then, and the lock ends with it."""
    try:
        return bool(await conn.fetchval(query, RECONCILE_LOCK_KEY))
    except BaseException:
        conn.terminate()
        raise
