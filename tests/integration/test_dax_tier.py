"""The DAX tier in the chain (over the amazon-dax-client stand-in; no DAX server exists
outside AWS): it answers first, and when it fails reads fall to DynamoDB while its breaker
spares them the wait, until a probe finds it back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from tests.integration.projector_support import drop_tables, dynamodb, order_history
from tests.support.dax_stand_in import DaxStandIn
from uoom_orders import wire
from uoom_orders.dynamodb.tables import TableNames, create_tables
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders.read.circuit_breaker import BreakerState, CircuitBreaker
from uoom_orders.read.dax_client import AsyncDaxClient
from uoom_orders.read.item_store import ItemReadStore
from uoom_orders.read.postgres_store import PostgresOrderReadStore
from uoom_orders.read.tiers import ReadPath, Tier
from uoom_orders_devstack import StackEndpoints


@dataclass
class Chain:
    path: ReadPath
    stand_in: DaxStandIn
    breaker: CircuitBreaker
    writer: ReadModelWriter

    def breaker_state(self) -> BreakerState:
        return self.breaker.state


@pytest.fixture
async def chain(local_stack: StackEndpoints, database_url: str) -> AsyncIterator[Chain]:
    prefix = f"dax-{uuid.uuid4().hex[:10]}-"
    tables = TableNames.for_prefix(prefix)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    stand_in = DaxStandIn(
        local_stack.dynamodb_endpoint,
        local_stack.aws_region,
        local_stack.aws_access_key_id,
        local_stack.aws_secret_access_key,
    )
    dax = AsyncDaxClient(stand_in, max_workers=2)
    breaker = CircuitBreaker(f"dax-{prefix}", failure_threshold=2, reset_seconds=0.3)
    try:
        async with dynamodb(local_stack) as client:
            await create_tables(client, prefix)
            path = ReadPath(
                [
                    Tier(ItemReadStore(dax, tables, name="dax"), timeout=1, breaker=breaker),
                    Tier(ItemReadStore(client, tables, name="dynamodb"), timeout=1),
                ],
                Tier(PostgresOrderReadStore(pool), timeout=2),
            )
            yield Chain(path, stand_in, breaker, ReadModelWriter(client, prefix))
            await drop_tables(client, tables)
    finally:
        dax.close()
        await pool.close()


async def test_dax_answers_first_then_falls_to_dynamodb_and_comes_back(chain: Chain) -> None:
    order = wire.order_to_proto(order_history(0)[0].order)
    await chain.writer.put_order(order, int(time.time()) + 3600)
    oid = uuid.UUID(order.order_id)
    assert (await chain.path.get_summary(oid, 0))[1] == "dax"

    chain.stand_in.fail_with = DaxStandIn.unreachable()
    for _ in range(5):
        found, tier = await chain.path.get_summary(oid, 0)
        assert tier == "dynamodb"
        assert found == wire.summary_from_order(order)
    assert chain.breaker_state() is BreakerState.OPEN
    assert chain.stand_in.calls == 1 + 2  # the breaker stopped asking after two failures

    chain.stand_in.fail_with = None
    await asyncio.sleep(0.35)  # the breaker's reset period, then one probe
    assert (await chain.path.get_summary(oid, 0))[1] == "dax"
    assert chain.breaker_state() is BreakerState.CLOSED
