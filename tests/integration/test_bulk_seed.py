"""The benchmark's bulk seed stores what the service would: reconciliation, which compares
PostgreSQL with both read-model tables through the service's own codecs, finds no difference,
and an API replica serves the orders from the read model as seeded."""

from __future__ import annotations

import asyncpg

from tests.integration.pipeline import pipeline
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.projector import Reconciler
from uoom_orders_bench.bulk_seed import seed_bulk
from uoom_orders_client import order_service_pb2
from uoom_orders_devstack import StackEndpoints

ORDERS = 60  # more than one BatchWriteItem of 25, and both tables


async def test_bulk_seeded_orders_agree_with_postgres_and_are_served_from_dynamodb(
    local_stack: StackEndpoints, database_url: str
) -> None:
    async with pipeline(local_stack, database_url, roles=()) as stack:
        seeded = await seed_bulk(stack.env, ORDERS, details=True)
        assert len(seeded.summaries) == ORDERS
        assert seeded.items_written == 2 * ORDERS
        settings = stack.settings()
        async with (
            dynamodb_client(region=settings.aws_region, endpoint=settings.dynamodb_endpoint) as ddb,
            asyncpg.create_pool(settings.database_url, min_size=1, max_size=2) as pool,
        ):
            report = await Reconciler(pool, ddb, settings.dynamodb_table_prefix).run(dry_run=True)
        assert report.checked == ORDERS
        assert report.differences == []

        api = await stack.start_api()
        for summary in seeded.summaries[:5]:
            reply, info = await api.client.get_order_status_with_metadata(
                order_service_pb2.GetOrderStatusRequest(order_id=summary.order_id)
            )
            assert info.served_by == "dynamodb"
            assert reply.order == summary
