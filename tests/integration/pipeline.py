"""The whole service in process for read-path tests: a pipeline (relay + projector) and any
number of API instances, each with its own near cache, all on one test's database, topic and
tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from uoom_orders.bootstrap import RunningService, running_service
from uoom_orders.config import Settings
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.dynamodb.tables import create_tables
from uoom_orders.relay import ensure_topics
from uoom_orders_client import OrderServiceClient
from uoom_orders_devstack import StackEndpoints


def use_stack_credentials(endpoints: StackEndpoints) -> None:
    """The AWS SDK reads credentials from the environment; the local endpoints take any."""
    for name, value in endpoints.env().items():
        if name.startswith("AWS_"):
            os.environ.setdefault(name, value)


@dataclass
class Api:
    service: RunningService
    client: OrderServiceClient


@dataclass
class Pipeline:
    endpoints: StackEndpoints
    env: dict[str, str]
    stack: AsyncExitStack
    apis: list[Api] = field(default_factory=list)

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env(self.env | overrides)

    async def start_api(self, **overrides: str) -> Api:
        """Another API replica (own near cache, own feed) on the same stores."""
        service = await self.stack.enter_async_context(
            running_service(self.settings(**overrides), ("api",))
        )
        # Without the client's session guarantees: these tests check what the server answers.
        client = await self.stack.enter_async_context(
            OrderServiceClient(
                f"127.0.0.1:{service.port}", default_timeout=10, session_guarantees=False
            )
        )
        if service.near_cache_feed is not None:
            assert await service.near_cache_feed.wait_live(within=20)
        api = Api(service, client)
        self.apis.append(api)
        return api


@asynccontextmanager
async def pipeline(
    endpoints: StackEndpoints,
    database_url: str,
    *,
    dynamodb_endpoint: str | None = None,
    roles: Collection[str] = ("relay", "projector"),
) -> AsyncIterator[Pipeline]:
    """The background `roles` running (relay and projector unless told otherwise); tables and
    topic created; no API yet."""
    use_stack_credentials(endpoints)
    tag = uuid.uuid4().hex[:10]
    # The stack's own environment first: it carries the local broker's settings.
    env = endpoints.env() | {
        "DATABASE_URL": database_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "PAGE_TOKEN_SECRET": "read-path-test-page-token-key",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "KAFKA_TOPIC": f"read-path-{tag}",
        "PROJECTOR_GROUP_ID": f"read-path-{tag}",
        "DYNAMODB_ENDPOINT": dynamodb_endpoint or endpoints.dynamodb_endpoint,
        "DYNAMODB_TABLE_PREFIX": f"rp-{tag}-",
        "READ_TIER_TIMEOUT_MS": "1000",
        "BREAKER_RESET_SECONDS": "0.5",
        "RELAY_POLL_INTERVAL_SECONDS": "0.2",
    }
    settings = Settings.from_env(env)
    async with dynamodb_client(
        region=endpoints.aws_region, endpoint=settings.dynamodb_endpoint
    ) as client:
        await create_tables(client, settings.dynamodb_table_prefix)
    await ensure_topics(endpoints.kafka_bootstrap_servers, {settings.kafka_topic: 6})
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running_service(settings, roles))
        yield Pipeline(endpoints, env, stack)


async def recreate_tables(pipeline: Pipeline) -> None:
    settings = pipeline.settings()
    async with dynamodb_client(
        region=settings.aws_region, endpoint=settings.dynamodb_endpoint
    ) as client:
        await create_tables(client, settings.dynamodb_table_prefix)


async def dynamodb_item(pipeline: Pipeline, order_id: str) -> dict[str, Any] | None:
    settings = pipeline.settings()
    async with dynamodb_client(
        region=settings.aws_region, endpoint=settings.dynamodb_endpoint
    ) as client:
        reply = await client.get_item(
            TableName=f"{settings.dynamodb_table_prefix}order-status",
            Key={"orderId": {"S": order_id}},
            ConsistentRead=True,
        )
    item: dict[str, Any] | None = reply.get("Item")
    return item
