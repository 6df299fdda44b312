"""Watches over the real stack: PostgreSQL, the relay, tansu, the projector and moto, with API
replicas in process, each following the topic with its own feed and hub. Watches are read
through the generated stub, as any gRPC client reads them.

What a caller may rely on (the contract's comments on WatchOrderStatus and
WatchRestaurantOrders): the current status first, then every newer version in order, the
stream ending OK after a terminal status; resuming from the last version misses nothing; a
slow reader gets the newest versions with the skipped ones counted, never without the final
status; a replica shutting down ends its watches at once with UNAVAILABLE and a retry hint; a
replica holds at most WATCH_MAX_STREAMS watches.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from uoom.orders.v1 import order_pb2, order_service_pb2_grpc
from uoom.orders.v1 import order_service_pb2 as pb

from tests.builders import create_request, update_request
from tests.integration.pipeline import Api, pipeline
from tests.integration.projector_support import eventually
from tests.support.rich_errors import rich_error
from uoom_orders.bootstrap import running_service
from uoom_orders_devstack import StackEndpoints

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

S = order_pb2
LIFECYCLE = (
    S.ORDER_STATUS_CONFIRMED,
    S.ORDER_STATUS_PREPARING,
    S.ORDER_STATUS_READY_FOR_PICKUP,
    S.ORDER_STATUS_OUT_FOR_DELIVERY,
    S.ORDER_STATUS_DELIVERED,
)
# A change reaches a replica's feed within the stream lag (tens of milliseconds here).
PUSHED_WITHIN = 10.0


@asynccontextmanager
async def stub_of(api: Api, *options: tuple[str, int]) -> AsyncIterator[OrderServiceAsyncStub]:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{api.service.port}", options=list(options)
    ) as channel:
        stub: OrderServiceAsyncStub = order_service_pb2_grpc.OrderServiceStub(channel)
        yield stub


async def advance(api: Api, order_id: str, *statuses: int) -> int:
    """Commits status changes through the API; returns the last version."""
    version = 0
    for status in statuses:
        version = (
            await api.client.update_order_status(update_request(order_id, status))
        ).order.version
    return version


Call = grpc.aio.UnaryStreamCall[Any, Any]


async def read(call: Call, what: str) -> Any:
    """The stream's next message (a WatchOrderStatusResponse or WatchRestaurantOrdersResponse)."""
    message = await asyncio.wait_for(call.read(), timeout=PUSHED_WITHIN)
    assert message is not grpc.aio.EOF, f"the stream ended before {what}"
    return message


async def near_cache_has(api: Api, order_id: str, version: int) -> bool:
    reply, info = await api.client.get_order_status_with_metadata(
        pb.GetOrderStatusRequest(order_id=order_id)
    )
    return (info.served_by, reply.order.version) == ("near-cache", version)


async def until_end(call: Call, within: float = PUSHED_WITHIN) -> list[Any]:
    """The stream's messages until it ends (read() and iteration may not be mixed)."""
    messages = []
    async with asyncio.timeout(within):
        while (message := await call.read()) is not grpc.aio.EOF:
            messages.append(message)
    return messages


async def test_the_current_status_then_every_version_in_order_then_the_end_after_delivered(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        api = await stack.start_api()
        order = (await api.client.create_order(create_request())).order
        async with stub_of(api) as stub:
            call = stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=order.order_id))
            first = await read(call, "the current status")
            assert (first.order.version, first.order.status, first.skipped_versions) == (
                1,
                S.ORDER_STATUS_PENDING,
                0,
            )
            assert await advance(api, order.order_id, *LIFECYCLE) == 6
            rest = await until_end(call)  # ends by itself after DELIVERED
            assert [(m.order.version, m.order.status, m.skipped_versions) for m in rest] == [
                (version, status, 0) for version, status in zip(range(2, 7), LIFECYCLE, strict=True)
            ]
            assert await call.code() == grpc.StatusCode.OK
            # Watching a delivered order: its status, then the end.
            again = stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=order.order_id))
            assert [m.order.version async for m in again] == [6]
        assert api.service.watches is not None
        await eventually(lambda: len(api.service.watches.hub) == 0, "the watches to be gone")  # type: ignore[union-attr]


