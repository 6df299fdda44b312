"""The watch scenario: push lag, commit → message at the watcher, with N concurrent watches on
one API replica at a steady write rate, and that replica's CPU per message.

The N watches are spread over S = min(N, --watch-orders) *slots*, each an order watched by
N / S of them (WatchOrderStatus, on channels of their own to the replica that takes no writes).
The writer moves a random slot's order one lifecycle step at the write rate (open loop), so
every write is pushed to every watcher of its slot; a slot takes writes only once each of its
watchers has the order's first message. The fifth step is DELIVERED: its watches end by
themselves and the slot moves to a fresh order, created beforehand.

Lag is measured from the order's `updated_at` (the write's time, taken in its transaction just
before the commit) to the arrival of the message at the watcher, on the same machine's clock,
so it includes the whole path: outbox → relay → Kafka → the replica's feed → hub → stream →
the watcher's channel. CPU is the replica's (user + system) over the writing window divided by
the messages its streams delivered then (and, apart, the same beyond its idle CPU); the idle
figure is its CPU with the N watches open and nothing written. The replica's CPU includes the
watches re-opened on fresh orders (N / S per DELIVERED) and its feed's own work on every event.

The orders are created before the watches open, then the measurement waits (60 s at most) for
the machine to be quiet: their projection into the local DynamoDB endpoint takes seconds of CPU.
The benchmark's own event loop is watched too (`client_stall_max_ms`): its watchers share it
with the writer, so a stall there is lag the replica did not cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import grpc
from uoom.orders.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from uoom_orders_bench import load
from uoom_orders_bench.cpu import cpu_seconds
from uoom_orders_bench.machine import LoopStalls, machine_quiet
from uoom_orders_bench.stats import latency_figures
from uoom_orders_bench.targets import order_stub
from uoom_orders_bench.workload import CALL_TIMEOUT_S, NEXT_STATUS, seed_orders

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

# Streams per channel (one HTTP/2 connection each) on the watchers' side.
_STREAMS_PER_CHANNEL = 1000
# Watches opened at once while setting up (their first reads hit the replica together).
_OPENING_AT_ONCE = 200
_READY_TIMEOUT_S = 180.0
_DRAIN_S = 5.0
_IDLE_WINDOW_S = 2.0
_NS_PER_S = 1_000_000_000
STEPS_PER_ORDER = 5  # PENDING → … → DELIVERED


@dataclass
class _Slot:
    order_id: str
    status: order_pb2.OrderStatus.ValueType
    version: int
    watchers: int
    generation: int = 0
    ready: int = 0
    busy: bool = False
    moved: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def writable(self) -> bool:
        return not self.busy and self.ready >= self.watchers and self.status in NEXT_STATUS

    def next_order(self, order: order_pb2.OrderSummary) -> None:
        self.order_id, self.status, self.version = order.order_id, order.status, order.version
        self.generation += 1
        self.ready = 0
        moved, self.moved = self.moved, asyncio.Event()
        moved.set()


class OrderPool:
    """Fresh orders for the slots, created through the service, kept across measurements."""

    def __init__(self) -> None:
        self._fresh: list[order_pb2.OrderSummary] = []

    async def fill(self, stub: OrderServiceAsyncStub, count: int) -> None:
        if len(self._fresh) < count:
            self._fresh += await seed_orders(stub, count - len(self._fresh))

    def take(self) -> order_pb2.OrderSummary | None:
        return self._fresh.pop() if self._fresh else None


@dataclass
class _Received:
    lags_ns: list[int] = field(default_factory=list)
    first_messages: int = 0
    stream_errors: int = 0
    measuring: bool = False


def _lag_ns(summary: order_pb2.OrderSummary) -> int:
    stamp = summary.updated_at
    return time.time_ns() - (stamp.seconds * _NS_PER_S + stamp.nanos)


async def _watcher(stub: OrderServiceAsyncStub, slot: _Slot, received: _Received) -> None:
    """Watches the slot's order, then its next one, until cancelled."""
    while True:
        generation, moved = slot.generation, slot.moved
        call = stub.WatchOrderStatus(
            order_service_pb2.WatchOrderStatusRequest(order_id=slot.order_id)
        )
        first = True
        try:
            async for message in call:
                if first:
                    first = False
                    received.first_messages += 1
                    if slot.generation == generation:
                        slot.ready += 1
                elif received.measuring:
                    received.lags_ns.append(_lag_ns(message.order))
        except grpc.aio.AioRpcError:
            received.stream_errors += 1
            await asyncio.sleep(0.1)
            continue
        finally:
            call.cancel()
        await moved.wait()  # the slot's order was delivered: on to its next one


async def _until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Polls `condition` until it holds (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll_s)
    return True


def _answered(received: _Received, count: int) -> bool:
    return received.first_messages >= count


