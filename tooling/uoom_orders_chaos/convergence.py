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
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import grpc
from uoom.orders.v1 import order_service_pb2_grpc

from uoom_orders.dynamodb.items import order_from_item, summary_from_item
from uoom_orders.read.postgres_store import order_from_rows, summary_from_row
from uoom_orders_chaos.cluster import ReadModelAccess, RoleProcess
from uoom_orders_chaos.load import CHANNEL_OPTIONS
from uoom_orders_client import order_pb2, order_service_pb2

KINDS = ("missing", "older", "newer", "content", "unreachable")
"""Kinds of difference with PostgreSQL: no entry, a lower version, a higher version (or an
order PostgreSQL does not have), the same version with other content, or not readable."""
STATUS_TABLE = "status-table"
DETAILS_TABLE = "details-table"
POSTGRES = "postgres"
_READ_TIMEOUT_S = 10.0
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
    expected: Mapping[str, _M], found: Mapping[str, _M | None], unknown: Iterable[str] = ()
) -> tuple[collections.Counter[str], list[str], set[str]]:
    """Differences of `found` (None: an entry that could not be decoded) from `expected`, and
    the orders that agree. An order of `unknown` (not in PostgreSQL) that is found is newer."""
    kinds: collections.Counter[str] = collections.Counter()
    examples: list[str] = []
    agreeing: set[str] = set()

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
        else:
            agreeing.add(order_id)
    for order_id in unknown:
        if order_id in found:
            note("newer", order_id, "(not in PostgreSQL)")
    return kinds, examples, agreeing


def _decoded(
    items: Iterable[Mapping[str, Any]], decode: Callable[[Mapping[str, Any]], _M]
) -> dict[str, _M | None]:
    decoded: dict[str, _M | None] = {}
    for item in items:
        try:
            decoded[item["orderId"]["S"]] = decode(item)
        except (ValueError, KeyError, TypeError):
            decoded[str(item.get("orderId", {}).get("S", "?"))] = None
    return decoded


@dataclass(frozen=True)
class _Component:
    """Something that should agree with PostgreSQL, and how to read orders from it."""

    name: str
    read: Callable[[list[str]], Awaitable[dict[str, Any]]]
    """Reads the given orders; returns what it has (None for an undecodable entry)."""
    expected: Callable[[PostgresState], Mapping[str, Any]]


