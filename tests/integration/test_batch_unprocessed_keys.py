"""BatchGetOrderStatus when DynamoDB answers BatchGetItem with UnprocessedKeys.

moto never does, so the API's DynamoDB client goes through a proxy in front of it
(tests/support/dynamodb_proxy.py) that moves some found items into UnprocessedKeys.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.builders import create_request
from tests.integration.pipeline import use_stack_credentials
from tests.support.dynamodb_proxy import DynamoDBProxy, UnprocessedKeys
from uoom_orders.bootstrap import running_service
from uoom_orders.config import Settings
from uoom_orders.dynamodb import TableNames
from uoom_orders.projector import Reconciler
from uoom_orders_client import OrderServiceClient, order_service_pb2
from uoom_orders_devstack import StackEndpoints

ORDERS = 30
TIER_TIMEOUT_SECONDS = 3.0  # roomy: a loaded machine stretches every round trip
BREAKER_THRESHOLD = 3


@dataclass
class BatchApi:
    client: OrderServiceClient
    handler: UnprocessedKeys
    order_ids: list[str]


@pytest.fixture
async def placed(
    local_stack: StackEndpoints, database_url: str, ddb: Any, tables: TableNames
) -> tuple[list[str], str]:
    """ORDERS orders in PostgreSQL, projected into fresh tables; returns their ids and the
    tables' prefix (the tables are dropped by their own fixture)."""
    use_stack_credentials(local_stack)
    prefix = tables.status.removesuffix("order-status")
    settings = _settings(local_stack, database_url, local_stack.dynamodb_endpoint, prefix)
    async with (
        running_service(settings, ("api",)) as service,
        OrderServiceClient(
            f"127.0.0.1:{service.port}", default_timeout=10, session_guarantees=False
        ) as client,
    ):
        ids = [(await client.create_order(create_request())).order.order_id for _ in range(ORDERS)]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        report = await Reconciler(pool, ddb, prefix).run()
    finally:
        await pool.close()
    assert report.repaired == 2 * ORDERS
    return ids, prefix


def _settings(
    endpoints: StackEndpoints, database_url: str, dynamodb_endpoint: str, prefix: str
) -> Settings:
    return Settings.from_env(
        endpoints.env()
        | {
            "DATABASE_URL": database_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "DYNAMODB_ENDPOINT": dynamodb_endpoint,
            "DYNAMODB_TABLE_PREFIX": prefix,
            # The DynamoDB tier alone above PostgreSQL.
            "READ_TIERS": "dynamodb",
            "READ_TIER_TIMEOUT_MS": str(int(TIER_TIMEOUT_SECONDS * 1000)),
            "BREAKER_FAILURE_THRESHOLD": str(BREAKER_THRESHOLD),
            "BREAKER_RESET_SECONDS": "30",  # once open, it stays open for the whole test
        }
    )


@asynccontextmanager
async def api_behind_proxy(
    local_stack: StackEndpoints,
    database_url: str,
    placed: tuple[list[str], str],
    handler: UnprocessedKeys,
) -> AsyncIterator[BatchApi]:
    ids, prefix = placed
    proxy = DynamoDBProxy(local_stack.dynamodb_endpoint, {"BatchGetItem": handler})
    async with proxy:
        settings = _settings(local_stack, database_url, proxy.endpoint, prefix)
        async with (
            running_service(settings, ("api",)) as service,
            OrderServiceClient(
                f"127.0.0.1:{service.port}", default_timeout=10, session_guarantees=False
            ) as client,
        ):
            yield BatchApi(client, handler, ids)
            # Leaving the service drains the write-backs of what PostgreSQL answered.
            assert service.write_back is not None


async def batch_get(
    client: OrderServiceClient, order_ids: list[str]
) -> tuple[order_service_pb2.BatchGetOrderStatusResponse, str | None]:
    reply, info = await client.batch_get_order_status_with_metadata(
        order_service_pb2.BatchGetOrderStatusRequest(order_ids=order_ids)
    )
    return reply, info.served_by


async def test_unprocessed_keys_are_retried_until_dynamodb_answers_them_all(
    local_stack: StackEndpoints, database_url: str, placed: tuple[list[str], str]
) -> None:
    handler = UnprocessedKeys.first_calls(3)
    async with api_behind_proxy(local_stack, database_url, placed, handler) as api:
        reply, served_by = await batch_get(api.client, api.order_ids)
    assert [o.order_id for o in reply.orders] == api.order_ids
    assert list(reply.missing_order_ids) == []
    # Every order came from DynamoDB: the unprocessed ones were asked again, not left to
    # PostgreSQL.
    assert served_by == "dynamodb"
    assert handler.held_back >= ORDERS // 2
    assert handler.calls >= 4  # one call, then one per round of unprocessed keys


async def test_keys_dynamodb_never_processes_fall_through_to_postgres_in_bounded_time(
    local_stack: StackEndpoints, database_url: str, placed: tuple[list[str], str]
) -> None:
    ids, _ = placed
    stuck = ids[::6]
    # A throttled table is slow too: a fifth of the tier's budget per call, so five calls
    # and the backoff between them do not fit in it.
    handler = UnprocessedKeys.always(stuck, delay=TIER_TIMEOUT_SECONDS / 5)
    ghost = str(uuid.uuid4())
    asked = [*ids, ghost]
    async with api_behind_proxy(local_stack, database_url, placed, handler) as api:
        # As many batches as would open the breaker if each counted as a failure.
        for _ in range(BREAKER_THRESHOLD):
            started = time.monotonic()
            reply, served_by = await asyncio.wait_for(batch_get(api.client, asked), 10)
            elapsed = time.monotonic() - started
            assert [o.order_id for o in reply.orders] == ids
            assert list(reply.missing_order_ids) == [ghost]
            # DynamoDB answered what it processed; only the rest went to PostgreSQL.
            assert served_by == "dynamodb,postgres"
            # Retries within the tier's budget, then PostgreSQL: no hang.
            assert elapsed < TIER_TIMEOUT_SECONDS + 2.0, f"the batch took {elapsed:.2f}s"
        # Throttled keys are not a DynamoDB failure: the tier still serves single reads.
        single, info = await api.client.get_order_status_with_metadata(
            order_service_pb2.GetOrderStatusRequest(order_id=ids[1])
        )
        assert (info.served_by, single.order.order_id) == ("dynamodb", ids[1])
    assert handler.calls >= 2 * BREAKER_THRESHOLD  # each batch retried the stuck keys
