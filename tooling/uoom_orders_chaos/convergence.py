"""Does everything agree with PostgreSQL? Snapshots of the source, both read-model tables and
what each API replica answers, compared order by order; and the wait for agreement.

Content is compared through the service's own codecs (PostgreSQL rows and DynamoDB items to
protobuf messages): a codec bug that both sides share would not show here, but any state that
differs does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, TypeVar

import asyncpg
import grpc
from uoom.orders.v1 import order_service_pb2_grpc

from uoom_orders.read.postgres_store import order_from_rows, summary_from_row
from uoom_orders.readmodel.items import order_from_item, summary_from_item
from uoom_orders_chaos.cluster import ReadModelAccess, RoleProcess
from uoom_orders_chaos.load import CHANNEL_OPTIONS
from uoom_orders_client import order_pb2, order_service_pb2

KINDS = ("missing", "older", "newer", "content", "unreachable")
"""Kinds of difference with PostgreSQL: no entry, a lower version, a higher version (or an
order PostgreSQL does not have), the same version with other content, or not readable."""
STATUS_TABLE = "status-table"
DETAILS_TABLE = "details-table"
POSTGRES = "postgres"
_READ_TIMEOUT_S = 5.0
_BATCH = 100
_EXAMPLES = 3

_ORDERS = """
    SELECT o.order_id, o.status, o.customer_id, o.restaurant_id, o.channel_id, o.currency_code,
        o.total_minor, o.estimated_delivery_time, o.tracking_code, o.created_at, o.updated_at,
        o.version, o.delivery_latitude, o.delivery_longitude, o.delivery_address,
        o.delivery_city, o.delivery_postal_code
    FROM orders o
"""
_ITEMS = """
    SELECT order_id, item_id, name, quantity, unit_price_minor, total_minor AS item_total
    FROM order_items ORDER BY order_id, line_no
