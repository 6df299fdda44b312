"""Commit → visible: how long an acknowledged write takes to reach a near cache and the DynamoDB
read model at a steady write rate (`measure_lag`), and how fast a burst of writes drains through
outbox → relay → Kafka → projector → DynamoDB (`measure_pipeline`).

Every lag is measured from the moment the write's response arrived (the commit happened just
before) to the moment the response of the first probe that saw the new version arrived: an
upper bound, which includes the probe call itself (about a millisecond for a gRPC read, a few
for a DynamoDB read against moto).

Two probes:
- near cache: GetOrderStatus on an API replica every millisecond until it answers from
  `near-cache` with the version or a later one. A probe whose read fell through to a lower tier
  is not counted: that read copied the order into the near cache itself, so what followed says
  nothing about the event feed. For the same reason only updates are probed there (a replica
  has never seen a just-created order until its event arrives, so polling it would fill it),
  and the replica's cache is filled with every known order before each measurement.
- read model: one watcher reads the status table with BatchGetItem (ConsistentRead) about every
  10 ms for all the writes still awaited, instead of one GetItem loop per write: the local
  DynamoDB endpoint (moto) answers a few hundred calls a second in all, and the projector, whose
  lag this is, needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders_bench import load
from uoom_orders_bench.process_metrics import MetricsEndpoint
from uoom_orders_bench.stages import Stage
from uoom_orders_bench.stats import NS_PER_MS, latency_figures
from uoom_orders_bench.targets import TargetStartError, order_stub
from uoom_orders_bench.workload import (
    CALL_TIMEOUT_S,
    LIFECYCLE,
    NEXT_STATUS,
    SERVED_BY,
    OrderBook,
    create_request,
)

if TYPE_CHECKING:
    import random

    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

NEAR_CACHE = "near-cache"
# The near cache answers in well under a millisecond: poll about every millisecond (uvloop's
# timers tick in whole milliseconds, so this is the finest an asyncio sleep gets).
NEAR_CACHE_POLL_S = 0.001
# The read model watcher's pause between sweeps (each sweep is one BatchGetItem per 100 ids).
# moto spends 2-3 ms of CPU on any call and is the busiest process of a lag run already (the
# projector makes two PutItems per event): at 10 ms the watcher makes about 60 calls/s, a
# resolution still fine against a 150 ms target.
READ_MODEL_POLL_S = 0.01
# While a burst drains, each sweep reads hundreds of items (about 20 ms per 100 on moto): a
# longer pause keeps the probe's share of the endpoint small, for a resolution still well
# under the seconds a drain takes.
_DRAIN_POLL_S = 0.05
# Ids per BatchGetItem (DynamoDB's maximum).
_BATCH_GET_LIMIT = 100
# Status changes an order can take on the happy path: PENDING → … → DELIVERED.
STEPS_PER_ORDER = len(LIFECYCLE) - 1
# Orders the pipeline scenario creates are awaited in the read model this long before the
# burst, and the burst's final versions this long after it.
_PIPELINE_SETTLE_TIMEOUT_S = 60.0
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class ReadModelTable:
    """The status table the projector writes, and how to reach it."""

    table: str
    region: str
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        """A low-level aioboto3 DynamoDB client, closed on exit."""
        import aioboto3

        from uoom_orders.dynamodb.client import dynamodb_client

        session = aioboto3.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        # One retry only: a probe that fails is simply made again at the next sweep.
        async with dynamodb_client(
            region=self.region, endpoint=self.endpoint, max_retries=1, session=session
        ) as client:
            yield client


@dataclass(frozen=True)
class EventTopic:
    """The event topic, where a run started its own broker: how many records it holds is shown
    (see `broker`)."""

    bootstrap_servers: str
    topic: str


@dataclass(frozen=True)
class PipelineTargets:
    """Where the lag and pipeline scenarios look for a write once it is acknowledged, and the
    measured API process's own metrics."""

    near_cache_address: str | None = None
    """An API replica to probe (None: the service that took the write)."""
    replica_pid: int | None = None
    """That replica's process, when this run started it (its CPU is measured)."""
    read_model: ReadModelTable | None = None
    """None: the read model is not probed (no DynamoDB endpoint known)."""
    stages: tuple[Stage, ...] = ()
    """The stages whose lag the processes' metrics show (none: not known, e.g. --target)."""
    service_metrics: MetricsEndpoint | None = None
    """The measured API process's metrics, when this run started it (the create scenario
    reads its own timing of each call there)."""
    relay_pid: int | None = None
    """The outbox relay's process, when this run started it alone (the create scenario pauses
    it for one measurement)."""
    carriers: Mapping[str, int] = field(default_factory=dict)
    """Processes every event passes without a stage of their own, when this run started them
    (the local broker, the local DynamoDB endpoint): name → pid, for their CPU per event."""
    event_topic: EventTopic | None = None
    """The event topic, when this run started the broker (None: its record count is not shown)."""

    @property
    def near_cache_where(self) -> str:
        """Which process's near cache is probed, for the table's description."""
        if self.near_cache_address is None:
            return "the near cache of the process that took the write"
        return "the near cache of a second API replica (serve --roles api)"


