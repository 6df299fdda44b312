"""The two watch streams over an in-memory hub and read path: what they send, in which order,
with which counts, and when they end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeAlias, TypeVar
from uuid import UUID

import pytest
from uoom.orders.v1 import order_events_pb2, order_pb2
from uoom.orders.v1 import order_service_pb2 as pb

from tests.support.watch_changes import RESTAURANT, event, summary
from uoom_orders.domain.errors import InvalidInput, OrderNotFound
from uoom_orders.domain.order import OrderStatus
from uoom_orders.read.page_token import PageTokenCodec
from uoom_orders.read.ports import ListQuery, ListScope, PageCursor
from uoom_orders.watch.board_stream import stream_board
from uoom_orders.watch.hub import WatchHub, WatchLimits
from uoom_orders.watch.order_stream import stream_order_status

S = order_pb2
A, B = str(uuid.uuid4()), str(uuid.uuid4())


def at(record: order_pb2.OrderSummary, when: datetime) -> order_pb2.OrderSummary:
    record.updated_at.FromDatetime(when)
    return record


class Reads:
    """The read path: one answer per order, and the restaurant's orders for lists."""

    def __init__(self, *orders: order_pb2.OrderSummary) -> None:
        self.orders = {o.order_id: o for o in orders}
        self.min_versions: list[int] = []

    async def get_summary(
        self, order_id: UUID, min_version: int
    ) -> tuple[order_pb2.OrderSummary | None, str]:
        self.min_versions.append(min_version)
        return self.orders.get(str(order_id)), "postgres"

    async def list_from_source(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        from uoom_orders import wire

        rows = [
            o
            for o in self.orders.values()
            if query.status is None or o.status == wire.status_to_proto(query.status)
        ]
        rows.sort(key=lambda o: (o.updated_at.ToDatetime(), o.order_id), reverse=True)
        if query.after is not None:
            after = (query.after.updated_at.replace(tzinfo=None), str(query.after.order_id))
            rows = [o for o in rows if (o.updated_at.ToDatetime(), o.order_id) < after]
        return rows[: query.limit]


M = TypeVar("M", pb.WatchOrderStatusResponse, pb.WatchRestaurantOrdersResponse)
OrderMessages: TypeAlias = pb.WatchOrderStatusResponse
BoardMessages: TypeAlias = pb.WatchRestaurantOrdersResponse


class Stream(Generic[M]):
    """A running stream and what it sent so far."""

    def __init__(self) -> None:
        self.sent: list[M] = []
        self._arrived = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: M) -> None:
        async with self._arrived:
            self.sent.append(message)
            self._arrived.notify_all()

    async def wait_for(self, count: int) -> list[M]:
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: len(self.sent) >= count)
        return self.sent

    def start(self, run: Callable[[Stream[M]], Awaitable[None]]) -> Stream[M]:
        async def running() -> None:
            await run(self)

        self.task = asyncio.create_task(running())
        return self


@pytest.fixture
async def hub() -> AsyncIterator[WatchHub]:
    async with WatchHub(WatchLimits(queue_limit=8), lambda: True) as running:
        yield running


def statuses(sent: list[OrderMessages]) -> list[tuple[int, int]]:
    return [(m.order.version, m.skipped_versions) for m in sent]


async def test_the_current_status_first_then_every_newer_version_until_terminal(
    hub: WatchHub,
) -> None:
    reads = Reads(summary(A, 2))
    stream = Stream[OrderMessages]().start(
        lambda s: stream_order_status(UUID(A), 0, hub=hub, reads=reads, send=s.send)
    )
    await stream.wait_for(1)
    for version in (2, 3, 3, 1, 4):  # a duplicate, a late one, a repeat of the current
        hub.publish(*event(A, version))
    hub.publish(*event(A, 6))  # 5 coalesced away upstream: counted as skipped
    assert stream.task is not None
    await asyncio.wait_for(stream.task, timeout=5)  # ends by itself after DELIVERED
    assert statuses(stream.sent) == [(2, 0), (3, 0), (4, 0), (6, 1)]
    assert reads.min_versions == [0]
    assert len(hub) == 0


async def test_resuming_after_a_version_starts_with_a_newer_one(hub: WatchHub) -> None:
    reads = Reads(summary(A, 4))
    stream = Stream[OrderMessages]().start(
        lambda s: stream_order_status(UUID(A), 2, hub=hub, reads=reads, send=s.send)
    )
    assert statuses(await stream.wait_for(1)) == [(4, 1)]
    assert reads.min_versions == [3]  # a tier holding only version 2 is passed over
    assert stream.task is not None
    stream.task.cancel()


async def test_resuming_with_nothing_newer_waits_for_the_next_change(hub: WatchHub) -> None:
    reads = Reads(summary(A, 3))
    stream = Stream[OrderMessages]().start(
        lambda s: stream_order_status(UUID(A), 3, hub=hub, reads=reads, send=s.send)
    )
    await asyncio.sleep(0.05)
    assert stream.sent == []
    hub.publish(*event(A, 4))
    assert statuses(await stream.wait_for(1)) == [(4, 0)]
    assert stream.task is not None
    stream.task.cancel()


async def test_an_order_already_terminal_at_the_resume_point_ends_at_once(hub: WatchHub) -> None:
    reads = Reads(summary(A, 6))
    await stream_order_status(UUID(A), 6, hub=hub, reads=reads, send=Stream[OrderMessages]().send)


