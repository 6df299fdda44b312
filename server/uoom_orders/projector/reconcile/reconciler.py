"""The Reconciler: runs passes (pages of PostgreSQL's orders, then the orphan scan) and is the
one place a pass reads and writes the stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.dynamodb import capacity, items
from uoom_orders.dynamodb.tables import DETAILS_TABLE, STATUS_TABLE, TableNames
from uoom_orders.dynamodb.writer import ReadModelWriter, Replacement, ReplaceOutcome
from uoom_orders.observability import metrics
from uoom_orders.projector.reconcile.differences import ReconcileReport
from uoom_orders.projector.reconcile.repair import Progress, RepairPass
from uoom_orders.read.postgres_store import order_from_rows
from uoom_orders.runtime.retry import Backoff
from uoom_orders.runtime.tasks import cancel_and_wait
from uoom_orders.write.outbox import PostgresOutbox

BATCH_GET_LIMIT = 100  # DynamoDB's maximum keys per BatchGetItem
# How much of a pass is in the air at once: pages being checked, and write requests (a page's
# repairs go in transactions of up to 100 items; an item a transaction cannot settle, and an
# orphan's delete, is a request of its own). When each repair was a PutItem of its own, 48
# writes and 8 pages in flight against 16 and 8, runs interleaved in the fault-injection run
# (`dynamodb-lost`: ~500 orders repaired under 30 writes/s and 240 reads/s, 2 cores), walked in
# 3.1 and 2.4 s against 4.2 and 4.0 s. The client's pool holds 64 connections, leaving room for
# the projector's own writes.
PAGES_IN_FLIGHT = 8
WRITES_IN_FLIGHT = 48

_FILTER = """
    ($1::uuid IS NULL OR o.customer_id = $1)
    AND ($2::timestamptz IS NULL OR o.updated_at >= $2)
"""
_COUNT = f"SELECT count(*) FROM orders o WHERE {_FILTER}"
_PAGE = f"""
    SELECT o.order_id FROM orders o
    WHERE {_FILTER} AND ($3::uuid IS NULL OR o.order_id > $3)
        AND ($5::timestamptz IS NULL OR o.updated_at < $5)
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
_VERSIONS = "SELECT order_id, version, updated_at FROM orders WHERE order_id = ANY($1::uuid[])"


