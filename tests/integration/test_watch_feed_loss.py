"""A watch never pretends: when its replica's event feed stops being live, it ends with
UNAVAILABLE (FEED_NOT_LIVE) and a retry hint, new ones are refused the same way, and resuming
once a feed is live again misses nothing — the change committed during the outage included.

The broker is a tansu of this module's own, paused (SIGSTOP) and resumed, as in
test_near_cache_feed_outage.py, so that no other test's broker stops.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import grpc
import pytest
from uoom.orders.v1 import order_pb2, order_service_pb2_grpc
from uoom.orders.v1 import order_service_pb2 as pb

from tests.builders import create_request
from tests.integration.pipeline import pipeline
from tests.integration.test_watch import Call, advance, read, until_end
from tests.support.rich_errors import rich_error
from uoom_orders_devstack import StackEndpoints, TansuBroker
from uoom_orders_devstack.ports import free_port

S = order_pb2
# The feed notices a silent broker within its max silence (2 s) and a probe interval; the hub
# looks every 0.1 s.
FEED_DOWN_WITHIN = 10.0
FEED_BACK_WITHIN = 20.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    server = TansuBroker(free_port(), tmp_path_factory.mktemp("tansu") / "kafka.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def endpoints(local_stack: StackEndpoints, broker: TansuBroker) -> Iterator[StackEndpoints]:
    yield dataclasses.replace(
        local_stack, kafka_bootstrap_servers=broker.bootstrap_servers, local_broker=True
    )
    broker.resume()  # running again after the test, whatever happened in it


def assert_feed_not_live(error: grpc.aio.AioRpcError) -> None:
    found = rich_error(error)
    assert (found.code, found.reason) == (grpc.StatusCode.UNAVAILABLE, "FEED_NOT_LIVE")
    assert found.retry_delay is not None
    assert found.retry_delay > 0


async def test_watches_end_with_unavailable_when_the_feed_is_lost_and_resume_after(
    endpoints: StackEndpoints, database_url: str, broker: TansuBroker
) -> None:
    async with pipeline(endpoints, database_url) as stack:
        api = await stack.start_api()
        feed = api.service.near_cache_feed
        assert feed is not None
        order = (await api.client.create_order(create_request())).order
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.service.port}") as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            watches: list[Call] = [
                stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=order.order_id)),
                stub.WatchRestaurantOrders(
                    pb.WatchRestaurantOrdersRequest(restaurant_id=order.restaurant_id)
                ),
            ]
            assert (await read(watches[0], "the current status")).order.version == 1
            await read(watches[1], "the board")
            token = (await read(watches[1], "caught_up")).resume_token

            broker.pause()
            paused = time.monotonic()
            for call in watches:
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await until_end(call, within=FEED_DOWN_WITHIN)
                assert_feed_not_live(ended.value)
            print(f"watches ended {time.monotonic() - paused:.1f} s after the broker paused")
            refused = stub.WatchOrderStatus(pb.WatchOrderStatusRequest(order_id=order.order_id))
            with pytest.raises(grpc.aio.AioRpcError) as not_now:
                await refused.read()
            assert_feed_not_live(not_now.value)

            # Committed while the broker is paused: the relay cannot publish it yet.
            assert await advance(api, order.order_id, S.ORDER_STATUS_CONFIRMED) == 2

            broker.resume()
            assert await feed.wait_live(within=FEED_BACK_WITHIN), "the feed did not come back"
            resumed = stub.WatchOrderStatus(
                pb.WatchOrderStatusRequest(order_id=order.order_id, after_version=1)
            )
            assert (await read(resumed, "the change made during the outage")).order.version == 2
            board = stub.WatchRestaurantOrders(
                pb.WatchRestaurantOrdersRequest(
                    restaurant_id=order.restaurant_id, resume_token=token
                )
            )
            missed = await read(board, "the board's change made during the outage")
            assert (missed.order.order_id, missed.order.version) == (order.order_id, 2)
            await advance(api, order.order_id, S.ORDER_STATUS_CANCELLED)
            assert [m.order.version for m in await until_end(resumed)] == [3]
            board.cancel()