async def test_an_unknown_or_removed_order_is_not_found(hub: WatchHub) -> None:
    with pytest.raises(OrderNotFound):
        await stream_order_status(
            UUID(A), 0, hub=hub, reads=Reads(), send=Stream[OrderMessages]().send
        )
    reads = Reads(summary(A, 2))
    stream = Stream[OrderMessages]().start(
        lambda s: stream_order_status(UUID(A), 0, hub=hub, reads=reads, send=s.send)
    )
    await stream.wait_for(1)
    hub.publish(*event(A, 0, order_events_pb2.ORDER_EVENT_TYPE_REMOVED))
    assert stream.task is not None
    with pytest.raises(OrderNotFound):
        await asyncio.wait_for(stream.task, timeout=5)


async def test_a_correction_is_sent_whatever_its_version(hub: WatchHub) -> None:
    reads = Reads(summary(A, 4))
    stream = Stream[OrderMessages]().start(
        lambda s: stream_order_status(UUID(A), 0, hub=hub, reads=reads, send=s.send)
    )
    await stream.wait_for(1)
    hub.publish(*event(A, 3, order_events_pb2.ORDER_EVENT_TYPE_CORRECTED))
    hub.publish(*event(A, 4))  # the version number the lost commit had, reused
    sent = await stream.wait_for(3)
    assert [(m.order.version, m.corrected) for m in sent] == [
        (4, False),
        (3, True),
        (4, False),
    ]
    assert stream.task is not None
    stream.task.cancel()


# --- the restaurant board ------------------------------------------------------------------
def board_query(status: OrderStatus | None = None) -> ListQuery:
    return ListQuery(ListScope.RESTAURANT, UUID(RESTAURANT), status, 100, None)


CODEC = PageTokenCodec(b"watch-stream-test-key-0123456789")


async def test_a_board_starts_with_its_open_orders_oldest_first_then_changes(
    hub: WatchHub,
) -> None:
    now = datetime.now(UTC)
    delivered = at(summary(str(uuid.uuid4()), 6), now - timedelta(minutes=3))
    reads = Reads(
        at(summary(A, 3), now - timedelta(minutes=1)),
        at(summary(B, 1), now - timedelta(minutes=2)),
        delivered,
    )
    stream = Stream[BoardMessages]().start(
        lambda s: stream_board(board_query(), "", hub=hub, reads=reads, tokens=CODEC, send=s.send)
    )
    sent = await stream.wait_for(3)
    assert [m.order.order_id for m in sent[:2]] == [B, A]
    assert [m.resume_token for m in sent[:2]] == ["", ""]
    caught_up = sent[2]
    assert caught_up.caught_up
    assert not caught_up.HasField("order")
    assert caught_up.resume_token
    hub.publish(*event(A, 3))  # on the board already
    hub.publish(*event(A, 5))
    [change] = (await stream.wait_for(4))[3:]
    assert (change.order.version, change.skipped_versions) == (5, 1)
    assert change.resume_token
    assert stream.task is not None
    stream.task.cancel()


async def test_a_filtered_board_shows_orders_leaving_its_status(hub: WatchHub) -> None:
    query = board_query(OrderStatus.PREPARING)
    reads = Reads(summary(A, 3))
    stream = Stream[BoardMessages]().start(
        lambda s: stream_board(query, "", hub=hub, reads=reads, tokens=CODEC, send=s.send)
    )
    await stream.wait_for(2)
    hub.publish(*event(B, 2))  # CONFIRMED: not this board's business
    hub.publish(*event(A, 4))  # PREPARING → READY_FOR_PICKUP: leaves the board
    [left] = (await stream.wait_for(3))[2:]
    assert left.order.order_id == A
    assert left.order.status == S.ORDER_STATUS_READY_FOR_PICKUP
    await asyncio.sleep(0.02)
    assert len(stream.sent) == 3
    assert stream.task is not None
    stream.task.cancel()


async def test_a_resumed_board_starts_with_every_order_changed_since_its_token(
    hub: WatchHub,
) -> None:
    now = datetime.now(UTC)
    query = board_query()
    token = CODEC.encode(
        query,
        PageCursor(now, UUID(RESTAURANT)),
        purpose="board",
    )
    old = at(summary(str(uuid.uuid4()), 2), now - timedelta(minutes=10))
    delivered = at(summary(A, 6), now + timedelta(seconds=1))
    reads = Reads(old, delivered)
    stream = Stream[BoardMessages]().start(
        lambda s: stream_board(query, token, hub=hub, reads=reads, tokens=CODEC, send=s.send)
    )
    sent = await stream.wait_for(2)
    assert sent[0].order.order_id == A  # terminal: off the board
    assert sent[0].resume_token == token
    assert sent[1].caught_up
    assert stream.task is not None
    stream.task.cancel()


async def test_a_board_refuses_a_token_of_another_query(hub: WatchHub) -> None:
    page_token = CODEC.encode(
        board_query(),
        PageCursor(datetime.now(UTC), UUID(RESTAURANT)),
    )
    with pytest.raises(InvalidInput) as refused:
        await stream_board(
            board_query(),
            page_token,
            hub=hub,
            reads=Reads(),
            tokens=CODEC,
            send=Stream[BoardMessages]().send,
        )
    assert [v.field for v in refused.value.violations] == ["resume_token"]
