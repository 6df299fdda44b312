"""The relay's SQL over the outbox table: claim, mark published, measure, purge."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from uoom_orders.relay.records import OutboxRecord

# Advisory lock keys, constants shared by every relay process on the database. Distinct from
# the migration lock (0x756F6F6D).
PUBLISHER_LOCK_KEY = 0x756F6F6D_0001
"""Held for one claim transaction: one relay publishes at a time (see OutboxRelay)."""
PURGE_LOCK_KEY = 0x756F6F6D_0002
"""Held for one purge chunk: relays do not delete the same rows twice over."""

# Counting stops here, so a large backlog cannot make the metrics query slow.
STATS_ROW_CAP = 100_000

FULL_CLAIM_EVERY_SECONDS = 60.0
"""How often a claim looks at every unpublished row rather than from its ClaimPosition: what
the position's reasoning did not foresee (a database restored to an earlier point, whose ids and
xids went back) would delay a row this long at most, never lose it. Such a claim that finds
nothing leaves no position, so the next one walks too: two walks a minute cost nothing."""


@dataclass(frozen=True, slots=True)
class ClaimPosition:
    """What a committed claim proved about the outbox: every row with an id up to `last_id`
    that is still unpublished has an xid of at least `horizon`.

    Why that holds, with the xid horizon on: a claim at snapshot S takes the lowest ids among
    the committed unpublished rows whose xid is below S's xmin. A row below the highest id it
    took that it did not take was not visible to S or had an xid at or above that xmin; a row
    not visible to S belongs to a transaction running at S, whose xid is at or above S's xmin,
    or to one that had no xid yet and gets a later one. `horizon` is the xmin of a snapshot
    taken earlier in the same transaction, so never above S's. Publishing rows and deleting
    published ones keep it true; nothing else writes the outbox.

    So the next claim needs only the rows above `last_id` (a range of `outbox_unpublished`,
    starting past every row already published) and the rows with an xid from `horizon` on (a
    range of `outbox_unpublished_xid`): neither crosses the dead entries that marking rows
    published leaves in the partial indexes until VACUUM, which a walk from the oldest entry
    crosses every time (`python -m uoom_orders_bench.outbox_claims`: the relay's cycle took
    0.5 ms either way with none, 2.0 ms against 0.5 ms with 500,000).
    """

    last_id: int
    horizon: int


def position_after_claim(
    start: ClaimPosition | None, claimed_ids: Sequence[int], limit: int, horizon: int
) -> ClaimPosition | None:
    """The position after a committed claim of `claimed_ids` (in id order, at most `limit`)
    made from `start` (None: from every unpublished row), `horizon` being the xmin read before
    the claim in its transaction."""
    if not claimed_ids:
        return None if start is None else ClaimPosition(start.last_id, horizon)
    highest = claimed_ids[-1]
    if start is None:
        # The lowest eligible ids were taken: those left below `highest` are not eligible.
        return ClaimPosition(highest, horizon)
    if len(claimed_ids) < limit or highest >= start.last_id:
        # Every eligible row below max(last_id, highest) was taken.
        return ClaimPosition(max(start.last_id, highest), horizon)
    # A full batch that ended below `last_id`: eligible rows may remain between the two, of
    # which only the old horizon is known.
    return start


_CLAIMED_COLUMNS = "id, event_id, order_id, event_type, version, payload, trace_context, created_at"


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What is waiting in the outbox, as of one query."""

    pending: int
    """Committed rows not yet published (capped at STATS_ROW_CAP)."""
    held_back: int
    """Of those, rows not publishable yet: an older transaction is still open."""
    oldest_age_seconds: float
    """Age of the oldest unpublished row; 0 when there is none."""


@dataclass(frozen=True, slots=True)
class OldestWriter:
    """The open transaction that holds the xid horizon back, from pg_stat_activity."""

    pid: int
    application_name: str
    state: str
    open_seconds: float


class OutboxBatch:
    """Rows claimed in an open transaction; `mark_published()` commits, leaving rolls back."""

    def __init__(self, conn: asyncpg.Connection, records: list[OutboxRecord], mark_sql: str):
        self._conn = conn
        self.records = records
        self._mark_sql = mark_sql
        self.marked = False

    async def mark_published(self) -> None:
        """Marks the claimed rows published (committed when the claim's block ends)."""
        if self.records:
            await self._conn.execute(self._mark_sql, [r.id for r in self.records])
        self.marked = True