@dataclass
class _Awaited:
    version: int
    deadline_ns: int
    future: asyncio.Future[int | None]


class ReadModelWatcher:
    """Polls the status table until awaited versions appear; run `run()` as a task.

    `expect` returns a future that resolves to the perf_counter_ns time at which the version
    (or a later one) was seen, or None when it was not seen by its deadline.
    """

    def __init__(
        self, client: Any, table: str, *, timeout_s: float, poll_s: float = READ_MODEL_POLL_S
    ) -> None:
        self._client = client
        self._table = table
        self._timeout_ns = int(timeout_s * _NS_PER_S)
        self._poll_s = poll_s
        self._waiting: dict[str, list[_Awaited]] = {}
        self._wake = asyncio.Event()
        self.calls = 0
        self.errors = 0
        self.call_ns: list[int] = []

    def expect(
        self, order_id: str, version: int, since_ns: int, timeout_s: float | None = None
    ) -> asyncio.Future[int | None]:
        """Awaits `version` of the order, seen within the timeout after `since_ns`."""
        timeout_ns = self._timeout_ns if timeout_s is None else int(timeout_s * _NS_PER_S)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        awaited = _Awaited(version, since_ns + timeout_ns, future)
        self._waiting.setdefault(order_id, []).append(awaited)
        self._wake.set()
        return future

    async def run(self) -> None:
        """Sweeps while anything is awaited, sleeps otherwise; runs until cancelled."""
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            await self._sweep()
            await asyncio.sleep(self._poll_s)

    async def _sweep(self) -> None:
        order_ids = list(self._waiting)
        for start in range(0, len(order_ids), _BATCH_GET_LIMIT):
            chunk = order_ids[start : start + _BATCH_GET_LIMIT]
            versions = await self._versions(chunk)
            seen_ns = time.perf_counter_ns()
            for order_id in chunk:
                self._settle(order_id, versions.get(order_id, 0) if versions else 0, seen_ns)

    async def _versions(self, order_ids: Sequence[str]) -> dict[str, int] | None:
        """The versions the table holds now (absent: not there); None when the call failed."""
        began = time.perf_counter_ns()
        self.calls += 1
        try:
            response = await self._client.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": [{"orderId": {"S": order_id}} for order_id in order_ids],
                        "ConsistentRead": True,
                        "ProjectionExpression": "#id, #v",
                        "ExpressionAttributeNames": {"#id": "orderId", "#v": "version"},
                    }
                }
            )
        except Exception:  # any failure: counted; the ids are read again at the next sweep
            self.errors += 1
            return None
        self.call_ns.append(time.perf_counter_ns() - began)
        # Keys DynamoDB left unprocessed are simply absent here, and read again next sweep.
        return {
            item["orderId"]["S"]: int(item["version"]["N"])
            for item in response.get("Responses", {}).get(self._table, [])
        }

    def _settle(self, order_id: str, version: int, seen_ns: int) -> None:
        kept = []
        for awaited in self._waiting.get(order_id, ()):
            if awaited.future.done():
                continue
            if version >= awaited.version:
                awaited.future.set_result(seen_ns)
            elif seen_ns >= awaited.deadline_ns:
                awaited.future.set_result(None)
            else:
                kept.append(awaited)
        if kept:
            self._waiting[order_id] = kept
        else:
            self._waiting.pop(order_id, None)

    def cancel_all(self) -> None:
        """Resolves every awaited version as not seen (on the way out)."""
        for awaited_list in self._waiting.values():
            for awaited in awaited_list:
                if not awaited.future.done():
                    awaited.future.set_result(None)
        self._waiting.clear()


