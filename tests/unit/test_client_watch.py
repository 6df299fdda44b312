"""The client's watches against a fake OrderService in process: they resume by themselves on
UNAVAILABLE from what they last delivered, honour the session's versions, and give up after
`resume_attempts` failures in a row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.support.fake_server import serving
from tests.support.watch_changes import STATUS_AT
from tests.unit.test_client import Context, FakeOrderService
from uoom_orders.api.status_mapping import domain_status
from uoom_orders.domain import errors
from uoom_orders_client import (
    NotFoundError,
    OrderServiceClient,
    UnavailableError,
    order_pb2,
    order_service_pb2,
)

S = order_pb2
ORDER_ID = "00000000-0000-0000-0000-000000000042"
RESTAURANT_ID = "22222222-2222-2222-2222-222222222222"
FEED_LOST = errors.WatchInterrupted("feed lost", retry_delay=0.01)


def summary(version: int, order_id: str = ORDER_ID) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(
        order_id=order_id, restaurant_id=RESTAURANT_ID, status=STATUS_AT[version], version=version
    )


@dataclass
class Episode:
    """One stream: these messages, then this end (None: OK)."""

    messages: list[object]
    end: errors.OrderServiceError | None = None


@dataclass
class WatchingService(FakeOrderService):
    episodes: list[Episode] = field(default_factory=list)
    requests: list[object] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    async def _play(self, request: object, context: Context) -> None:
        self.requests.append(request)
        episode = self.episodes.pop(0) if self.episodes else Episode([], FEED_LOST)
        for message in episode.messages:
            await context.write(message)
        if episode.end is not None:
            await context.abort_with_status(domain_status(episode.end))

    async def WatchOrderStatus(  # type: ignore[override]
        self, request: order_service_pb2.WatchOrderStatusRequest, context: Context
    ) -> None:
        await self._play(request, context)

    async def WatchRestaurantOrders(  # type: ignore[override]
        self, request: order_service_pb2.WatchRestaurantOrdersRequest, context: Context
    ) -> None:
        await self._play(request, context)


@pytest.fixture
async def served() -> AsyncIterator[tuple[WatchingService, str]]:
    async with serving(WatchingService()) as pair:
        yield pair


def status(version: int, skipped: int = 0) -> order_service_pb2.WatchOrderStatusResponse:
    return order_service_pb2.WatchOrderStatusResponse(
        order=summary(version), skipped_versions=skipped
    )


async def test_a_watch_resumes_on_unavailable_from_the_last_version_delivered(
    served: tuple[WatchingService, str],
) -> None:
    fake, target = served
    fake.episodes = [
        Episode([status(1), status(2)], FEED_LOST),
        Episode([status(4, skipped=1), status(6, skipped=1)]),
    ]
    async with OrderServiceClient(target, max_attempts=1) as client:
        got = [
            (u.order.version, u.skipped_versions) async for u in client.watch_order_status(ORDER_ID)
        ]
    assert got == [(1, 0), (2, 0), (4, 1), (6, 1)]
    assert [r.after_version for r in fake.requests] == [0, 2]  # type: ignore[attr-defined]


async def test_a_watch_asks_for_at_least_what_the_session_has_seen_and_never_goes_back(
    served: tuple[WatchingService, str],
) -> None:
    fake, target = served
    # The session read version 3 (the fake answers every read with 3); a lagging replica then
    # offers version 2: not delivered.
    fake.episodes = [Episode([status(2), status(3), status(6, skipped=2)])]
    async with OrderServiceClient(target, max_attempts=1) as client:
        await client.get_order_status(order_service_pb2.GetOrderStatusRequest(order_id=ORDER_ID))
        got = [
            (u.order.version, u.skipped_versions) async for u in client.watch_order_status(ORDER_ID)
        ]
    assert got == [(3, 0), (6, 2)]
    assert [r.after_version for r in fake.requests] == [2]  # type: ignore[attr-defined]


async def test_a_correction_is_delivered_and_replaces_what_the_session_remembers(
    served: tuple[WatchingService, str],
) -> None:
    fake, target = served
    corrected = status(3)
    corrected.corrected = True
    fake.episodes = [Episode([status(4), corrected, status(4), status(6, skipped=1)])]
    async with OrderServiceClient(target, max_attempts=1) as client:
        got = [(u.order.version, u.corrected) async for u in client.watch_order_status(ORDER_ID)]
    assert got == [(4, False), (3, True), (4, False), (6, False)]


async def test_a_watch_gives_up_after_its_resume_attempts(
    served: tuple[WatchingService, str],
) -> None:
    fake, target = served
    async with OrderServiceClient(target, max_attempts=1) as client:
        with pytest.raises(UnavailableError) as raised:
            async for _ in client.watch_order_status(ORDER_ID, resume_attempts=2):
                pass
    assert raised.value.reason == "FEED_NOT_LIVE"
    assert raised.value.retry_delay == pytest.approx(0.01)
    assert len(fake.requests) == 3


async def test_other_errors_are_raised_at_once(served: tuple[WatchingService, str]) -> None:
    fake, target = served
    fake.episodes = [Episode([], errors.OrderNotFound("no such order"))]
    async with OrderServiceClient(target, max_attempts=1) as client:
        with pytest.raises(NotFoundError):
            async for _ in client.watch_order_status(ORDER_ID):
                pass
    assert len(fake.requests) == 1


def board(
    order: order_pb2.OrderSummary | None = None, token: str = "", *, caught_up: bool = False
) -> order_service_pb2.WatchRestaurantOrdersResponse:
    message = order_service_pb2.WatchRestaurantOrdersResponse(
        resume_token=token, caught_up=caught_up
    )
    if order is not None:
        message.order.CopyFrom(order)
    return message


async def test_a_board_resumes_from_its_last_token_without_delivering_a_version_twice(
    served: tuple[WatchingService, str],
) -> None:
    fake, target = served
    other = "00000000-0000-0000-0000-000000000043"
    fake.episodes = [
        Episode(
            [board(summary(1)), board(caught_up=True, token="t1"), board(summary(2), "t2")],
            FEED_LOST,
        ),
        Episode(
            [
                board(summary(2), "t2"),  # from shortly before the token: again
                board(summary(1, other), "t2"),
                board(caught_up=True, token="t3"),
                board(summary(5), "t4"),
            ],
            errors.OrderNotFound("stop here"),
        ),
    ]
    got: list[tuple[str, int, int] | str] = []

    async def follow(client: OrderServiceClient) -> None:
        async for message in client.watch_restaurant_orders(RESTAURANT_ID):
            if message.caught_up:
                got.append("caught up")
            else:
                order = message.order
                got.append((order.order_id[-2:], order.version, message.skipped_versions))

    async with OrderServiceClient(target, max_attempts=1) as client:
        with pytest.raises(NotFoundError):
            await follow(client)
    assert got == [("42", 1, 0), "caught up", ("42", 2, 0), ("43", 1, 0), "caught up", ("42", 5, 2)]
    assert [r.resume_token for r in fake.requests] == ["", "t2"]  # type: ignore[attr-defined]