class PostgresOutboxStore:
    """Reads and retires outbox rows for the relay; the SQL is built once, here.

    With `respect_xid_horizon`, a row is claimed only once every transaction that started
    before it has ended (its xid is below the snapshot's xmin), so rows leave in id order
    even when a transaction holding a lower id commits late. Rows are found by
    `published_at IS NULL`; the highest id published is only a starting point beside the xid
    horizon (ClaimPosition), never a reason to pass a row over, so nothing is skipped either
    way.
    """

    def __init__(
        self,
        *,
        respect_xid_horizon: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.respect_xid_horizon = respect_xid_horizon
        # Where the next claim may start (ClaimPosition); None: from every unpublished row.
        # Kept only with the xid horizon, which is what makes it true.
        self.position: ClaimPosition | None = None
        self._clock = clock
        self._next_full_claim = clock() + FULL_CLAIM_EVERY_SECONDS
        self._lock = (
            "SELECT pg_try_advisory_xact_lock($1) AS held, "
            "pg_snapshot_xmin(pg_current_snapshot()) AS horizon"
        )
        horizon = "AND xid < pg_snapshot_xmin(pg_current_snapshot())" if respect_xid_horizon else ""
        # Plain FOR UPDATE, not SKIP LOCKED: SKIP LOCKED would pass over an order's version N
        # that another claimer holds and take its version N+1. The advisory lock means there
        # is no other claimer, so this never waits; if one ever ran without the lock, it would
        # wait for the holder rather than publish out of order.
        self._claim = f"""
            SELECT {_CLAIMED_COLUMNS}
            FROM outbox
            WHERE published_at IS NULL {horizon}
            ORDER BY id
            LIMIT $1
            FOR UPDATE
        """
        # From a ClaimPosition ($2 its last_id, $3 its horizon): the rows above last_id (a
        # range of outbox_unpublished) and those from the horizon on (a range of
        # outbox_unpublished_xid), the lowest $1 ids of both, then locked through the primary
        # key. The planner sees both partial indexes as nearly empty (their dead entries are not
        # in its statistics) and would happily read one from its start, which is what this
        # query exists to avoid; so each part can use one index only: the xid index's predicate
        # also says `xid IS NOT NULL`, which `xid >= $3` implies and the first part's xid
        # condition, wrapped in `IS TRUE`, does not; and the outer query's `IS TRUE` keeps both
        # partial indexes from it.
        self._claim_from_position = f"""
            SELECT {_CLAIMED_COLUMNS}
            FROM outbox
            WHERE id = ANY(ARRAY(
                SELECT id FROM (
                    (SELECT id FROM outbox
                     WHERE published_at IS NULL AND id > $2
                         AND (xid < pg_snapshot_xmin(pg_current_snapshot())) IS TRUE
                     ORDER BY id
                     LIMIT $1)
                    UNION
                    (SELECT id FROM outbox
                     WHERE published_at IS NULL AND xid >= $3
                         AND (xid < pg_snapshot_xmin(pg_current_snapshot())) IS TRUE)
                ) AS eligible
                ORDER BY id
                LIMIT $1
            ))
            AND (published_at IS NULL) IS TRUE
            ORDER BY id
            FOR UPDATE
        """
        self._mark = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"
        held_back = (
            "count(*) FILTER (WHERE xid >= pg_snapshot_xmin(pg_current_snapshot()))"
            if respect_xid_horizon
            else "0"
        )
        measures = f"""
            count(*) AS pending,
            {held_back} AS held_back,
            coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
                AS oldest_age
        """
        self._stats = f"""
            SELECT {measures}
            FROM (
                SELECT xid, created_at FROM outbox
                WHERE published_at IS NULL
                ORDER BY id
                LIMIT {STATS_ROW_CAP}
            ) AS unpublished
        """
        # The same rows from a ClaimPosition ($1 its last_id, $2 its horizon), as the claim
        # finds them; held-back rows have an xid at or above the horizon.
        self._stats_from_position = f"""
            SELECT {measures}
            FROM (
                SELECT xid, created_at FROM (
                    (SELECT id, xid, created_at FROM outbox
                     WHERE published_at IS NULL AND id > $1
                     ORDER BY id
                     LIMIT {STATS_ROW_CAP})
                    UNION
                    (SELECT id, xid, created_at FROM outbox
                     WHERE published_at IS NULL AND xid >= $2
                     LIMIT {STATS_ROW_CAP})
                ) AS found
                LIMIT {STATS_ROW_CAP}
            ) AS unpublished
        """
        # The index on published_at (published rows only) finds the oldest chunk.
        self._purge = """
            DELETE FROM outbox
            WHERE id IN (
                SELECT id FROM outbox
                WHERE published_at < now() - $1::interval
                ORDER BY published_at
                LIMIT $2
            )
        """
        self._oldest_writer = """
            SELECT pid, coalesce(application_name, '') AS application_name,
                   coalesce(state, '') AS state,
                   extract(epoch FROM clock_timestamp() - xact_start)::float8 AS open_seconds
            FROM pg_stat_activity
            WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
            ORDER BY age(backend_xid) DESC
            LIMIT 1
        """

    @asynccontextmanager
    async def claim(
        self, conn: asyncpg.Connection, limit: int
    ) -> AsyncIterator[OutboxBatch | None]:
        """Opens a transaction and claims up to `limit` rows in id order.

        Yields None when another relay holds the publisher lock. Commits on leaving the block
        if `mark_published()` was called, else rolls back, so the rows stay unpublished.
        """
        transaction = conn.transaction()
        await transaction.start()
        start = None
        try:
            # A transaction-level lock: released by commit or rollback, and by PostgreSQL when
            # the connection dies, so a crashed relay never blocks the others.
            lock = await conn.fetchrow(self._lock, PUBLISHER_LOCK_KEY)
            assert lock is not None
            if lock["held"]:
                # A separate statement on purpose: in READ COMMITTED it takes a new snapshot
                # after the lock is held, so it sees what the previous holder marked published.
                start = self._claim_start()
                if start is None:
                    rows = await conn.fetch(self._claim, limit)
                else:
                    rows = await conn.fetch(
                        self._claim_from_position, limit, start.last_id, start.horizon
                    )
                batch: OutboxBatch | None = OutboxBatch(
                    conn, [_record(row) for row in rows], self._mark
                )
            else:
                batch = None
            yield batch
        except BaseException:
            # What failed may have been the database itself: start the next claim afresh.
            self.position = None
            await _rollback_quietly(transaction)
            raise
        if batch is not None and batch.marked:
            await transaction.commit()
            if self.respect_xid_horizon:
                self.position = position_after_claim(
                    start, [r.id for r in batch.records], limit, lock["horizon"]
                )
        else:
            await transaction.rollback()

    def _claim_start(self) -> ClaimPosition | None:
        """The position this claim starts from; None (every unpublished row) when there is
        none or a full claim is due."""
        if self.position is None:
            return None
        now = self._clock()
        if now >= self._next_full_claim:
            self._next_full_claim = now + FULL_CLAIM_EVERY_SECONDS
            return None
        return self.position

    async def stats(self, conn: asyncpg.Connection) -> OutboxStats:
        """Counts unpublished rows and measures the oldest one's age."""
        position = self.position
        if position is None:
            row = await conn.fetchrow(self._stats)
        else:
            row = await conn.fetchrow(self._stats_from_position, position.last_id, position.horizon)
        assert row is not None
        return OutboxStats(
            pending=int(row["pending"]),
            held_back=int(row["held_back"]),
            oldest_age_seconds=max(0.0, float(row["oldest_age"])),
        )

    async def oldest_writer(self, conn: asyncpg.Connection) -> OldestWriter | None:
        """The longest-running transaction that has an xid, if any (for a diagnostic log)."""
        row = await conn.fetchrow(self._oldest_writer)
        if row is None:
            return None
        return OldestWriter(
            pid=int(row["pid"]),
            application_name=str(row["application_name"]),
            state=str(row["state"]),
            open_seconds=float(row["open_seconds"] or 0.0),
        )

    async def purge_chunk(
        self, conn: asyncpg.Connection, retention: timedelta, limit: int
    ) -> int | None:
        """Deletes up to `limit` rows published more than `retention` ago, in one transaction.

        Returns how many, or None when another relay is purging right now.
        """
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK_KEY):
                return None
            status: str = await conn.execute(self._purge, retention, limit)
        # "DELETE <count>"
        return int(status.rsplit(" ", 1)[-1])


async def _rollback_quietly(transaction: asyncpg.transaction.Transaction) -> None:
    # Already failing: a broken connection must not replace the original error.
    with contextlib.suppress(Exception):
        await transaction.rollback()


def _record(row: asyncpg.Record) -> OutboxRecord:
    trace = row["trace_context"]
    # asyncpg returns jsonb as text unless a codec is set; accept both.
    context = json.loads(trace) if isinstance(trace, str) else dict(trace or {})
    return OutboxRecord(
        id=row["id"],
        event_id=row["event_id"],
        order_id=row["order_id"],
        event_type=row["event_type"],
        version=row["version"],
        payload=bytes(row["payload"]),
        created_at=row["created_at"],
        trace_context={
            k: v for k, v in context.items() if isinstance(k, str) and isinstance(v, str)
        },
    )