async def test_resuming_after_a_disconnect_starts_with_what_was_missed(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        api = await stack.start_api()
        order = (await api.client.create_order(create_request())).order
        async with stub_of(api) as stub:
            call = stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=order.order_id))
            assert (await read(call, "the current status")).order.version == 1
            call.cancel()  # the caller's connection drops
            await advance(api, order.order_id, S.ORDER_STATUS_CONFIRMED, S.ORDER_STATUS_PREPARING)
            # The caller comes back once the replica's feed has both changes (sooner, it gets
            # version 2 first, then 3: the same guarantee, another test).
            await eventually(
                lambda: near_cache_has(api, order.order_id, 3), "version 3 on the replica's feed"
            )
            resumed = stub.WatchOrderStatus(
                pb.WatchOrderStatusRequest(order_id=order.order_id, after_version=1)
            )
            missed = await read(resumed, "the version missed")
            assert (missed.order.version, missed.skipped_versions) == (3, 1)
            await advance(api, order.order_id, S.ORDER_STATUS_CANCELLED)
            assert [m.order.version for m in await until_end(resumed)] == [4]
            # Resumed after the final status: the stream ends at once, with nothing to send.
            done = stub.WatchOrderStatus(
                pb.WatchOrderStatusRequest(order_id=order.order_id, after_version=4)
            )
            assert [m async for m in done] == []


async def test_unknown_orders_and_bad_requests_get_their_errors(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        api = await stack.start_api()
        async with stub_of(api) as stub:
            call = stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=str(uuid.uuid4())))
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await call.read()
            assert rich_error(missing.value).reason == "ORDER_NOT_FOUND"
            call = stub.WatchOrderStatus(
                pb.WatchOrderStatusRequest(order_id="nope", after_version=-1)
            )
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await call.read()
            error = rich_error(bad.value)
            assert error.code == grpc.StatusCode.INVALID_ARGUMENT
            assert {field for field, _ in error.violations} == {"order_id", "after_version"}