@contextlib.asynccontextmanager
async def _fleet(
    address: str, slots: Sequence[_Slot], received: _Received
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Every slot's watchers, running on their own channels; cancelled and closed on exit."""
    total = sum(slot.watchers for slot in slots)
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, math.ceil(total / _STREAMS_PER_CHANNEL)))
    ]
    stubs: list[OrderServiceAsyncStub] = [
        order_service_pb2_grpc.OrderServiceStub(c) for c in channels
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        opened = 0
        for slot in slots:
            for _ in range(slot.watchers):
                stub = stubs[opened % len(stubs)]
                tasks.append(asyncio.create_task(_watcher(stub, slot, received)))
                opened += 1
                if opened % _OPENING_AT_ONCE == 0:
                    # No more than _OPENING_AT_ONCE watches awaiting their first message.
                    await _until(
                        partial(_answered, received, opened - _OPENING_AT_ONCE // 2),
                        _READY_TIMEOUT_S,
                        0.01,
                    )
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()


class _Writer:
    """The open loop's operation: one lifecycle step of a random writable slot."""

    def __init__(
        self, stub: OrderServiceAsyncStub, slots: Sequence[_Slot], pool: OrderPool, seed: int
    ) -> None:
        self._stub = stub
        self._slots = slots
        self._pool = pool
        self._rng = random.Random(seed)
        self.pushes_expected = 0
        self.no_slot = 0

    async def __call__(self, index: int) -> str:
        writable = [slot for slot in self._slots if slot.writable]
        if not writable:
            self.no_slot += 1
            return "skipped"
        slot = self._rng.choice(writable)
        slot.busy = True
        try:
            reply = await self._stub.UpdateOrderStatus(
                order_service_pb2.UpdateOrderStatusRequest(
                    request_id=str(uuid.uuid4()),
                    order_id=slot.order_id,
                    status=NEXT_STATUS[slot.status],
                    expected_version=slot.version,
                ),
                timeout=CALL_TIMEOUT_S,
            )
        finally:
            slot.busy = False
        self.pushes_expected += slot.watchers
        slot.status, slot.version = reply.order.status, reply.order.version
        if slot.status not in NEXT_STATUS:
            fresh = self._pool.take()
            if fresh is not None:
                slot.next_order(fresh)
        return "write"


async def measure_watch(
    writer_address: str,
    replica_address: str,
    replica_pid: int | None,
    pool: OrderPool,
    *,
    watchers: int,
    max_orders: int,
    rate: float,
    duration_s: float,
    seed: int,
) -> dict[str, float]:
    """One measurement with `watchers` watches open on the replica; see the module's doc."""
    slot_count = max(1, min(watchers, max_orders))
    rotations = math.ceil(rate * duration_s / STEPS_PER_ORDER) + slot_count // 4 + 4
    async with order_stub(writer_address) as stub:
        await pool.fill(stub, slot_count + rotations)
        settled_s = await machine_quiet()
        slots = []
        for n in range(slot_count):
            order = pool.take()
            assert order is not None
            share = watchers // slot_count + (1 if n < watchers % slot_count else 0)
            slots.append(_Slot(order.order_id, order.status, order.version, share))
        received = _Received()
        opening = time.monotonic()
        async with _fleet(replica_address, slots, received):
            ready = await _until(
                lambda: all(s.ready >= s.watchers for s in slots), _READY_TIMEOUT_S
            )
            opened_s = time.monotonic() - opening
            idle_cpu = math.nan
            if replica_pid is not None:
                before = cpu_seconds(replica_pid)
                await asyncio.sleep(_IDLE_WINDOW_S)
                after = cpu_seconds(replica_pid)
                if before is not None and after is not None:
                    idle_cpu = 100 * (after - before) / _IDLE_WINDOW_S
            writer = _Writer(stub, slots, pool, seed)
            cpu_before = cpu_seconds(replica_pid) if replica_pid is not None else None
            received.measuring = True
            started_ns = time.perf_counter_ns()
            with LoopStalls() as stalls:
                result = await load.open_loop(writer, rate, duration_s)
                await _until(
                    lambda: len(received.lags_ns) >= writer.pushes_expected, _DRAIN_S, 0.01
                )
            window_s = (time.perf_counter_ns() - started_ns) / _NS_PER_S
            cpu_after = cpu_seconds(replica_pid) if replica_pid is not None else None
            received.measuring = False
    pushed = len(received.lags_ns)
    cpu_s = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else math.nan
    writes = len(result.latencies_ns.get("write", []))
    return result.figures() | {
        "watchers": watchers,
        "slots": slot_count,
        "all_watching": 1.0 if ready else 0.0,
        "open_s": opened_s,
        "settled_s": settled_s,
        "writes": writes,
        "writes_per_s": writes / result.elapsed_s if result.elapsed_s else math.nan,
        "no_slot": writer.no_slot,
        "late_starts": result.late_starts,
        "pushes_expected": writer.pushes_expected,
        "pushed": pushed,
        "not_received": max(0, writer.pushes_expected - pushed),
        "messages_per_s": pushed / window_s if window_s else math.nan,
        "stream_errors": received.stream_errors,
        "client_stall_max_ms": stalls.worst_ns / 1e6,
        "replica_cpu_pct": 100 * cpu_s / window_s if window_s else math.nan,
        "idle_cpu_pct": idle_cpu,
        "cpu_us_per_message": 1e6 * cpu_s / pushed if pushed else math.nan,
        # What the messages cost beyond the replica's idle work (its feed, keepalives).
        "cpu_us_per_message_above_idle": (
            1e6 * (cpu_s - idle_cpu / 100 * window_s) / pushed if pushed else math.nan
        ),
        **latency_figures(received.lags_ns, "push_lag_"),
    }