@contextlib.asynccontextmanager
async def watching(
    table: ReadModelTable, timeout_s: float, poll_s: float = READ_MODEL_POLL_S
) -> AsyncIterator[ReadModelWatcher]:
    """A running ReadModelWatcher over its own client; stopped and closed on exit."""
    async with table.client() as client:
        watcher = ReadModelWatcher(client, table.table, timeout_s=timeout_s, poll_s=poll_s)
        task = asyncio.create_task(watcher.run(), name="read-model-watcher")
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            watcher.cancel_all()


@dataclass
class _NearCacheOutcome:
    lag_ns: int | None = None
    fell_through: bool = False
    polls: int = 0
    errors: int = 0


async def _near_cache_visible(
    stub: OrderServiceAsyncStub, order_id: str, version: int, since_ns: int, timeout_s: float
) -> _NearCacheOutcome:
    """Polls GetOrderStatus until the near cache answers `version` or later, or time runs out."""
    outcome = _NearCacheOutcome()
    request = order_service_pb2.GetOrderStatusRequest(order_id=order_id)
    deadline_ns = since_ns + int(timeout_s * _NS_PER_S)
    while True:
        outcome.polls += 1
        try:
            call = stub.GetOrderStatus(request, timeout=CALL_TIMEOUT_S)
            response = await call
            metadata = await call.trailing_metadata()
        except grpc.aio.AioRpcError:
            outcome.errors += 1
        else:
            seen_ns = time.perf_counter_ns()
            tier = next((str(v) for k, v in (metadata or ()) if k == SERVED_BY), "unknown")
            if tier != NEAR_CACHE:
                outcome.fell_through = True
            elif response.order.version >= version:
                outcome.lag_ns = seen_ns - since_ns
                return outcome
        if time.perf_counter_ns() >= deadline_ns:
            return outcome
        await asyncio.sleep(NEAR_CACHE_POLL_S)


async def fill_near_cache(
    stub: OrderServiceAsyncStub, order_ids: Sequence[str], live_within_s: float = 20.0
) -> None:
    """Reads every order once through `stub`'s server, so that its near cache holds them all,
    then waits until the near cache answers (its event feed is live).

    Raises TargetStartError when it does not answer within `live_within_s`.
    """
    for start in range(0, len(order_ids), 100):
        await stub.BatchGetOrderStatus(
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=order_ids[start : start + 100]),
            timeout=CALL_TIMEOUT_S,
        )
    if not order_ids:
        return
    request = order_service_pb2.GetOrderStatusRequest(order_id=order_ids[0])
    deadline = time.monotonic() + live_within_s
    while time.monotonic() < deadline:
        call = stub.GetOrderStatus(request, timeout=CALL_TIMEOUT_S)
        await call
        metadata = await call.trailing_metadata()
        if any(k == SERVED_BY and str(v) == NEAR_CACHE for k, v in (metadata or ())):
            return
        await asyncio.sleep(0.05)
    raise TargetStartError(f"the near cache did not answer within {live_within_s:g} s")


