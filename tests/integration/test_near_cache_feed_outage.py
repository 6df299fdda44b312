"""The near cache's feed going down and coming back, on real servers.

Each API replica keeps its near cache coherent by tailing the event topic. The broker here is
a tansu of this module's own, paused (SIGSTOP: connections stay open, nothing answers, nothing
is lost; tansu keeps its records in memory, so it is never killed) and resumed, so that no
other test's broker stops. While it is paused the relay cannot publish, so whatever is
committed to PostgreSQL then reaches neither the near cache nor, through the projector, the
DynamoDB read model.

What a caller may rely on (DESIGN.md, "Consistency model"): reads keep answering whatever the
feed's state; a near cache that may have missed events never answers from them; once the feed
is back, changes reach the near cache again within the stream lag; and a replica never answers
an older version of an order than one it has already answered.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from functools import partial

import asyncpg
import pytest
from uoom.orders.v1 import order_pb2

from tests.builders import create_request, update_request
from tests.integration.pipeline import Api, Pipeline, dynamodb_item, pipeline
from tests.integration.projector_support import eventually
from uoom_orders.dynamodb import ReadModelWriter, items
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.projector import Reconciler
from uoom_orders_client import OrderServiceClient, order_service_pb2
from uoom_orders_devstack import StackEndpoints, TansuBroker
from uoom_orders_devstack.ports import free_port

S = order_pb2
NEAR_CACHE = "near-cache"
# The feed notices a silent broker within its max silence (2 s) plus a probe interval.
FEED_DOWN_WITHIN = 10.0
# After a resume: the feed retries at most every second, then replays what it missed.
FEED_BACK_WITHIN = 20.0
VISIBLE_WITHIN = 10.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A Kafka-protocol broker of this module's own, to pause without touching others'."""
    server = TansuBroker(free_port(), tmp_path_factory.mktemp("tansu") / "kafka.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def endpoints(local_stack: StackEndpoints, broker: TansuBroker) -> StackEndpoints:
    # local_broker: the service takes tansu's settings (see StackEndpoints.env()).
    return dataclasses.replace(
        local_stack, kafka_bootstrap_servers=broker.bootstrap_servers, local_broker=True
    )


@pytest.fixture
def resumed_after(broker: TansuBroker) -> Iterator[TansuBroker]:
    """The broker, running again after the test whatever happened in it."""
    yield broker
    broker.resume()


async def read(client: OrderServiceClient, order_id: str, min_version: int = 0) -> tuple[str, int]:
    """(tier that served, version) of one GetOrderStatus."""
    reply, info = await client.get_order_status_with_metadata(
        order_service_pb2.GetOrderStatusRequest(order_id=order_id, min_version=min_version)
    )
    assert info.served_by is not None
    return info.served_by, reply.order.version


async def advance(api: Api, order_id: str, status: int) -> int:
    """Commits a status change through the API (PostgreSQL); returns the new version."""
    reply = await api.client.update_order_status(update_request(order_id, status))
    return reply.order.version


async def item_version(stack: Pipeline, order_id: str) -> int | None:
    item = await dynamodb_item(stack, order_id)
    return None if item is None else items.item_version(item)


async def rebuild(stack: Pipeline, customer_id: uuid.UUID) -> None:
    """Re-projects a customer's orders from PostgreSQL (the `rebuild` command's path)."""
    settings = stack.settings()
    async with (
        dynamodb_client(region=settings.aws_region, endpoint=settings.dynamodb_endpoint) as ddb,
        asyncpg.create_pool(settings.database_url, min_size=1, max_size=2) as pool,
    ):
        await Reconciler(pool, ddb, settings.dynamodb_table_prefix).run(customer_id=customer_id)


async def test_while_the_feed_is_down_reads_bypass_the_near_cache_and_it_serves_again_after(
    endpoints: StackEndpoints, database_url: str, resumed_after: TansuBroker
) -> None:
    broker = resumed_after
    async with pipeline(endpoints, database_url) as stack:
        api = await stack.start_api()
        feed, monitor = api.service.near_cache_feed, api.service.health
        assert feed is not None
        assert monitor is not None
        read_during, untouched = [
            (await api.client.create_order(create_request())).order for _ in range(2)
        ]
        for order in (read_during, untouched):
            assert await advance(api, order.order_id, S.ORDER_STATUS_CONFIRMED) == 2

            async def cached_and_projected(order_id: str = order.order_id) -> bool:
                return await read(api.client, order_id) == (NEAR_CACHE, 2) and (
                    await item_version(stack, order_id) == 2
                )

            await eventually(cached_and_projected, "version 2 in the near cache and DynamoDB")

        broker.pause()

        async def feed_down() -> bool:
            tier, version = await read(api.client, read_during.order_id)
            assert version == 2  # nothing newer exists yet, nothing older may be answered
            return tier != NEAR_CACHE

        await eventually(feed_down, "reads to bypass the near cache", timeout=FEED_DOWN_WITHIN)
        assert not feed.is_live()
        await monitor.check_once()
        assert monitor.up[NEAR_CACHE] is False
        assert monitor.degraded  # reported, and still serving

        # Committed while the broker is paused: the relay cannot publish them.
        assert await advance(api, read_during.order_id, S.ORDER_STATUS_PREPARING) == 3
        assert await advance(api, untouched.order_id, S.ORDER_STATUS_PREPARING) == 3
        # One of them made visible in DynamoDB by another path than the event stream.
        await rebuild(stack, uuid.UUID(untouched.customer_id))
        assert await item_version(stack, untouched.order_id) == 3

        # For a while, every read still succeeds, and none comes from the near cache.
        until = time.monotonic() + 1.0
        reads = 0
        while time.monotonic() < until:
            tier, version = await read(api.client, read_during.order_id)
            assert tier != NEAR_CACHE
            assert version >= 2
            reads += 1
        assert reads > 0
        # Read-your-writes while the feed is down: a tier new enough answers (PostgreSQL, or
        # DynamoDB once a PostgreSQL fallback has written the order back).
        tier, version = await read(api.client, read_during.order_id, min_version=3)
        assert (tier != NEAR_CACHE, version) == (True, 3), tier

        broker.resume()
        assert await feed.wait_live(within=FEED_BACK_WITHIN), "the feed did not come back"
        # The feed resumes where it stopped: the events the relay publishes now (version 3 of
        # both orders, committed during the outage) reach the near cache, which stayed warm.
        # Until they do it answers as the stream lets it: never older than it answered.

        async def caught_up(order_id: str) -> bool:
            tier, version = await read(api.client, order_id)
            assert version >= 2
            return (tier, version) == (NEAR_CACHE, 3)

        for order in (untouched, read_during):
            await eventually(
                partial(caught_up, order.order_id),
                "the missed version in the near cache",
                timeout=VISIBLE_WITHIN,
            )

        # A change committed now reaches the near cache through the feed again.
        assert await advance(api, read_during.order_id, S.ORDER_STATUS_READY_FOR_PICKUP) == 4

        async def visible_in_near_cache() -> bool:
            return await read(api.client, read_during.order_id) == (NEAR_CACHE, 4)

        await eventually(
            visible_in_near_cache,
            "the change in the near cache after the feed came back",
            timeout=VISIBLE_WITHIN,
            interval=0.01,
        )
        await monitor.check_once()
        assert monitor.up[NEAR_CACHE] is True


class WentBackInTime(AssertionError):
    """The replica answered an older version of an order than one it had already answered."""


class MonotonicReader:
    """Reads one order through every read RPC of one replica and checks each answer against
    the newest version that replica has answered so far."""

    def __init__(self, client: OrderServiceClient, order_id: str) -> None:
        self._client = client
        self._order_id = order_id
        self.newest = 0
        self.answers: list[tuple[str, str, int]] = []  # (rpc, tier, version)

    def _check(self, rpc: str, tier: str | None, version: int) -> None:
        self.answers.append((rpc, tier or "?", version))
        if version < self.newest:
            raise WentBackInTime(
                f"{rpc} served by {tier} answered version {version} after version "
                f"{self.newest} had been answered; answers so far: {self.answers}"
            )
        self.newest = version

    async def status(self, min_version: int = 0) -> tuple[str | None, int]:
        reply, info = await self._client.get_order_status_with_metadata(
            order_service_pb2.GetOrderStatusRequest(
                order_id=self._order_id, min_version=min_version
            )
        )
        self._check("GetOrderStatus", info.served_by, reply.order.version)
        return info.served_by, reply.order.version

    async def details(self) -> tuple[str | None, int]:
        reply, info = await self._client.get_order_details_with_metadata(
            order_service_pb2.GetOrderDetailsRequest(order_id=self._order_id)
        )
        self._check("GetOrderDetails", info.served_by, reply.order.version)
        return info.served_by, reply.order.version

    async def batch(self) -> tuple[str | None, int]:
        reply, info = await self._client.batch_get_order_status_with_metadata(
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=[self._order_id])
        )
        [found] = reply.orders
        self._check("BatchGetOrderStatus", info.served_by, found.version)
        return info.served_by, found.version

    async def every_rpc(self) -> list[str | None]:
        """One read through each RPC; returns the tiers that served them."""
        return [(await read())[0] for read in (self.status, self.details, self.batch)]


