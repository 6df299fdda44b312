"""The client package's watches across replicas: one replica shuts down mid-watch, and the
client resumes on the other by itself, from the last version (or resume token) it delivered,
without missing the final status."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from uoom.orders.v1 import order_pb2

from tests.builders import create_request
from tests.integration.pipeline import pipeline
from tests.integration.projector_support import eventually
from tests.integration.test_watch import LIFECYCLE, PUSHED_WITHIN, advance
from uoom_orders.bootstrap import running_service
from uoom_orders_client import OrderServiceClient, order_service_pb2
from uoom_orders_devstack import StackEndpoints

S = order_pb2


async def test_the_client_resumes_a_watch_on_another_replica_when_one_shuts_down(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url) as stack:
        writer = await stack.start_api()
        survivor = await stack.start_api()
        order = (await writer.client.create_order(create_request())).order
        async with AsyncExitStack() as first_stack:
            first = await first_stack.enter_async_context(
                running_service(stack.settings(), ("api",))
            )
            assert first.near_cache_feed is not None
            assert await first.near_cache_feed.wait_live(within=20)
            # One channel over both replicas, the first one first (pick_first): what a client
            # behind a DNS name with several addresses does.
            target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{survivor.service.port}"
            async with OrderServiceClient(target) as client:
                updates = client.watch_order_status(order.order_id)
                board = client.watch_restaurant_orders(order.restaurant_id)
                got = [await asyncio.wait_for(anext(updates), PUSHED_WITHIN)]
                on_board = await asyncio.wait_for(anext(board), PUSHED_WITHIN)
                assert (on_board.order.order_id, on_board.order.version) == (order.order_id, 1)
                assert (await asyncio.wait_for(anext(board), PUSHED_WITHIN)).caught_up
                await advance(writer, order.order_id, *LIFECYCLE[:2])
                got.append(await asyncio.wait_for(anext(updates), PUSHED_WITHIN))

                await first_stack.aclose()  # the watched replica shuts down

                async def rest_of_updates() -> list[order_service_pb2.WatchOrderStatusResponse]:
                    return [update async for update in updates]  # ends after DELIVERED

                async def rest_of_board() -> list[int]:
                    versions = []
                    async for message in board:
                        if message.HasField("order"):
                            versions.append(message.order.version)
                        if message.order.status == S.ORDER_STATUS_DELIVERED:
                            return versions
                    return versions

                following = asyncio.gather(rest_of_updates(), rest_of_board())
                watches = survivor.service.watches
                assert watches is not None
                await eventually(
                    lambda: len(watches.hub) == 2, "both watches resumed on the other replica"
                )
                await advance(writer, order.order_id, *LIFECYCLE[2:])
                rest, board_versions = await asyncio.wait_for(following, PUSHED_WITHIN)
                got += rest
    versions = [u.order.version for u in got]
    assert versions == sorted(set(versions))  # in order, never twice
    assert versions[0] == 1
    assert versions[-1] == 6
    assert got[-1].order.status == S.ORDER_STATUS_DELIVERED
    # Every version delivered or counted as skipped.
    assert len(versions) + sum(u.skipped_versions for u in got) == 6
    assert board_versions == sorted(set(board_versions))
    assert board_versions[-1] == 6
