"""What the benchmark asks of a server: seeded orders, read requests, and a mixed workload."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from uoom.orders.v1 import order_pb2, order_service_pb2

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

SERVED_BY = "x-served-by"
CALL_TIMEOUT_S = 10.0
# Ids per BatchGetOrderStatus when reading the seeded orders back (the RPC's maximum).
_BATCH_LIMIT = 100

# The happy path of the lifecycle: each UpdateOrderStatus in the mixed workload takes one step.
LIFECYCLE = (
    order_pb2.ORDER_STATUS_PENDING,
    order_pb2.ORDER_STATUS_CONFIRMED,
    order_pb2.ORDER_STATUS_PREPARING,
    order_pb2.ORDER_STATUS_READY_FOR_PICKUP,
    order_pb2.ORDER_STATUS_OUT_FOR_DELIVERY,
    order_pb2.ORDER_STATUS_DELIVERED,
)
NEXT_STATUS = dict(itertools.pairwise(LIFECYCLE))
"""Each lifecycle status to the next one on the happy path (DELIVERED has none)."""

_PIZZA = order_pb2.OrderItem(
    item_id="pizza-margherita",
    name="Pizza Margherita",
    quantity=1,
    unit_price=order_pb2.Money(currency_code="USD", amount_minor=1599),
)
_NEW_YORK = order_pb2.DeliveryLocation(
    latitude=40.7128,
    longitude=-74.006,
    address="123 Main St, New York, NY 10001",
    city="New York",
    postal_code="10001",
)


def create_request() -> order_service_pb2.CreateOrderRequest:
    """A valid CreateOrder request with fresh ids (a fresh request_id: never a replay)."""
    return order_service_pb2.CreateOrderRequest(
        request_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        restaurant_id=str(uuid.uuid4()),
        channel_id="default-channel",
        items=[_PIZZA],
        delivery_location=_NEW_YORK,
    )


async def seed_orders(
    stub: OrderServiceAsyncStub, count: int, concurrency: int = 16
) -> list[order_pb2.OrderSummary]:
    """Creates `count` orders through CreateOrder; returns their status records as served."""
    order_ids: list[str] = []
    queue = iter(range(count))

    async def creator() -> None:
        for _ in queue:
            response = await stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)
            order_ids.append(response.order.order_id)

    await asyncio.gather(*(creator() for _ in range(max(1, min(concurrency, count)))))
    summaries: list[order_pb2.OrderSummary] = []
    for start in range(0, len(order_ids), _BATCH_LIMIT):
        chunk = order_ids[start : start + _BATCH_LIMIT]
        batch = await stub.BatchGetOrderStatus(
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=chunk), timeout=CALL_TIMEOUT_S
        )
        if batch.missing_order_ids:
            raise RuntimeError(f"seeded orders not readable: {list(batch.missing_order_ids)[:3]}")
        summaries.extend(batch.orders)
    return summaries


def get_requests(
    order_ids: Sequence[str], rng: random.Random, count: int
) -> list[order_service_pb2.GetOrderStatusRequest]:
    """`count` GetOrderStatus requests for ids drawn at random from `order_ids`."""
    return [
        order_service_pb2.GetOrderStatusRequest(order_id=rng.choice(order_ids))
        for _ in range(count)
    ]


def batch_requests(
    order_ids: Sequence[str], rng: random.Random, count: int, size: int
) -> list[order_service_pb2.BatchGetOrderStatusRequest]:
    """`count` BatchGetOrderStatus requests of `size` distinct ids drawn from `order_ids`."""
    size = min(size, len(order_ids))
    return [
        order_service_pb2.BatchGetOrderStatusRequest(order_ids=rng.sample(order_ids, size))
        for _ in range(count)
    ]


class OrderBook:
    """The benchmark's orders with their current status and version, across rounds.

    The mixed workload moves orders one lifecycle step at a time with `expected_version`, so
    every update is legal; an order being updated is not handed out again until it answers.
    """

    def __init__(self, summaries: Sequence[order_pb2.OrderSummary]) -> None:
        self.order_ids: list[str] = [s.order_id for s in summaries]
        self._state: dict[str, tuple[order_pb2.OrderStatus.ValueType, int]] = {
            s.order_id: (s.status, s.version) for s in summaries
        }
        self._movable: list[str] = [i for i, (st, _) in self._state.items() if st in NEXT_STATUS]
        self._busy: set[str] = set()

    def add(self, order: order_pb2.Order) -> None:
        """A newly created order: readable from now on, and movable."""
        self.order_ids.append(order.order_id)
        self._state[order.order_id] = (order.status, order.version)
        if order.status in NEXT_STATUS:
            self._movable.append(order.order_id)

    def next_move(self, rng: random.Random) -> order_service_pb2.UpdateOrderStatusRequest | None:
        """An update moving a random idle order one step on, or None when none can move."""
        for _ in range(8):
            if not self._movable:
                return None
            position = rng.randrange(len(self._movable))
            order_id = self._movable[position]
            if order_id in self._busy:
                continue
            status, version = self._state[order_id]
            self._busy.add(order_id)
            return order_service_pb2.UpdateOrderStatusRequest(
                request_id=str(uuid.uuid4()),
                order_id=order_id,
                status=NEXT_STATUS[status],
                expected_version=version,
            )
        return None

    def moved(self, order_id: str, order: order_pb2.Order | None) -> None:
        """Records an update's outcome (None: it failed, so the order is left alone from now)."""
        self._busy.discard(order_id)
        if order is not None:
            self._state[order_id] = (order.status, order.version)
        if order is None or order.status not in NEXT_STATUS:
            self._movable.remove(order_id)


class MixedWorkload:
    """An operation for the open loop: mostly GetOrderStatus, a share of writes.

    Of the writes, every `create_every`-th is a CreateOrder (the new order joins the read set)
    and the others UpdateOrderStatus one lifecycle step. Reads record the tier that served them,
    from the `x-served-by` trailing metadata.
    """

    def __init__(
        self,
        stub: OrderServiceAsyncStub,
        book: OrderBook,
        rng: random.Random,
        write_share: float,
        create_every: int = 5,
    ) -> None:
        self._stub = stub
        self._book = book
        self._rng = rng
        self._write_share = write_share
        self._create_every = create_every
        self._writes = 0
        self.served_by: Counter[str] = Counter()
        self.write_kinds: Counter[str] = Counter()

    async def __call__(self, index: int) -> str:
        if self._rng.random() < self._write_share:
            await self._write()
            return "write"
        request = order_service_pb2.GetOrderStatusRequest(
            order_id=self._rng.choice(self._book.order_ids)
        )
        call = self._stub.GetOrderStatus(request, timeout=CALL_TIMEOUT_S)
        await call
        metadata = await call.trailing_metadata()
        tier = next((str(v) for k, v in (metadata or ()) if k == SERVED_BY), "unknown")
        self.served_by[tier] += 1
        return "read"

    async def _write(self) -> None:
        self._writes += 1
        update = None
        if self._writes % self._create_every != 0:
            update = self._book.next_move(self._rng)
        if update is None:
            self.write_kinds["create"] += 1
            created = await self._stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)
            self._book.add(created.order)
            return
        self.write_kinds["update"] += 1
        try:
            response = await self._stub.UpdateOrderStatus(update, timeout=CALL_TIMEOUT_S)
        except BaseException:
            self._book.moved(update.order_id, None)
            raise
        self._book.moved(update.order_id, response.order)