async def test_a_replica_never_answers_older_than_it_already_answered_across_a_feed_outage(
    endpoints: StackEndpoints, database_url: str, resumed_after: TansuBroker
) -> None:
    broker = resumed_after
    # No projector: the read model lags behind the near cache, as it does for a moment after
    # every change (and for the whole outage when the broker stops before the projector has
    # caught up).
    async with pipeline(endpoints, database_url, roles=("relay",)) as stack:
        api = await stack.start_api()
        feed = api.service.near_cache_feed
        assert feed is not None
        order = (await api.client.create_order(create_request())).order
        settings = stack.settings()
        async with (
            dynamodb_client(region=settings.aws_region, endpoint=settings.dynamodb_endpoint) as ddb,
            ReadModelWriter(ddb, settings.dynamodb_table_prefix) as writer,
        ):  # what the projector would have written for version 1
            await writer.put_order(
                order, items.ttl_after(settings.order_cache_ttl_hours, time.time())
            )
        reader = MonotonicReader(api.client, order.order_id)
        assert await advance(api, order.order_id, S.ORDER_STATUS_CONFIRMED) == 2
        assert await advance(api, order.order_id, S.ORDER_STATUS_PREPARING) == 3

        async def near_cache_answers_3() -> bool:
            return await reader.status() == (NEAR_CACHE, 3)

        await eventually(near_cache_answers_3, "version 3 in the near cache")
        await reader.every_rpc()

        broker.pause()

        async def feed_down() -> bool:
            return NEAR_CACHE not in await reader.every_rpc()

        await eventually(feed_down, "reads to bypass the near cache", timeout=FEED_DOWN_WITHIN)
        assert await advance(api, order.order_id, S.ORDER_STATUS_READY_FOR_PICKUP) == 4
        for _ in range(3):
            await reader.every_rpc()
        assert (await reader.status(min_version=4))[1] == 4
        for _ in range(3):
            await reader.every_rpc()

        broker.resume()
        assert await feed.wait_live(within=FEED_BACK_WITHIN), "the feed did not come back"
        for _ in range(3):
            await reader.every_rpc()
        assert await advance(api, order.order_id, S.ORDER_STATUS_OUT_FOR_DELIVERY) == 5

        async def near_cache_answers_5() -> bool:
            return await reader.status() == (NEAR_CACHE, 5)

        await eventually(
            near_cache_answers_5, "version 5 in the near cache", timeout=VISIBLE_WITHIN
        )
        await reader.every_rpc()
