"""The load: writers moving orders through their lifecycle, and three kinds of readers.

- Writers go through the client package (`OrderServiceClient`, round robin over both
  replicas), at a fixed rate whatever the answers take (open loop). A write whose outcome is
  unknown (UNAVAILABLE, DEADLINE_EXCEEDED...) is sent again later with the same request_id,
  as a careful caller would: the server answers a repeat with the first response (AIP-155).
- Raw readers call one replica each through the generated stub, never with min_version: they
  measure what a replica itself guarantees (same-replica monotonic reads) and, across
  replicas, what a caller without session guarantees would see.
- Client readers call through `OrderServiceClient` objects, each over both replicas round
  robin, with nothing but the public API: whatever session guarantees the package gives its
  callers, they get.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from uoom.orders.v1 import order_service_pb2_grpc

from uoom_orders_bench.workload import NEXT_STATUS
from uoom_orders_chaos.cluster import RoleProcess
from uoom_orders_chaos.observations import MonotonicReads, Regression, Tally, WriteLedger
from uoom_orders_client import (
    NotFoundError,
    OrderServiceClient,
    OrderServiceError,
    order_pb2,
    order_service_pb2,
)

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

WRITE_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 2.0
MAX_WRITES_IN_FLIGHT = 64
MAX_READS_IN_FLIGHT = 128
CLIENT_READERS = 4
"""Client objects the client readers use in turn (each one is one caller's session)."""
RAW_READ_SHARE = 2 / 3
"""Of the read calls, the share made by raw readers; the rest go through the client package."""
BATCH_SHARE = 0.25
"""Of the read calls, the share that are BatchGetOrderStatus (of BATCH_SIZE recent orders)."""
BATCH_SIZE = 10
CREATE_EVERY = 6
"""One write in six creates an order: the other five move orders PENDING → ... → DELIVERED."""
SERVED_BY = "x-served-by"

# Reconnect quickly to a replica that comes back (gRPC's default first backoff is 1 s).
CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
ROUND_ROBIN = (("grpc.lb_policy_name", "round_robin"),)

# A write whose outcome is unknown: sent again later with the same request_id.
_RETRY_LATER = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

_PIZZA = order_pb2.OrderItem(
    item_id="pizza-margherita",
    name="Pizza Margherita",
    quantity=2,
    unit_price=order_pb2.Money(currency_code="USD", amount_minor=1599),
)
_LOCATION = order_pb2.DeliveryLocation(
    latitude=40.7128,
    longitude=-74.006,
    address="123 Main St",
    city="New York",
    postal_code="10001",
)


def round_robin_target(replicas: Sequence[RoleProcess]) -> str:
    """One gRPC target naming every replica, for a round-robin channel."""
    return "ipv4:" + ",".join(replica.address for replica in replicas)


def error_label(error: OrderServiceError) -> str:
    """CODE or CODE/REASON, e.g. UNAVAILABLE/STORE_UNAVAILABLE."""
    return f"{error.code.name}/{error.reason}" if error.reason else error.code.name


@dataclass
class _TrackedOrder:
    order_id: str
    status: order_pb2.OrderStatus.ValueType
    version: int
    pending: order_service_pb2.UpdateOrderStatusRequest | None = None
    """A move whose outcome is unknown: sent again as it is."""
    retired: bool = False
    """Refused for a reason a retry cannot change: no more writes to it."""


class OrderBook:
    """The writers' orders: which can move, and the writes waiting to be sent again."""

    def __init__(self) -> None:
        self._idle: dict[str, _TrackedOrder] = {}
        self.pending_creates: list[order_service_pb2.CreateOrderRequest] = []
        self.retired: list[str] = []

    def add(self, order: order_pb2.Order) -> None:
        self._idle[order.order_id] = _TrackedOrder(order.order_id, order.status, order.version)

    def take(self, rng: random.Random) -> _TrackedOrder | None:
        """An idle order that can still move, now busy; None when there is none."""
        if not self._idle:
            return None
        order_id = rng.choice(list(self._idle))
        return self._idle.pop(order_id)

    def release(self, order: _TrackedOrder) -> None:
        if order.retired:
            self.retired.append(order.order_id)
        elif order.status in NEXT_STATUS:
            self._idle[order.order_id] = order


async def _open_loop(rate: float, fire: Callable[[], None]) -> None:
    """Calls `fire` `rate` times a second on a fixed schedule; skips ahead when far behind."""
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    next_at = loop.time()
    while True:
        next_at += interval
        delay = next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:  # the event loop was starved: do not fire a burst to catch up
            next_at = loop.time()
        fire()


class LoadDriver:
    """Runs the writers and readers as tasks of the running loop; an async context manager.

    Figures go to `tally`, which the runner replaces for each fault. `pause_writes` and
    `resume_writes` let a measurement see PostgreSQL hold still.
    """

    def __init__(
        self,
        replicas: Sequence[RoleProcess],
        ledger: WriteLedger,
        *,
        write_rate: float,
        read_rate: float,
        seed: int | None = None,
    ) -> None:
        self._replicas = list(replicas)
        self._ledger = ledger
        self._write_rate = write_rate
        self._read_rate = read_rate
        self._rng = random.Random(seed)
        self._book = OrderBook()
        self.tally = Tally()
        self._writes_enabled = True
        self.writes_in_flight = 0
        self._reads_in_flight = 0
        self._write_count = 0
        self._read_count = 0
        self._same_replica = MonotonicReads()
        self._cross_replica = MonotonicReads()
        self._client_reads = MonotonicReads()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._writer: OrderServiceClient | None = None
        self._readers: list[OrderServiceClient] = []
        self._channels: list[grpc.aio.Channel] = []
        self._stubs: list[OrderServiceAsyncStub] = []

    @property
    def retired_orders(self) -> list[str]:
        """Orders no longer written because a write was refused (see the write errors)."""
        return list(self._book.retired)

    async def __aenter__(self) -> LoadDriver:
        target = round_robin_target(self._replicas)
        options = CHANNEL_OPTIONS + ROUND_ROBIN
        self._writer = OrderServiceClient(target, default_timeout=WRITE_TIMEOUT_S, options=options)
        self._readers = [
            OrderServiceClient(target, default_timeout=READ_TIMEOUT_S, options=options)
            for _ in range(CLIENT_READERS)
        ]
        for replica in self._replicas:
            # A channel of its own per replica (no subchannel shared with the clients).
            channel = grpc.aio.insecure_channel(
                replica.address,
                options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)],
            )
            self._channels.append(channel)
            self._stubs.append(order_service_pb2_grpc.OrderServiceStub(channel))
        self._loops = [
            asyncio.create_task(_open_loop(self._write_rate, self._fire_write), name="writes"),
            asyncio.create_task(_open_loop(self._read_rate, self._fire_read), name="reads"),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        clients = [c for c in [self._writer, *self._readers] if c is not None]
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self._channels), return_exceptions=True)

    async def raw_channels_ready(self, timeout_s: float) -> list[str]:
        """Waits until every raw reader's channel is connected to its replica; returns the
        replicas whose channel is not after `timeout_s`.

        A channel to a replica that was down retries on its own schedule (up to
        CHANNEL_OPTIONS' 1 s) after the replica is back: the calls meanwhile fail fast with
        UNAVAILABLE, and without this wait some would count against the next fault.
        """

        async def ready(channel: grpc.aio.Channel) -> bool:
            try:
                await asyncio.wait_for(channel.channel_ready(), timeout_s)
            except TimeoutError:
                return False
            return True

        connected = await asyncio.gather(*(ready(c) for c in self._channels))
        return [r.name for r, ok in zip(self._replicas, connected, strict=True) if not ok]

    def pause_writes(self) -> None:
        """No new writes from now on (those in flight finish)."""
        self._writes_enabled = False

    def resume_writes(self) -> None:
        self._writes_enabled = True

    async def writes_drained(self, timeout_s: float = WRITE_TIMEOUT_S * 2) -> bool:
        """Waits until no write is in flight; False if some still are after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.writes_in_flight:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- writes -------------------------------------------------------------------------

    def _fire_write(self) -> None:
        if not self._writes_enabled:
            return
        if self.writes_in_flight >= MAX_WRITES_IN_FLIGHT:
            self.tally.writes_not_sent += 1
            return
        self._write_count += 1
        order = None
        if self._write_count % CREATE_EVERY != 0:
            order = self._book.take(self._rng)
        self.writes_in_flight += 1
        self._spawn(self._create() if order is None else self._move(order))

    async def _create(self) -> None:
        assert self._writer is not None
        tally = self.tally
        request = self._book.pending_creates.pop() if self._book.pending_creates else None
        if request is None:
            request = order_service_pb2.CreateOrderRequest(
                request_id=str(uuid.uuid4()),
                customer_id=str(uuid.uuid4()),
                restaurant_id=str(uuid.uuid4()),
                channel_id="chaos",
                items=[_PIZZA],
                delivery_location=_LOCATION,
            )
        try:
            reply = await self._writer.create_order(request)
        except OrderServiceError as error:
            tally.write_errors[error_label(error)] += 1
            if error.code in _RETRY_LATER:
                self._book.pending_creates.append(request)
            return
        finally:
            self.writes_in_flight -= 1
        order = reply.order
        self._ledger.acknowledge(order.order_id, order.version, order.status)
        self._book.add(order)
        tally.writes_acknowledged += 1

    async def _move(self, order: _TrackedOrder) -> None:
        assert self._writer is not None
        tally = self.tally
        request = order.pending or order_service_pb2.UpdateOrderStatusRequest(
            request_id=str(uuid.uuid4()),
            order_id=order.order_id,
            status=NEXT_STATUS[order.status],
            expected_version=order.version,
        )
        try:
            reply = await self._writer.update_order_status(request)
        except OrderServiceError as error:
            tally.write_errors[error_label(error)] += 1
            if error.code in _RETRY_LATER:
                order.pending = request
            else:
                order.retired = True
            return
        else:
            order.pending = None
            order.status, order.version = reply.order.status, reply.order.version
            self._ledger.acknowledge(order.order_id, reply.order.version, reply.order.status)
            tally.writes_acknowledged += 1
        finally:
            self.writes_in_flight -= 1
            self._book.release(order)

    # --- reads --------------------------------------------------------------------------

    def _fire_read(self) -> None:
        if self._reads_in_flight >= MAX_READS_IN_FLIGHT:
            self.tally.reads_not_sent += 1
            return
        batch = self._rng.random() < BATCH_SHARE
        order_ids = self._ledger.recent_orders(self._rng, BATCH_SIZE if batch else 1)
        if not order_ids:
            return
        self._read_count += 1
        self._reads_in_flight += 1
        if self._rng.random() < RAW_READ_SHARE:
            index = self._read_count % len(self._replicas)
            self._spawn(self._raw_read(index, order_ids, batch))
        else:
            index = self._read_count % len(self._readers)
            self._spawn(self._client_read(index, order_ids, batch))

    async def _raw_read(self, index: int, order_ids: list[str], batch: bool) -> None:
        tally = self.tally
        replica = self._replicas[index]
        observer = (replica.name, replica.incarnation)
        floors = {
            oid: (
                self._same_replica.floor(observer, oid),
                self._cross_replica.floor(None, oid),
            )
            for oid in order_ids
        }
        stub = self._stubs[index]
        versions: dict[str, int]
        try:
            if batch:
                batch_call = stub.BatchGetOrderStatus(
                    order_service_pb2.BatchGetOrderStatusRequest(order_ids=order_ids),
                    timeout=READ_TIMEOUT_S,
                )
                batch_reply = await batch_call
                versions = dict.fromkeys(order_ids, 0)
                versions.update({o.order_id: o.version for o in batch_reply.orders})
                metadata = await batch_call.trailing_metadata()
            else:
                get_call = stub.GetOrderStatus(
                    order_service_pb2.GetOrderStatusRequest(order_id=order_ids[0]),
                    timeout=READ_TIMEOUT_S,
                )
                get_reply = await get_call
                versions = {order_ids[0]: get_reply.order.version}
                metadata = await get_call.trailing_metadata()
        except grpc.aio.AioRpcError as error:
            tally.raw_read_errors[error.code().name] += 1
            if error.code() != grpc.StatusCode.NOT_FOUND:
                return
            versions = {order_ids[0]: 0}
            metadata = None
        finally:
            self._reads_in_flight -= 1
        tally.reads += 1
        tier = next((str(v) for k, v in (metadata or ()) if k == SERVED_BY), "not-found")
        where = f"{replica.name}#{replica.incarnation} via {tier}"
        for order_id, version in versions.items():
            same_floor, cross_floor = floors[order_id]
            if self._same_replica.answered(observer, order_id, same_floor, version):
                tally.regression(
                    "same-replica", Regression(order_id, same_floor, version, where), tier
                )
            if self._cross_replica.answered(None, order_id, cross_floor, version):
                tally.regression("cross-replica", Regression(order_id, cross_floor, version, where))

    async def _client_read(self, index: int, order_ids: list[str], batch: bool) -> None:
        tally = self.tally
        client = self._readers[index]
        observer = ("client", index)
        floors = {oid: self._client_reads.floor(observer, oid) for oid in order_ids}
        versions: dict[str, int]
        try:
            if batch:
                batch_reply = await client.batch_get_order_status(
                    order_service_pb2.BatchGetOrderStatusRequest(order_ids=order_ids)
                )
                versions = dict.fromkeys(order_ids, 0)
                versions.update({o.order_id: o.version for o in batch_reply.orders})
            else:
                get_reply = await client.get_order_status(
                    order_service_pb2.GetOrderStatusRequest(order_id=order_ids[0])
                )
                versions = {order_ids[0]: get_reply.order.version}
        except NotFoundError as error:
            tally.read_errors[error_label(error)] += 1
            versions = {order_ids[0]: 0}
        except OrderServiceError as error:
            tally.read_errors[error_label(error)] += 1
            return
        finally:
            self._reads_in_flight -= 1
        tally.reads += 1
        for order_id, version in versions.items():
            floor = floors[order_id]
            if self._client_reads.answered(observer, order_id, floor, version):
                tally.regression("client", Regression(order_id, floor, version, f"client {index}"))