"""


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


_M = TypeVar("_M", order_pb2.Order, order_pb2.OrderSummary)


@dataclass(frozen=True)
class PostgresState:
    """Every order in the write model, as a status record and as a whole order."""

    summaries: dict[str, order_pb2.OrderSummary]
    orders: dict[str, order_pb2.Order]

    def versions(self) -> dict[str, tuple[int, order_pb2.OrderStatus.ValueType]]:
        return {oid: (s.version, s.status) for oid, s in self.summaries.items()}


@dataclass
class Snapshot:
    """One comparison of every component with PostgreSQL."""

    started: float
    finished: float
    postgres: PostgresState | None
    differences: dict[str, collections.Counter[str]]
    """Component → kind → how many orders."""
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return not any(self.differences.values())

    def total(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.differences.values())


def compare(
    expected: Mapping[str, _M], found: Mapping[str, _M | None]
) -> tuple[collections.Counter[str], list[str]]:
    """Differences of `found` (None: an entry that could not be decoded) from `expected`."""
    kinds: collections.Counter[str] = collections.Counter()
    examples: list[str] = []

    def note(kind: str, order_id: str, detail: str) -> None:
        kinds[kind] += 1
        if len(examples) < _EXAMPLES:
            examples.append(f"{kind} {order_id} {detail}")

    for order_id, want in expected.items():
        if order_id not in found:
            note("missing", order_id, f"(PostgreSQL v{want.version})")
            continue
        got = found[order_id]
        if got is None:
            note("content", order_id, "(undecodable)")
        elif got.version < want.version:
            note("older", order_id, f"v{got.version} < v{want.version}")
        elif got.version > want.version:
            note("newer", order_id, f"v{got.version} > v{want.version}")
        elif got != want:
            note("content", order_id, f"at v{got.version}")
    for order_id in found.keys() - expected.keys():
        note("newer", order_id, "(not in PostgreSQL)")
    return kinds, examples


def _decoded(
    items: Mapping[str, Mapping[str, Any]], decode: Callable[[Mapping[str, Any]], _M]
) -> dict[str, _M | None]:
    decoded: dict[str, _M | None] = {}
    for order_id, item in items.items():
        try:
            decoded[order_id] = decode(item)
        except (ValueError, KeyError, TypeError):
            decoded[order_id] = None
    return decoded


class StateReader:
    """Reads PostgreSQL, the two tables and every replica; an async context manager."""

    def __init__(
        self, database_url: str, read_model: ReadModelAccess, replicas: Sequence[RoleProcess]
    ) -> None:
        self._database_url = database_url
        self._read_model = read_model
        self._replicas = list(replicas)
        self._stack = contextlib.AsyncExitStack()
        self._dynamodb: Any = None
        self._stubs: list[Any] = []
        self.last_postgres: PostgresState | None = None

    async def __aenter__(self) -> StateReader:
        await self._stack.__aenter__()
        self._dynamodb = await self._stack.enter_async_context(self._read_model.client())
        for replica in self._replicas:
            channel = grpc.aio.insecure_channel(
                replica.address,
                options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)],
            )
            self._stack.push_async_callback(channel.close)
            self._stubs.append(order_service_pb2_grpc.OrderServiceStub(channel))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    async def snapshot(self) -> Snapshot:
        """PostgreSQL first, then every other component at once, each compared with it."""
        started = time.monotonic()
        differences: dict[str, collections.Counter[str]] = {}
        examples: dict[str, list[str]] = {}
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                postgres = await self.postgres()
        except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError) as error:
            differences[POSTGRES] = collections.Counter(unreachable=1)
            examples[POSTGRES] = [repr(error)]
            return Snapshot(started, time.monotonic(), None, differences, examples)
        self.last_postgres = postgres
        names = [STATUS_TABLE, DETAILS_TABLE, *(r.name for r in self._replicas)]
        reads = [
            self._guarded(self._table(self._read_model.tables.status, postgres, summary=True)),
            self._guarded(self._table(self._read_model.tables.details, postgres, summary=False)),
            *(self._guarded(self._replica(stub, postgres)) for stub in self._stubs),
        ]
        for name, (kinds, found) in zip(names, await asyncio.gather(*reads), strict=True):
            differences[name] = kinds
            if found:
                examples[name] = found
        return Snapshot(started, time.monotonic(), postgres, differences, examples)

    async def postgres(self) -> PostgresState:
        connection = await asyncpg.connect(self._database_url, timeout=_READ_TIMEOUT_S)
        try:
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                rows = await connection.fetch(_ORDERS)
                lines = await connection.fetch(_ITEMS)
        finally:
            await connection.close()
        by_order: dict[Any, list[asyncpg.Record]] = collections.defaultdict(list)
        for line in lines:
            by_order[line["order_id"]].append(line)
        summaries = {str(row["order_id"]): summary_from_row(row) for row in rows}
        orders = {
            str(row["order_id"]): order_from_rows(row, by_order[row["order_id"]]) for row in rows
        }
        return PostgresState(summaries, orders)

    @staticmethod
    async def _guarded(
        read: Any,
    ) -> tuple[collections.Counter[str], list[str]]:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                result: tuple[collections.Counter[str], list[str]] = await read
                return result
        except Exception as error:  # any failure to read: the component is not there yet
            return collections.Counter(unreachable=1), [repr(error)[:200]]

    async def _table(
        self, table: str, postgres: PostgresState, *, summary: bool
    ) -> tuple[collections.Counter[str], list[str]]:
        items: dict[str, Mapping[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = await self._dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                items[item["orderId"]["S"]] = item
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if summary:
            return compare(postgres.summaries, _decoded(items, summary_from_item))
        return compare(postgres.orders, _decoded(items, order_from_item))

    async def _replica(
        self, stub: Any, postgres: PostgresState
    ) -> tuple[collections.Counter[str], list[str]]:
        """What the replica answers now for every order (BatchGetOrderStatus, no min_version).

        Such reads are ordinary reads: a miss in the replica's near cache copies what a lower
        tier answered into it, as any caller's read would.
        """
        order_ids = list(postgres.summaries)
        chunks = [order_ids[i : i + _BATCH] for i in range(0, len(order_ids), _BATCH)]
        semaphore = asyncio.Semaphore(4)

        async def read(chunk: list[str]) -> list[order_pb2.OrderSummary]:
            async with semaphore:
                reply = await stub.BatchGetOrderStatus(
                    order_service_pb2.BatchGetOrderStatusRequest(order_ids=chunk), timeout=3.0
                )
                return list(reply.orders)

        found: dict[str, order_pb2.OrderSummary | None] = {}
        for answered in await asyncio.gather(*(read(chunk) for chunk in chunks)):
            for summary in answered:
                found[summary.order_id] = summary
        return compare(postgres.summaries, found)


@dataclass
class Convergence:
    """How long agreement took after a fault lifted, per component and in all."""

    seconds: float | None
    """From the fault lifting to the end of the first snapshot in which everything agreed;
    None when that did not happen within the settle timeout."""
    agreed_after: dict[str, float | None]
    """Per component: seconds after the lift from which it agreed in every later snapshot."""
    last: Snapshot
    snapshots: int
    snapshot_seconds: float
    """The median time one snapshot took: the resolution of the figures above."""


async def await_convergence(
    reader: StateReader,
    lifted_at: float,
    timeout_s: float,
    quiet: Callable[[], bool],
    interval_s: float = 0.2,
) -> Convergence:
    """Snapshots until everything agrees with PostgreSQL or `timeout_s` after `lifted_at`.

    Agreement counts only in a snapshot begun while `quiet()` (no write in flight or to come),
    since a moving PostgreSQL is never matched exactly.
    """
    agreed_after: dict[str, float | None] = {}
    durations: list[float] = []
    while True:
        was_quiet = quiet()
        snapshot = await reader.snapshot()
        durations.append(snapshot.finished - snapshot.started)
        elapsed = snapshot.finished - lifted_at
        for name, kinds in snapshot.differences.items():
            if kinds:
                agreed_after[name] = None
            elif agreed_after.get(name) is None:
                agreed_after[name] = elapsed
        if was_quiet and snapshot.agrees:
            seconds: float | None = elapsed
            break
        if time.monotonic() - lifted_at >= timeout_s:
            seconds = None
            break
        await asyncio.sleep(interval_s)
    durations.sort()
    return Convergence(
        seconds=seconds,
        agreed_after=agreed_after,
        last=snapshot,
        snapshots=len(durations),
        snapshot_seconds=durations[len(durations) // 2],
    )