class Reconciler:
    """Compares the read model with PostgreSQL and repairs it; see the package's doc.

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
        pages_in_flight: int = PAGES_IN_FLIGHT,
        writes_in_flight: int = WRITES_IN_FLIGHT,
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
        scan: bool = True,
        recent_from: datetime | None = None,
    ) -> ReconcileReport:
        """One pass. With a filter, only the orders it selects (no scan of the tables); with
        `scan` False, the walk only.

        Orders changed at or after `recent_from` are walked after all the others. After an
        outage of the read model, the orders changed since it began are those whose events
        the projectors are still catching up on: walked first, each would be written twice
        (by the walk and by its projection, one of them refused). Walked last, once the
        others are written, many are found written: in the fault-injection run that loses the
        read model, the walk found 870-890 differences instead of about 1,000.

        The walk covers the orders changed within the items' TTL: an older order's items have
        expired (DynamoDB deletes them, readers ignore them), so their absence is no
        difference, and writing them again would keep every order ever made in the read model.
        What the tables still hold of older orders is checked by the scan instead."""
        started = time.monotonic()
        window = datetime.fromtimestamp(self._clock() - self._ttl_hours * 3600, UTC)
        walk_since = window if since is None else max(since, window)
        total = int(await self._pool.fetchval(_COUNT, customer_id, walk_since))
        one_pass = RepairPass(self, dry_run, progress, total, walk_since)
        pages: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self._pages_in_flight)

        def finished(task: asyncio.Task[None]) -> None:
            pages.discard(task)
            slots.release()

        # (since, before) of each stretch of the walk, in the order walked. Together they cover
        # every order changed since the first's start: one changed during an earlier stretch
        # has moved into the last.
        stretches: list[tuple[datetime, datetime | None]] = [(walk_since, None)]
        if recent_from is not None and recent_from > walk_since:
            stretches = [(walk_since, recent_from), (recent_from, None)]
        try:
            for stretch_since, before in stretches:
                async for page in self._pages(customer_id, stretch_since, before):
                    await slots.acquire()
                    # A page that failed (e.g. the read model is down) ends the pass.
                    for failed in [t for t in pages if t.done()]:
                        failed.result()
                    task = asyncio.create_task(one_pass.check_page(page))
                    pages.add(task)
                    task.add_done_callback(finished)
                # Each stretch is done before the next is read: the recent orders are read
                # once the others are written, when their projections have mostly landed.
                if pages:
                    await asyncio.gather(*pages)
            if scan and customer_id is None and since is None:
                await asyncio.gather(
                    *(
                        one_pass.scan_segment(table, segment)
                        for table in (STATUS_TABLE, DETAILS_TABLE)
                        for segment in range(self._segments)
                    )
                )
        except BaseException:
            await cancel_and_wait(*pages)
            raise
        one_pass.report.seconds = time.monotonic() - started
        if customer_id is None and since is None and not dry_run:
            metrics.RECONCILE_LAST_PASS.set(time.time())
        return one_pass.report

    async def _pages(
        self, customer_id: UUID | None, since: datetime | None, before: datetime | None = None
    ) -> AsyncIterator[list[UUID]]:
        after: UUID | None = None
        while True:
            rows = await self._pool.fetch(_PAGE, customer_id, since, after, self._page_size, before)
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
        """BatchGetItem, eventually consistent (see the package's doc); retries UnprocessedKeys
        until none are left."""
        name = self.table_name(table)
        request: dict[str, Any] = {
            name: {"Keys": [items.item_key(i) for i in order_ids], "ConsistentRead": False}
        }
        found: dict[str, items.Item] = {}
        backoff = Backoff(0.04, 1.0)
        while request:
            reply = await self._client.batch_get_item(RequestItems=request, **capacity.RETURN_TOTAL)
            capacity.count_consumed("BatchGetItem", reply)
            for item in reply.get("Responses", {}).get(name, []):
                found[item[items.ORDER_ID]["S"]] = item
            request = reply.get("UnprocessedKeys") or {}
            if request:
                await asyncio.sleep(backoff.next_delay())
        return found

    async def read_orders(self, order_ids: Sequence[UUID]) -> dict[str, order_pb2.Order]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_ORDERS, list(order_ids))
            lines: dict[UUID, list[asyncpg.Record]] = {row["order_id"]: [] for row in rows}
            for line in await conn.fetch(_ITEMS, list(lines)):
                lines[line["order_id"]].append(line)
        return {str(row["order_id"]): order_from_rows(row, lines[row["order_id"]]) for row in rows}

    async def versions(self, order_ids: Sequence[UUID]) -> dict[str, tuple[int, datetime]]:
        """PostgreSQL's version and update time of each of these orders it has."""
        rows = await self._pool.fetch(_VERSIONS, order_ids)
        return {str(r["order_id"]): (int(r["version"]), r["updated_at"]) for r in rows}

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
            "ConsistentRead": False,
            **capacity.RETURN_TOTAL,
        }
        while True:
            reply = await self._client.scan(**request)
            capacity.count_consumed("Scan", reply)
            yield reply.get("Items", [])
            last = reply.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    async def write_all(
        self, repairs: Sequence[tuple[str, order_pb2.Order, items.ItemIdentity | None]]
    ) -> list[ReplaceOutcome | ValueError]:
        """Writes each (table, order, the item it replaces) as PostgreSQL has the order, in
        transactions (`ReadModelWriter.replace_items`); the outcomes in the order given, a
        ValueError for an order the items cannot represent."""
        ttl = items.ttl_after(self._ttl_hours, self._clock())
        outcomes: dict[int, ReplaceOutcome | ValueError] = {}
        replacements: list[Replacement] = []
        sent: list[int] = []
        for index, (table, order, expected) in enumerate(repairs):
            encode = items.status_item if table == STATUS_TABLE else items.details_item
            try:
                item = encode(order, ttl)
            except ValueError as error:
                outcomes[index] = error
                continue
            replacements.append(Replacement(self.table_name(table), item, expected))
            sent.append(index)
        if replacements:
            written = await self._writer.replace_items(replacements, self._writes)
            for index, outcome in zip(sent, written, strict=True):
                outcomes[index] = outcome
        return [outcomes[index] for index in range(len(repairs))]

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