class LagWorkload:
    """The open loop's operation: one write per call, each followed by its visibility probes.

    Every `create_every`-th write is a CreateOrder, the others move a random idle order one
    lifecycle step (a CreateOrder too when none can move). Probes run as tasks of their own, so
    the write schedule never waits for them.
    """

    def __init__(
        self,
        write_stub: OrderServiceAsyncStub,
        probe_stub: OrderServiceAsyncStub,
        watcher: ReadModelWatcher | None,
        book: OrderBook,
        rng: random.Random,
        *,
        timeout_s: float,
        create_every: int = 5,
    ) -> None:
        self._write_stub = write_stub
        self._probe_stub = probe_stub
        self._watcher = watcher
        self._book = book
        self._rng = rng
        self._timeout_s = timeout_s
        self._create_every = create_every
        self._writes = 0
        self._near_cache: list[asyncio.Task[_NearCacheOutcome]] = []
        self._read_model: list[tuple[int, asyncio.Future[int | None]]] = []
        self.kinds: Counter[str] = Counter()

    async def __call__(self, index: int) -> str:
        self._writes += 1
        update = None
        if self._writes % self._create_every != 0:
            update = self._book.next_move(self._rng)
        if update is None:
            created = await self._write_stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)
            acked_ns = time.perf_counter_ns()
            order = created.order
            self._book.add(order)
            self.kinds["create"] += 1
        else:
            try:
                moved = await self._write_stub.UpdateOrderStatus(update, timeout=CALL_TIMEOUT_S)
            except BaseException:
                self._book.moved(update.order_id, None)
                raise
            acked_ns = time.perf_counter_ns()
            order = moved.order
            self._book.moved(update.order_id, order)
            self.kinds["update"] += 1
            self._near_cache.append(
                asyncio.create_task(
                    _near_cache_visible(
                        self._probe_stub, order.order_id, order.version, acked_ns, self._timeout_s
                    )
                )
            )
        if self._watcher is not None:
            future = self._watcher.expect(order.order_id, order.version, acked_ns)
            self._read_model.append((acked_ns, future))
        return "write"

    async def finish(self) -> dict[str, float]:
        """Waits for every probe (each bounded by its deadline); returns the lag figures."""
        outcomes = await asyncio.gather(*self._near_cache)
        clean = [o.lag_ns for o in outcomes if o.lag_ns is not None and not o.fell_through]
        figures: dict[str, float] = {
            "updates": self.kinds["update"],
            "creates": self.kinds["create"],
            "near_cache_probed": len(outcomes),
            "near_cache_measured": len(clean),
            "near_cache_timeouts": sum(o.lag_ns is None for o in outcomes),
            "near_cache_fell_through": sum(o.fell_through for o in outcomes),
            "near_cache_polls": sum(o.polls for o in outcomes),
            "near_cache_probe_errors": sum(o.errors for o in outcomes),
            **latency_figures(clean, "near_cache_lag_"),
        }
        if self._watcher is None:
            return figures
        seen = await asyncio.gather(*(future for _, future in self._read_model))
        lags = [
            seen_ns - acked_ns
            for (acked_ns, _), seen_ns in zip(self._read_model, seen, strict=True)
            if seen_ns is not None
        ]
        calls = sorted(self._watcher.call_ns)
        return figures | {
            "dynamodb_probed": len(seen),
            "dynamodb_measured": len(lags),
            "dynamodb_timeouts": len(seen) - len(lags),
            "dynamodb_probe_calls": self._watcher.calls,
            "dynamodb_probe_errors": self._watcher.errors,
            "dynamodb_probe_call_p50_ms": (
                calls[len(calls) // 2] / NS_PER_MS if calls else math.nan
            ),
            **latency_figures(lags, "dynamodb_lag_"),
        }

    def cancel(self) -> None:
        """Cancels the probes still running (on the way out of an interrupted run)."""
        for task in self._near_cache:
            task.cancel()


async def measure_lag(
    address: str,
    targets: PipelineTargets,
    book: OrderBook,
    rng: random.Random,
    *,
    rate: float,
    duration_s: float,
    timeout_s: float,
) -> dict[str, float]:
    """Writes at `rate` per second (open loop) for `duration_s` to the service at `address`,
    and measures when each write becomes visible in a near cache and in the read model."""
    async with contextlib.AsyncExitStack() as stack:
        write_stub = await stack.enter_async_context(order_stub(address))
        probe_stub = await stack.enter_async_context(
            order_stub(targets.near_cache_address or address)
        )
        await fill_near_cache(probe_stub, list(book.order_ids))
        watcher = None
        if targets.read_model is not None:
            watcher = await stack.enter_async_context(watching(targets.read_model, timeout_s))
        workload = LagWorkload(write_stub, probe_stub, watcher, book, rng, timeout_s=timeout_s)
        try:
            result = await load.open_loop(workload, rate, duration_s)
            lag = await workload.finish()
        finally:
            workload.cancel()
    writes = result.latencies_ns.get("write", [])
    return (
        result.figures()
        | {
            "target_rate": rate,
            "writes": len(writes),
            "late_starts": result.late_starts,
            **latency_figures(writes, "write_"),
        }
        | lag
    )


@dataclass
class _BurstOrder:
    order_id: str
    status: order_pb2.OrderStatus.ValueType
    version: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failed: bool = False


@dataclass
class _Burst:
    """What the writers of one burst saw."""

    latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_ack_ns: int = 0
    last_ack_ns: int = 0


async def _create_orders(
    stub: OrderServiceAsyncStub, count: int, writers: int
) -> list[_BurstOrder]:
    created: list[_BurstOrder] = []
    remaining = iter(range(count))

    async def creator() -> None:
        for _ in remaining:
            response = await stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)
            order = response.order
            created.append(_BurstOrder(order.order_id, order.status, order.version))

    await asyncio.gather(*(creator() for _ in range(max(1, min(writers, count)))))
    return created