# A reader that stops reading: grpc's transport buffers only what the stream's flow-control
# window lets through, so the server's writes then wait and the changes pile up in the watch's
# mailbox. A small window (no BDP probing to grow it) makes that happen after a few messages.
SLOW_READER = (("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0))


async def test_a_slow_reader_gets_the_newest_versions_counted_and_every_final_status(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        api = await stack.start_api(WATCH_QUEUE_LIMIT="16")
        restaurant_id = str(uuid.uuid4())
        orders = [
            (await api.client.create_order(create_request(restaurant_id=restaurant_id))).order
            for _ in range(12)
        ]
        async with stub_of(api, *SLOW_READER) as stub:
            call = stub.WatchRestaurantOrders(
                pb.WatchRestaurantOrdersRequest(restaurant_id=restaurant_id)
            )
            board = []
            while not (message := await read(call, "the board")).caught_up:
                board.append(message.order.order_id)
            assert sorted(board) == sorted(o.order_id for o in orders)
            # 60 changes while the caller does not read.
            for order in orders:
                await advance(api, order.order_id, *LIFECYCLE)
            # Every change has reached the replica's feed (DELIVERED is the last of each).
            for order in orders:
                await eventually(
                    partial(near_cache_has, api, order.order_id, 6),
                    "the last change on the replica's feed",
                )
            newest: dict[str, int] = {}
            skipped = received = 0
            async with asyncio.timeout(PUSHED_WITHIN):
                while any(newest.get(o.order_id) != 6 for o in orders):
                    message = await read(call, "every final status")
                    assert message.order.version > newest.get(message.order.order_id, 1)
                    newest[message.order.order_id] = message.order.version
                    skipped += message.skipped_versions
                    received += 1
            call.cancel()
    assert received + skipped == 60  # every version sent or counted
    assert skipped > 0, "the reader was not slow: nothing was coalesced"


async def test_a_board_sends_its_open_orders_then_changes_and_resumes_from_a_token(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        api = await stack.start_api()
        restaurant_id = str(uuid.uuid4())
        open_order, done = [
            (await api.client.create_order(create_request(restaurant_id=restaurant_id))).order
            for _ in range(2)
        ]
        await advance(api, done.order_id, S.ORDER_STATUS_CANCELLED)
        elsewhere = (await api.client.create_order(create_request())).order
        async with stub_of(api) as stub:
            request = pb.WatchRestaurantOrdersRequest(restaurant_id=restaurant_id)
            call = stub.WatchRestaurantOrders(request)
            first = await read(call, "the board")
            assert (first.order.order_id, first.order.version) == (open_order.order_id, 1)
            caught_up = await read(call, "caught_up")
            assert caught_up.caught_up
            assert not caught_up.HasField("order")
            # A new order, a change of another restaurant's, and the open one moved on.
            new = (await api.client.create_order(create_request(restaurant_id=restaurant_id))).order
            await advance(api, elsewhere.order_id, S.ORDER_STATUS_CONFIRMED)
            await advance(api, open_order.order_id, S.ORDER_STATUS_CONFIRMED)
            changes = [await read(call, "the changes") for _ in range(2)]
            # In order per order; across orders, as the topic's partitions deliver them.
            assert {(m.order.order_id, m.order.version) for m in changes} == {
                (new.order_id, 1),
                (open_order.order_id, 2),
            }
            token = changes[-1].resume_token
            call.cancel()
            # Away: the open order is cancelled, the new one confirmed.
            await advance(api, open_order.order_id, S.ORDER_STATUS_CANCELLED)
            await advance(api, new.order_id, S.ORDER_STATUS_CONFIRMED)
            resumed = stub.WatchRestaurantOrders(
                pb.WatchRestaurantOrdersRequest(restaurant_id=restaurant_id, resume_token=token)
            )
            catch_up = []
            while not (message := await read(resumed, "the changes missed")).caught_up:
                assert message.resume_token == token  # until caught up: where it started
                catch_up.append(message)
            newest = {m.order.order_id: m.order.version for m in catch_up}
            assert (newest[open_order.order_id], newest[new.order_id]) == (3, 2)
            # Changes from shortly before the token may come again (RESUME_OVERLAP): here the
            # order cancelled before the board began. Never another restaurant's, never old.
            assert set(newest) <= {open_order.order_id, new.order_id, done.order_id}
            assert newest.get(done.order_id, 2) == 2
            resumed.cancel()
            # A token of another board (or a page token) is refused, naming the field.
            other = stub.WatchRestaurantOrders(
                pb.WatchRestaurantOrdersRequest(
                    restaurant_id=restaurant_id,
                    status_filter=S.ORDER_STATUS_PENDING,
                    resume_token=token,
                )
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await other.read()
            assert rich_error(refused.value).violations[0][0] == "resume_token"


async def test_a_replica_holds_at_most_its_watch_limit(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        api = await stack.start_api(WATCH_MAX_STREAMS="2")
        order = (await api.client.create_order(create_request())).order
        request = pb.WatchOrderStatusRequest(order_id=order.order_id)
        async with stub_of(api) as stub:
            open_calls = [stub.WatchOrderStatus(request) for _ in range(2)]
            for call in open_calls:
                await read(call, "the current status")
            refused = stub.WatchOrderStatus(request)
            with pytest.raises(grpc.aio.AioRpcError) as full:
                await refused.read()
            error = rich_error(full.value)
            assert (error.code, error.reason) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "TOO_MANY_WATCHES",
            )
            assert error.retry_delay is not None
            open_calls.pop().cancel()

            async def admitted() -> bool:
                call = stub.WatchOrderStatus(request)
                try:
                    await call.read()
                except grpc.aio.AioRpcError:
                    return False
                call.cancel()
                return True

            await eventually(admitted, "a watch admitted once another one ended")


async def test_a_replica_shutting_down_ends_its_watches_at_once_with_unavailable(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        creator = await stack.start_api()
        order = (await creator.client.create_order(create_request())).order
        grace = 20.0
        async with AsyncExitStack() as replica_stack:
            replica = await replica_stack.enter_async_context(
                running_service(stack.settings(SHUTDOWN_GRACE_SECONDS=str(grace)), ("api",))
            )
            assert replica.near_cache_feed is not None
            assert await replica.near_cache_feed.wait_live(within=20)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
                stub: OrderServiceAsyncStub = order_service_pb2_grpc.OrderServiceStub(channel)
                watches: list[Call] = [
                    stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=order.order_id)),
                    stub.WatchRestaurantOrders(
                        pb.WatchRestaurantOrdersRequest(restaurant_id=order.restaurant_id)
                    ),
                ]
                for call in watches:
                    await read(call, "the first message")
                started = time.monotonic()
                stopping = asyncio.create_task(replica_stack.aclose())
                for call in watches:
                    with pytest.raises(grpc.aio.AioRpcError) as ended:
                        await until_end(call)
                    error = rich_error(ended.value)
                    assert (error.code, error.reason) == (
                        grpc.StatusCode.UNAVAILABLE,
                        "SHUTTING_DOWN",
                    )
                    assert error.retry_delay == 0.0
                await stopping
                assert time.monotonic() - started < grace / 4, "the watches held the grace"