class StateReader:
    """Reads PostgreSQL, the two tables and every replica; an async context manager.

    Incremental, so that measuring neither loads the servers it measures (moto spends
    milliseconds of CPU per item) nor takes longer than the convergence it times: each
    component keeps the orders it was last seen to agree on (at which version), and a snapshot
    reads only the others — orders new or changed in PostgreSQL since, and those it did not
    agree on. `forget()` makes the next snapshot read orders again whatever they agreed on:
    what a fault may have changed behind an unchanged PostgreSQL version (a lost read model, a
    restarted replica, orders that got stale events), and everything for each fault's final
    snapshot. Orders PostgreSQL does not have but that were acknowledged (`also_known`) are
    read too: found anywhere, they are newer than PostgreSQL.
    """

    def __init__(
        self,
        database_url: str,
        read_model: ReadModelAccess,
        replicas: Sequence[RoleProcess],
        also_known: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._database_url = database_url
        self._read_model = read_model
        self._replicas = list(replicas)
        self._also_known = also_known
        self._stack = contextlib.AsyncExitStack()
        self._dynamodb: Any = None
        self._components: list[_Component] = []
        self._confirmed: dict[str, dict[str, int]] = {}
        self.last_postgres: PostgresState | None = None

    async def __aenter__(self) -> StateReader:
        await self._stack.__aenter__()
        self._dynamodb = await self._stack.enter_async_context(
            self._read_model.client(max_retries=2, timeout_ms=5000)
        )
        tables = self._read_model.tables
        self._components = [
            _Component(
                STATUS_TABLE,
                lambda ids: self._items(tables.status, ids, summary_from_item),
                lambda pg: pg.summaries,
            ),
            _Component(
                DETAILS_TABLE,
                lambda ids: self._items(tables.details, ids, order_from_item),
                lambda pg: pg.orders,
            ),
        ]
        for replica in self._replicas:
            channel = grpc.aio.insecure_channel(
                replica.address,
                options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)],
            )
            self._stack.push_async_callback(channel.close)
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            self._components.append(
                _Component(
                    replica.name,
                    functools.partial(self._answers, stub),
                    lambda pg: pg.summaries,
                )
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    @property
    def component_names(self) -> list[str]:
        return [component.name for component in self._components]

    def forget(
        self, components: Iterable[str] | None = None, orders: Iterable[str] | None = None
    ) -> None:
        """The next snapshot reads these orders (default: all) from these components (default:
        all) again, whatever they agreed on before."""
        names = self.component_names if components is None else list(components)
        wanted = None if orders is None else set(orders)
        for name in names:
            confirmed = self._confirmed.get(name)
            if confirmed is None:
                continue
            if wanted is None:
                confirmed.clear()
            else:
                for order_id in wanted:
                    confirmed.pop(order_id, None)

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
            examples[POSTGRES] = [repr(error)[:200]]
            return Snapshot(started, time.monotonic(), None, differences, examples)
        self.last_postgres = postgres
        unknown = {oid for oid in self._also_known() if oid not in postgres.summaries}
        outcomes = await asyncio.gather(
            *(self._check(component, postgres, unknown) for component in self._components)
        )
        for component, (kinds, found) in zip(self._components, outcomes, strict=True):
            differences[component.name] = kinds
            if found:
                examples[component.name] = found
        return Snapshot(started, time.monotonic(), postgres, differences, examples)

    async def _check(
        self, component: _Component, postgres: PostgresState, unknown: set[str]
    ) -> tuple[collections.Counter[str], list[str]]:
        confirmed = self._confirmed.setdefault(component.name, {})
        expected_all = component.expected(postgres)
        expected = {
            oid: want for oid, want in expected_all.items() if confirmed.get(oid) != want.version
        }
        # Confirmed once but gone from PostgreSQL since (a crash lost its commits): read again.
        gone = {oid for oid in confirmed if oid not in expected_all}
        strangers = unknown | gone
        for order_id in gone:
            del confirmed[order_id]
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                found = await component.read([*expected, *strangers])
        except Exception as error:  # any failure to read: the component is not there yet
            return collections.Counter(unreachable=1), [repr(error)[:200]]
        kinds, found_examples, agreeing = compare(expected, found, strangers)
        for order_id in expected:
            if order_id in agreeing:
                confirmed[order_id] = expected[order_id].version
            else:
                confirmed.pop(order_id, None)
        return kinds, found_examples

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

    async def _items(
        self, table: str, order_ids: list[str], decode: Callable[[Mapping[str, Any]], _M]
    ) -> dict[str, _M | None]:
        """BatchGetItem (consistent) in chunks of 100, a few at once, unprocessed keys asked
        again."""
        items: list[Mapping[str, Any]] = []
        semaphore = asyncio.Semaphore(4)

        async def read(chunk: list[str]) -> None:
            keys = [{"orderId": {"S": oid}} for oid in chunk]
            async with semaphore:
                while keys:
                    reply = await self._dynamodb.batch_get_item(
                        RequestItems={table: {"Keys": keys, "ConsistentRead": True}}
                    )
                    items.extend(reply.get("Responses", {}).get(table, []))
                    keys = reply.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                    if keys:
                        await asyncio.sleep(0.05)

        await asyncio.gather(
            *(read(order_ids[i : i + _BATCH]) for i in range(0, len(order_ids), _BATCH))
        )
        return _decoded(items, decode)

    @staticmethod
    async def _answers(stub: Any, order_ids: list[str]) -> dict[str, order_pb2.OrderSummary]:
        """What the replica answers now (BatchGetOrderStatus, no min_version).

        Such reads are ordinary reads: a miss in the replica's near cache copies what a lower
        tier answered into it, as any caller's read would.
        """
        chunks = [order_ids[i : i + _BATCH] for i in range(0, len(order_ids), _BATCH)]
        semaphore = asyncio.Semaphore(4)

        async def read(chunk: list[str]) -> list[order_pb2.OrderSummary]:
            async with semaphore:
                reply = await stub.BatchGetOrderStatus(
                    order_service_pb2.BatchGetOrderStatusRequest(order_ids=chunk), timeout=3.0
                )
                return list(reply.orders)

        found: dict[str, order_pb2.OrderSummary] = {}
        for answered in await asyncio.gather(*(read(chunk) for chunk in chunks)):
            for summary in answered:
                found[summary.order_id] = summary
        return found


@dataclass
class Convergence:
    """How long agreement took after a fault lifted, per component and in all."""

    seconds: float | None
    """From the fault lifting to the end of the first snapshot in which everything agreed;
    None when that did not happen within the settle timeout."""
    agreed_after: dict[str, float | None]
    """Per component: seconds after the lift from which it agreed in every later snapshot
    (snapshots begin once the writes stopped)."""
    last: Snapshot
    snapshots: int
    snapshot_seconds: float
    """The median time one snapshot took: the resolution of the figures above."""


async def await_convergence(
    reader: StateReader,
    lifted_at: float,
    timeout_s: float,
    quiesced: asyncio.Task[None],
    interval_s: float = 0.2,
) -> Convergence:
    """Snapshots until everything agrees with PostgreSQL or `timeout_s` after `lifted_at`.

    Agreement counts only in a snapshot begun once `quiesced` is done (no write in flight or to
    come),
    since a moving PostgreSQL is never matched exactly; so none is taken before (for a fault
    whose repair runs under writes, reading every order of every component again and again
    would compete for the endpoint with the repair being timed).
    """
    agreed_after: dict[str, float | None] = {}
    durations: list[float] = []
    await asyncio.wait([quiesced], timeout=max(0.0, lifted_at + timeout_s - time.monotonic()))
    while True:
        was_quiet = quiesced.done()
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
