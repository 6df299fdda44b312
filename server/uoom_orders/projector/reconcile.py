"""Reconciliation (anti-entropy): the read model converges to PostgreSQL, whatever happened.

The projector keeps the read model current on the normal path. Everything else — an event the
projector never saw, a lost or emptied table, expired items, and above all a read model *ahead*
of PostgreSQL (a commit lost by a failover to an asynchronous replica or by a restore: its event
was published, the next commit reuses its version number, and "newest version wins" would keep
the lost one forever) — is found here, by comparing, and repaired from PostgreSQL.

One pass:
1. walks PostgreSQL's orders in pages (keyset on order_id), reads both tables' items for the
   page (strongly consistent BatchGetItem) and only then the orders themselves, so an item
   newer than PostgreSQL is never a commit that simply landed between the two reads;
2. classifies each table's item: missing (or expired), older, newer, same version with other
   content, or equal;
3. repairs each difference by writing PostgreSQL's order over *exactly the item it read*
   (condition on its version and update time, or on its absence): a projection racing the
   repair wins, and the next pass looks again;
4. scans both tables (parallel segments) for items of orders PostgreSQL does not have at all,
   and deletes each, again only if it is still the item it read;
5. for every order whose read model held something PostgreSQL never had (newer, other content,
   orphan), appends a correction event to the outbox, in a transaction that holds the order's
   row: in the stream it follows every change committed before it and precedes every later one,
   so every near cache can replace (or drop) what it holds whatever the version.

`dry_run` classifies and reports without writing anything. The `rebuild` command is a pass with
optional filters (it then skips the orphan scan).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.observability import metrics
from uoom_orders.read.postgres_store import order_from_rows
from uoom_orders.readmodel import items
from uoom_orders.readmodel.ports import ReadModelWriteRejected
from uoom_orders.readmodel.tables import DETAILS_TABLE, STATUS_TABLE, TableNames
from uoom_orders.readmodel.writer import ReadModelWriter
from uoom_orders.write.outbox import PostgresOutbox

_log = logging.getLogger(__name__)

BATCH_GET_LIMIT = 100  # DynamoDB's maximum keys per BatchGetItem
RECONCILE_LOCK_KEY = 0x756F6F6D_0003
"""Session advisory lock: one background reconciliation at a time across projectors."""

Progress = Callable[[int, int], None]
"""Called after each page with (orders checked, orders in total)."""

_FILTER = """
    ($1::uuid IS NULL OR o.customer_id = $1)
    AND ($2::timestamptz IS NULL OR o.updated_at >= $2)
"""
_COUNT = f"SELECT count(*) FROM orders o WHERE {_FILTER}"
_PAGE = f"""
    SELECT o.order_id FROM orders o
    WHERE {_FILTER} AND ($3::uuid IS NULL OR o.order_id > $3)
    ORDER BY o.order_id
    LIMIT $4
"""
_ORDER_COLUMNS = """
    o.order_id, o.status, o.customer_id, o.restaurant_id, o.channel_id, o.currency_code,
    o.total_minor, o.estimated_delivery_time, o.tracking_code, o.created_at, o.updated_at,
    o.version, o.delivery_latitude, o.delivery_longitude, o.delivery_address,
    o.delivery_city, o.delivery_postal_code
"""
_ORDERS = f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE o.order_id = ANY($1::uuid[])"
# FOR SHARE: no change to the order commits until the correction's outbox row has, so the
# correction sits between the changes before it and after it in the stream.
_ORDER_HELD = f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE o.order_id = $1 FOR SHARE"
# Items never change after an order is placed.
_ITEMS = """
    SELECT order_id, item_id, name, quantity, unit_price_minor, total_minor AS item_total
    FROM order_items WHERE order_id = ANY($1::uuid[])
    ORDER BY order_id, line_no
"""
_EXISTING = "SELECT order_id FROM orders WHERE order_id = ANY($1::uuid[])"


class DifferenceKind(StrEnum):
    MISSING = "missing"
    """No item, or an expired one, for an order PostgreSQL has."""
    OLDER = "older"
    """The item holds an older version (the projector is behind or missed an event)."""
    NEWER = "newer"
    """The item holds a version PostgreSQL never kept (a lost commit)."""
    CONTENT = "content"
    """Same version, other content (a lost commit whose version number was reused)."""
    ORPHAN = "orphan"
    """An item of an order PostgreSQL does not have at all (a lost create)."""


# Kinds after which a near cache may hold what PostgreSQL never had: they get a correction.
_CORRECTED_KINDS = frozenset({DifferenceKind.NEWER, DifferenceKind.CONTENT})


@dataclass(frozen=True, slots=True)
class Difference:
    """One table's item of one order, as found."""

    order_id: str
    table: str
    kind: DifferenceKind
    item_version: int | None
    source_version: int | None