def _plan(orders: Sequence[_BurstOrder], events: int) -> list[_BurstOrder]:
    """The burst's status changes in the order they are taken: every order's first step, then
    every order's second, and so on, so that consecutive versions of one order are far apart
    and reach the projector in different batches (it keeps only the newest of a batch)."""
    rounds = (orders for _ in range(STEPS_PER_ORDER))
    return list(itertools.islice(itertools.chain.from_iterable(rounds), events))


async def _write_burst(
    stub: OrderServiceAsyncStub, plan: Sequence[_BurstOrder], writers: int
) -> _Burst:
    burst = _Burst()
    steps = iter(plan)
    clock = time.perf_counter_ns

    async def writer() -> None:
        for order in steps:
            # No await between taking a step and queueing on its order's lock, and asyncio
            # locks are FIFO: an order's steps are written in plan order.
            async with order.lock:
                if order.failed:
                    continue
                request = order_service_pb2.UpdateOrderStatusRequest(
                    request_id=str(uuid.uuid4()),
                    order_id=order.order_id,
                    status=NEXT_STATUS[order.status],
                    expected_version=order.version,
                )
                began = clock()
                try:
                    response = await stub.UpdateOrderStatus(request, timeout=CALL_TIMEOUT_S)
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                    burst.errors[code.name if code is not None else "UNKNOWN"] += 1
                    order.failed = True  # its version is unknown now: no more steps for it
                    continue
                acked = clock()
                burst.latencies_ns.append(acked - began)
                burst.first_ack_ns = burst.first_ack_ns or acked
                burst.last_ack_ns = acked
                order.status, order.version = response.order.status, response.order.version

    await asyncio.gather(*(writer() for _ in range(writers)))
    return burst


async def _all_visible(
    watcher: ReadModelWatcher, orders: Sequence[_BurstOrder], since_ns: int, timeout_s: float
) -> tuple[int | None, int]:
    """Waits until each order's current version is in the read model; returns the time the
    last one was seen (None if none was) and how many were not seen in time."""
    seen = await asyncio.gather(
        *(watcher.expect(o.order_id, o.version, since_ns, timeout_s) for o in orders)
    )
    times = [t for t in seen if t is not None]
    return (max(times) if times else None), len(seen) - len(times)


async def measure_pipeline(
    address: str, read_model: ReadModelTable, *, events: int, writers: int
) -> dict[str, float]:
    """Creates fresh orders and waits until the read model has them; then writes `events`
    status changes with `writers` concurrent callers, as fast as the service takes them, and
    measures until the read model holds every order's final version."""
    orders_needed = max(1, math.ceil(events / STEPS_PER_ORDER))
    async with order_stub(address) as stub, watching(read_model, 5.0, _DRAIN_POLL_S) as watcher:
        orders = await _create_orders(stub, orders_needed, writers)
        _, not_ready = await _all_visible(
            watcher, orders, time.perf_counter_ns(), _PIPELINE_SETTLE_TIMEOUT_S
        )
        calls_before = watcher.calls
        burst_start = time.perf_counter_ns()
        burst = await _write_burst(stub, _plan(orders, events), writers)
        written = [o for o in orders if not o.failed]
        last_seen, not_visible = await _all_visible(
            watcher, written, burst.last_ack_ns or burst_start, _PIPELINE_SETTLE_TIMEOUT_S
        )
        sweeps = watcher.calls - calls_before
    acked = len(burst.latencies_ns)
    write_s = (burst.last_ack_ns - burst_start) / _NS_PER_S if acked else math.nan
    # Drain and end-to-end figures only when every order arrived: otherwise they are unknown.
    drained = last_seen is not None and not_visible == 0 and acked > 0
    end_to_end_s = math.nan
    drain_s = math.nan
    if drained and last_seen is not None:
        end_to_end_s = (last_seen - burst.first_ack_ns) / _NS_PER_S
        drain_s = (last_seen - burst.last_ack_ns) / _NS_PER_S
    return {
        "calls": acked,
        "events": acked,
        "orders": len(orders),
        "writers": writers,
        "errors": sum(burst.errors.values()),
        "orders_not_ready": not_ready,
        "write_s": write_s,
        "commits_per_s": acked / write_s if acked and write_s > 0 else math.nan,
        "calls_per_s": acked / write_s if acked and write_s > 0 else math.nan,
        "drain_s": drain_s,
        "end_to_end_s": end_to_end_s,
        "events_per_s": acked / end_to_end_s if end_to_end_s > 0 else math.nan,
        "not_visible": not_visible,
        "read_model_calls": sweeps,
        **latency_figures(burst.latencies_ns, "write_"),
    }
