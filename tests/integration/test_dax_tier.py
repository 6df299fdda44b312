"""The DAX tier in the read path, through the real amazon-dax-client (`connect_dax`, as the
service builds it) against the DAX-protocol endpoint (tooling/uoom_orders_dax), which forwards
to the stack's DynamoDB endpoint: discovery of every node from any one; an endpoint restart
(the client reconnects, the breaker opens and closes); stale item-cache answers under
`min_version` and the per-replica monotonic-read rule; item-TTL expiry.

The read model is written straight to DynamoDB, as the projector writes it: DAX's item cache
does not see those writes until its entries expire, as with a real cluster.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
from uoom.orders.v1 import order_pb2

from tests.integration.pipeline import use_stack_credentials
from tests.integration.projector_support import drop_tables, dynamodb, eventually, order_history
from tests.support.dax_endpoint import CountingDaxClient, dax_endpoint
from uoom_orders import wire
from uoom_orders.dynamodb.tables import TableNames, create_tables
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders.read.circuit_breaker import BreakerState, CircuitBreaker
from uoom_orders.read.dax_client import AsyncDaxClient, connect_dax
from uoom_orders.read.item_store import ItemReadStore
from uoom_orders.read.near_cache import NearCache, NearCacheStore
from uoom_orders.read.postgres_store import PostgresOrderReadStore
from uoom_orders.read.tiers import ReadPath, Tier
from uoom_orders_dax import DaxEndpoint
from uoom_orders_devstack import StackEndpoints

HOUR = 3600
DAX_DEFAULT_TTL_SECONDS = 300.0  # long enough that no entry expires during a test


@dataclass
class Chain:
    """One replica's read path: its near cache (the floor; its feed driven by the test), DAX,
    DynamoDB, PostgreSQL."""

    path: ReadPath
    dax: CountingDaxClient
    breaker: CircuitBreaker
    writer: ReadModelWriter
    cache: NearCache
    live: list[bool]

    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    def feed(self, order: order_pb2.Order) -> None:
        """What the near-cache feed does with an event."""
        self.cache.put(wire.summary_from_order(order), order, time.time() + HOUR)

    async def put(self, order: order_pb2.Order, ttl: int | None = None) -> None:
        """What the projector does: straight to DynamoDB, around DAX."""
        await self.writer.put_order(order, ttl if ttl is not None else int(time.time()) + HOUR)


@pytest.fixture(scope="module")
def dax(local_stack: StackEndpoints) -> Iterator[DaxEndpoint]:
    """An endpoint whose item cache keeps what it read for the whole test (DAX's default)."""
    with dax_endpoint(local_stack.dynamodb_endpoint, item_ttl_seconds=DAX_DEFAULT_TTL_SECONDS) as e:
        yield e


@asynccontextmanager
async def chain_on(
    local_stack: StackEndpoints,
    database_url: str,
    endpoint: str,
    *,
    reset_seconds: float = 0.3,
) -> AsyncIterator[Chain]:
    use_stack_credentials(local_stack)  # the DAX client signs with them
    prefix = f"dax-{uuid.uuid4().hex[:10]}-"
    tables = TableNames.for_prefix(prefix)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    counting = CountingDaxClient(
        await asyncio.to_thread(connect_dax, endpoint, local_stack.aws_region)
    )
    dax = AsyncDaxClient(counting, max_workers=2)
    breaker = CircuitBreaker(f"dax-{prefix}", failure_threshold=2, reset_seconds=reset_seconds)
    cache = NearCache()
    live = [True]

    def remember(summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        cache.put(summary, order, time.time() + 60)

    try:
        async with dynamodb(local_stack) as client:
            await create_tables(client, prefix)
            path = ReadPath(
                [
                    Tier(NearCacheStore(cache, lambda: live[0]), serves_lists=False, local=True),
                    Tier(
                        ItemReadStore(dax, tables, name="dax"),
                        timeout=2,
                        breaker=breaker,
                        serves_lists=False,
                    ),
                    Tier(ItemReadStore(client, tables, name="dynamodb"), timeout=2),
                ],
                Tier(PostgresOrderReadStore(pool), timeout=2),
                remember=remember,
                memory=cache,
            )
            yield Chain(path, counting, breaker, ReadModelWriter(client, prefix), cache, live)
            await drop_tables(client, tables)
    finally:
        dax.close()
        await pool.close()


@pytest.fixture
async def chain(
    local_stack: StackEndpoints, database_url: str, dax: DaxEndpoint
) -> AsyncIterator[Chain]:
    async with chain_on(local_stack, database_url, dax.endpoint) as built:
        yield built


def history(versions: int) -> list[order_pb2.Order]:
    """One order at versions 1..`versions`."""
    return [wire.order_to_proto(event.order) for event in order_history(versions - 1)]


async def served(chain: Chain, order_id: str, min_version: int = 0) -> tuple[int | None, str]:
    found, tier = await chain.path.get_summary(uuid.UUID(order_id), min_version)
    return (None if found is None else found.version), tier


async def test_a_near_cache_miss_is_answered_by_dax_on_the_service_s_own_threads(
    chain: Chain,
) -> None:
    (order,) = history(1)
    await chain.put(order)
    found, tier = await chain.path.get_order(uuid.UUID(order.order_id), 0)
    assert (found, tier) == (order, "dax")
    batch, used = await chain.path.get_summaries([uuid.UUID(order.order_id), uuid.uuid4()])
    # The first read filled the near cache: it answers the batch's known order.
    assert (list(batch), used) == ([uuid.UUID(order.order_id).int], ["near-cache", "postgres"])
    # The DAX calls ran on the adapter's own threads, never on the event loop's.
    assert chain.dax.threads
    assert all(name.startswith("dax") for name in chain.dax.threads)


async def test_discovery_finds_every_node_from_any_one(
    local_stack: StackEndpoints, database_url: str
) -> None:
    with dax_endpoint(local_stack.dynamodb_endpoint, nodes=3) as cluster:
        replica = cluster.nodes[2]
        # Given a replica's address only, as a client given one node of a cluster.
        async with chain_on(
            local_stack, database_url, f"dax://{replica.host}:{replica.port}"
        ) as built:
            orders = [history(1)[0] for _ in range(12)]
            for order in orders:
                await built.put(order)
            for order in orders:
                built.cache.clear()
                assert await served(built, order.order_id) == (1, "dax")

            # The client learned the other nodes from the endpoints answer and connects to
            # them: reads go to a random node, and each node is also health-checked, so a
            # node may be met only after a few more reads (12 random reads over 3 nodes miss
            # one of them in about 2 % of runs; the health check comes every 5 s).
            async def every_node_met() -> bool:
                built.cache.clear()
                assert await served(built, orders[0].order_id) == (1, "dax")
                return set(cluster.accepted_connections()) == {0, 1, 2}

            await eventually(every_node_met, "connections to all three nodes", 15, 0.05)


async def test_a_restarted_endpoint_is_reconnected_and_the_breaker_opens_and_closes(
    local_stack: StackEndpoints, database_url: str
) -> None:
    endpoint = dax_endpoint(local_stack.dynamodb_endpoint)
    await asyncio.to_thread(endpoint.start)
    try:
        async with chain_on(local_stack, database_url, endpoint.endpoint, reset_seconds=5.0) as c:
            (order,) = history(1)
            await c.put(order)
            assert await served(c, order.order_id) == (1, "dax")
            port = endpoint.port

            await asyncio.to_thread(endpoint.stop)
            for _ in range(5):
                c.cache.clear()  # every read misses the near cache
                assert await served(c, order.order_id) == (1, "dynamodb")
            assert c.breaker_state() is BreakerState.OPEN
            assert c.dax.calls == 1 + 2  # the breaker stopped asking after two failures

            await asyncio.to_thread(endpoint.start)
            assert endpoint.port == port

            async def dax_answers() -> bool:
                c.cache.clear()
                return await served(c, order.order_id) == (1, "dax")

            # After the breaker's reset period a probe goes through: the client reconnects.
            await eventually(dax_answers, "a read served by the restarted endpoint", 15, 0.2)
            assert c.breaker_state() is BreakerState.CLOSED
    finally:
        await asyncio.to_thread(endpoint.stop)


async def test_a_stale_dax_item_is_answered_only_when_nothing_newer_is_known(
    chain: Chain,
) -> None:
    v1, v2, v3 = history(3)
    oid = v1.order_id
    await chain.put(v1)
    assert await served(chain, oid) == (1, "dax")  # DAX now holds version 1
    await chain.put(v2)  # the projector's write goes around DAX

    # A replica that knows nothing newer gets DAX's version 1: stale, but not older than
    # anything it answered before. (Here the near cache, filled by the read above, answers.)
    chain.cache.clear()
    assert await served(chain, oid) == (1, "dax")
    # A caller that has seen version 2 (min_version) is never answered less: DAX's copy
    # counts as a miss and DynamoDB answers.
    chain.cache.clear()
    assert await served(chain, oid, min_version=2) == (2, "dynamodb")
    # That answer is now this replica's floor: without min_version too, DAX's version 1 is
    # passed over (the near cache is bypassed here, as while its feed is down).
    chain.live[0] = False
    assert await served(chain, oid) == (2, "dynamodb")

    # An event brings version 3 (the feed is the floor even while it is not answering);
    # DynamoDB has it too; DAX still answers version 1 and is passed over.
    await chain.put(v3)
    chain.feed(v3)
    assert await served(chain, oid) == (3, "dynamodb")
    batch, used = await chain.path.get_summaries([uuid.UUID(oid)])
    assert (batch[uuid.UUID(oid).int].version, used) == (3, ["dynamodb"])
    # DAX caches per item: the details table's item was never read through it, so DAX reads
    # it through now, and its answer is new enough.
    order, tier = await chain.path.get_order(uuid.UUID(oid), 0)
    assert (order, tier) == (v3, "dax")


async def test_dax_items_expire_after_the_item_ttl_and_expired_orders_are_absent(
    local_stack: StackEndpoints, database_url: str
) -> None:
    # Long enough for the reads below to fall within it on a loaded machine.
    with dax_endpoint(local_stack.dynamodb_endpoint, item_ttl_seconds=4.0) as short:
        async with chain_on(local_stack, database_url, short.endpoint) as c:
            v1, v2 = history(2)
            await c.put(v1)
            assert await served(c, v1.order_id) == (1, "dax")
            await c.put(v2)
            c.cache.clear()
            assert await served(c, v1.order_id) == (1, "dax")  # cached

            async def re_read() -> bool:
                c.cache.clear()
                return await served(c, v1.order_id) == (2, "dax")

            # The entry expires: DAX reads the item through again.
            await eventually(re_read, "DAX to re-read the expired entry", 15, 0.2)


async def test_an_order_past_its_read_model_ttl_is_absent_though_dax_still_holds_it(
    chain: Chain,
) -> None:
    (order,) = history(1)
    expires = int(time.time()) + 4  # time for the put and the first read, on a loaded machine
    await chain.put(order, ttl=expires)
    assert await served(chain, order.order_id) == (1, "dax")
    await asyncio.sleep(max(0.0, expires + 1.1 - time.time()))
    chain.cache.clear()
    # DAX answers the item it cached; its `ttl` has passed, so it counts as absent there as
    # in every tier (DynamoDB deletes such items up to two days late). PostgreSQL has nothing.
    assert await served(chain, order.order_id) == (None, "postgres")
    assert chain.dax.calls == 2