@dataclass
class ReconcileReport:
    """What one pass found and did."""

    checked: int = 0
    scanned: int = 0
    differences: list[Difference] = field(default_factory=list)
    repaired: int = 0
    raced: int = 0
    corrections: int = 0
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter[tuple[str, str]]:
        """Differences by (table, kind)."""
        return Counter((d.table, d.kind.value) for d in self.differences)

    @property
    def orders_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else 0.0


class Reconciler:
    """Compares the read model with PostgreSQL and repairs it; see the module's doc.

    `client` is the aioboto3 DynamoDB client the read model is written with.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: Any,
        table_prefix: str,
        *,
        ttl_hours: int = 72,
        page_size: int = BATCH_GET_LIMIT,
        pages_in_flight: int = 4,
        writes_in_flight: int = 16,
        scan_segments: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= page_size <= BATCH_GET_LIMIT:
            raise ValueError(f"page_size must be 1..{BATCH_GET_LIMIT}")
        self._pool = pool
        self._client = client
        self._tables = TableNames.for_prefix(table_prefix)
        self._writer = ReadModelWriter(client, table_prefix, clock=clock)
        self._ttl_hours = ttl_hours
        self._page_size = page_size
        self._pages_in_flight = pages_in_flight
        self._writes = asyncio.Semaphore(writes_in_flight)
        self._segments = scan_segments
        self._clock = clock

    async def run(
        self,
        *,
        dry_run: bool = False,
        customer_id: UUID | None = None,
        since: datetime | None = None,
        progress: Progress | None = None,
    ) -> ReconcileReport:
        """One pass. With a filter, only the orders it selects (no orphan scan)."""
        started = time.monotonic()
        total = int(await self._pool.fetchval(_COUNT, customer_id, since))
        report = _Pass(self, dry_run, progress, total)
        pages: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self._pages_in_flight)

        def finished(task: asyncio.Task[None]) -> None:
            pages.discard(task)
            slots.release()

        try:
            async for page in self._pages(customer_id, since):
                await slots.acquire()
                # A page that failed (e.g. the read model is down) ends the pass.
                for failed in [t for t in pages if t.done()]:
                    failed.result()
                task = asyncio.create_task(report.check_page(page))
                pages.add(task)
                task.add_done_callback(finished)
            if pages:
                await asyncio.gather(*pages)
            if customer_id is None and since is None:
                await asyncio.gather(
                    *(
                        report.scan_segment(table, segment)
                        for table in (STATUS_TABLE, DETAILS_TABLE)
                        for segment in range(self._segments)
                    )
                )
        except BaseException:
            for task in list(pages):
                task.cancel()
            await asyncio.gather(*pages, return_exceptions=True)
            raise
        report.report.seconds = time.monotonic() - started
        if customer_id is None and since is None and not dry_run:
            metrics.RECONCILE_LAST_PASS.set(time.time())
        return report.report

    async def _pages(
        self, customer_id: UUID | None, since: datetime | None
    ) -> AsyncIterator[list[UUID]]:
        after: UUID | None = None
        while True:
            rows = await self._pool.fetch(_PAGE, customer_id, since, after, self._page_size)
            if not rows:
                return
            page = [row["order_id"] for row in rows]
            yield page
            if len(rows) < self._page_size:
                return
            after = page[-1]

    # --- the stores, as one pass uses them --------------------------------------------------
    def table_name(self, table: str) -> str:
        return self._tables.status if table == STATUS_TABLE else self._tables.details

    async def read_items(self, table: str, order_ids: Sequence[str]) -> dict[str, items.Item]:
        """Strongly consistent BatchGetItem; retries UnprocessedKeys until none are left."""
        name = self.table_name(table)
        request: dict[str, Any] = {
            name: {"Keys": [items.item_key(i) for i in order_ids], "ConsistentRead": True}
        }
        found: dict[str, items.Item] = {}
        attempt = 0
        while request:
            reply = await self._client.batch_get_item(RequestItems=request)
            for item in reply.get("Responses", {}).get(name, []):
                found[item[items.ORDER_ID]["S"]] = item
            request = reply.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                await asyncio.sleep(min(1.0, 0.02 * 2**attempt))
        return found

    async def read_orders(self, order_ids: Sequence[UUID]) -> dict[str, order_pb2.Order]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_ORDERS, list(order_ids))
            lines: dict[UUID, list[asyncpg.Record]] = {row["order_id"]: [] for row in rows}
            for line in await conn.fetch(_ITEMS, list(lines)):
                lines[line["order_id"]].append(line)
        return {str(row["order_id"]): order_from_rows(row, lines[row["order_id"]]) for row in rows}

    async def existing(self, order_ids: Sequence[UUID]) -> set[str]:
        return {str(row["order_id"]) for row in await self._pool.fetch(_EXISTING, order_ids)}

    async def scan(self, table: str, segment: int) -> AsyncIterator[list[items.Item]]:
        request: dict[str, Any] = {
            "TableName": self.table_name(table),
            "Segment": segment,
            "TotalSegments": self._segments,
            "ProjectionExpression": "#id, #v, #u, #ttl",
            "ExpressionAttributeNames": {
                "#id": items.ORDER_ID,
                "#v": items.VERSION,
                "#u": items.UPDATED_AT,
                "#ttl": items.TTL,
            },
            "ConsistentRead": True,
        }
        while True:
            reply = await self._client.scan(**request)
            yield reply.get("Items", [])
            last = reply.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    async def write(
        self, table: str, order: order_pb2.Order, expected: items.ItemIdentity | None
    ) -> bool:
        ttl = items.ttl_after(self._ttl_hours, self._clock())
        encode = items.status_item if table == STATUS_TABLE else items.details_item
        async with self._writes:
            return await self._writer.replace_item(
                self.table_name(table), encode(order, ttl), expected
            )

    async def delete(self, table: str, order_id: str, expected: items.ItemIdentity) -> bool:
        async with self._writes:
            return await self._writer.delete_item(self.table_name(table), order_id, expected)

    async def append_correction(self, order_id: str) -> None:
        """Appends CORRECTED (the order as PostgreSQL has it now) or REMOVED to the outbox."""
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_ORDER_HELD, UUID(order_id))
            outbox = PostgresOutbox(conn)
            if not rows:
                await outbox.append_message(
                    wire.removal_event(order_id, now), wire.REMOVED_EVENT_TYPE
                )
                return
            lines = await conn.fetch(_ITEMS, [UUID(order_id)])
            order = order_from_rows(rows[0], lines)
            await outbox.append_message(
                wire.correction_event(order, now), wire.CORRECTED_EVENT_TYPE
            )

    def now(self) -> float:
        return self._clock()


class _Pass:
    """The state of one pass (so that a Reconciler can run several, one after another)."""

    def __init__(
        self, reconciler: Reconciler, dry_run: bool, progress: Progress | None, total: int
    ) -> None:
        self._r = reconciler
        self._dry_run = dry_run
        self._progress = progress
        self._total = total
        self.report = ReconcileReport()
        self._corrected: set[str] = set()

    async def check_page(self, order_ids: Sequence[UUID]) -> None:
        ids = [str(i) for i in order_ids]
        # The items first, then the orders: an item newer than the order read after it is
        # a version PostgreSQL does not have, not a commit that landed in between.
        status_items, details_items = await asyncio.gather(
            self._r.read_items(STATUS_TABLE, ids), self._r.read_items(DETAILS_TABLE, ids)
        )
        orders = await self._r.read_orders(order_ids)
        now = self._r.now()
        work = []
        for order_id in ids:
            order = orders.get(order_id)
            if order is None:
                continue  # not in PostgreSQL any more: the orphan scan deals with its items
            for table, found in ((STATUS_TABLE, status_items), (DETAILS_TABLE, details_items)):
                item = found.get(order_id)
                kind = _classify(table, item, order, now)
                if kind is not None:
                    work.append(self._repair(table, kind, order, item))
        await _all(work)
        self.report.checked += len(ids)
        metrics.RECONCILE_CHECKED.inc(len(ids))
        if self._progress is not None:
            # Orders created during the pass can push the count past the first total.
            self._progress(self.report.checked, max(self._total, self.report.checked))

    async def scan_segment(self, table: str, segment: int) -> None:
        async for page in self._r.scan(table, segment):
            self.report.scanned += len(page)
            by_id: dict[str, items.Item] = {}
            malformed: list[items.Item] = []
            for item in page:
                try:
                    UUID(item[items.ORDER_ID]["S"])
                except (KeyError, TypeError, ValueError):
                    malformed.append(item)
                    continue
                by_id[item[items.ORDER_ID]["S"]] = item
            existing = await self._r.existing([UUID(i) for i in by_id]) if by_id else set()
            orphans = [item for i, item in by_id.items() if i not in existing] + malformed
            await _all([self._remove(table, item) for item in orphans])

    async def _repair(
        self,
        table: str,
        kind: DifferenceKind,
        order: order_pb2.Order,
        item: items.Item | None,
    ) -> None:
        item_version = None if item is None else _version_or_none(item)
        self._found(Difference(order.order_id, table, kind, item_version, order.version))
        if self._dry_run:
            return
        try:
            expected = None if item is None else items.ItemIdentity.of(item)
        except ValueError:
            # No version or update time to match: not written by this service; left to a human.
            _log.error("reconcile: malformed item of order %s in %s", order.order_id, table)
            self.report.rejected.append(order.order_id)
            return
        try:
            written = await self._r.write(table, order, expected)
        except (ReadModelWriteRejected, ValueError) as error:
            _log.error("reconcile: order %s refused by %s: %s", order.order_id, table, error)
            self.report.rejected.append(order.order_id)
            return
        if written:
            self.report.repaired += 1
            metrics.RECONCILE_REPAIRS.labels(table=table, kind=kind.value).inc()
        else:
            self.report.raced += 1
        if kind in _CORRECTED_KINDS:
            await self._correct(order.order_id)

    async def _remove(self, table: str, item: items.Item) -> None:
        order_id = str(item.get(items.ORDER_ID, {}).get("S", ""))
        self._found(
            Difference(order_id, table, DifferenceKind.ORPHAN, _version_or_none(item), None)
        )
        if self._dry_run:
            return
        try:
            expected = items.ItemIdentity.of(item)
        except ValueError:
            _log.error("reconcile: malformed orphan item in %s: %r", table, item)
            self.report.rejected.append(order_id)
            return
        if await self._r.delete(table, order_id, expected):
            self.report.repaired += 1
            metrics.RECONCILE_REPAIRS.labels(table=table, kind="orphan").inc()
        else:
            self.report.raced += 1
        with contextlib.suppress(ValueError):
            UUID(order_id)
            await self._correct(order_id)

    async def _correct(self, order_id: str) -> None:
        if order_id in self._corrected:
            return
        self._corrected.add(order_id)
        await self._r.append_correction(order_id)
        self.report.corrections += 1

    def _found(self, difference: Difference) -> None:
        self.report.differences.append(difference)
        metrics.RECONCILE_DIFFERENCES.labels(
            table=difference.table, kind=difference.kind.value
        ).inc()


def _classify(
    table: str, item: Mapping[str, Any] | None, order: order_pb2.Order, now: float
) -> DifferenceKind | None:
    """How a table's item differs from PostgreSQL's order; None when it does not."""
    if item is None or items.is_expired(item, now):
        return DifferenceKind.MISSING
    version = _version_or_none(item)
    if version is None:
        return DifferenceKind.CONTENT
    if version < order.version:
        return DifferenceKind.OLDER
    if version > order.version:
        return DifferenceKind.NEWER
    try:
        if table == STATUS_TABLE:
            same = items.summary_from_item(item) == wire.summary_from_order(order)
        else:
            same = items.order_from_item(item) == order
    except ValueError:
        same = False
    return None if same else DifferenceKind.CONTENT


def _version_or_none(item: Mapping[str, Any]) -> int | None:
    try:
        return items.item_version(item)
    except (ValueError, TypeError, KeyError):
        return None


async def _all(work: Sequence[Any]) -> None:
    """Awaits every repair, then raises the first failure (none is left running)."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


class ReconcileSchedule:
    """A full pass every `interval` seconds, in one process at a time: each pass holds a
    session advisory lock, and a process that cannot take it skips its turn. A pass that fails
    (the read model or PostgreSQL is down) is logged and retried at the next turn. `trigger()`
    brings the next pass forward (the projector calls it when the read model answers again
    after an outage: it may have come back empty). As an async context manager: entering
    starts the schedule, leaving cancels it (safe twice)."""

    def __init__(self, reconciler: Reconciler, pool: asyncpg.Pool, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._reconciler = reconciler
        self._pool = pool
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.passes = 0

    def trigger(self) -> None:
        """Runs the next pass now rather than at the end of the interval."""
        self._wake.set()

    async def __aenter__(self) -> ReconcileSchedule:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="reconcile")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("reconciliation pass failed: %r; next in %.0fs", error, self._interval)

    async def run_once(self) -> ReconcileReport | None:
        """One pass if no other process runs one now; None when it skipped its turn."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RECONCILE_LOCK_KEY):
                return None
            try:
                report = await self._reconciler.run()
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", RECONCILE_LOCK_KEY)
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
