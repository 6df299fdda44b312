"""The service in process, on a fresh database, reached through the generated client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.integration.projector_support import drop_tables, dynamodb, unique
from uoom_orders.bootstrap import running_service
from uoom_orders.config import Settings
from uoom_orders.dynamodb.tables import TableNames, create_tables
from uoom_orders_client import OrderServiceClient
from uoom_orders_devstack import StackEndpoints


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "PAGE_TOKEN_SECRET": "integration-test-page-token-key",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "READ_TIERS": "none",
        }
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[OrderServiceClient]:
    async with (
        running_service(settings) as service,
        OrderServiceClient(f"127.0.0.1:{service.port}", default_timeout=10) as client,
    ):
        yield client


@pytest.fixture
async def ddb(local_stack: StackEndpoints) -> AsyncIterator[Any]:
    """A DynamoDB client on the stack's endpoint."""
    async with dynamodb(local_stack) as client:
        yield client


@pytest.fixture
async def tables(ddb: Any) -> AsyncIterator[TableNames]:
    """A fresh pair of read-model tables, dropped afterwards."""
    prefix = unique("t") + "-"
    await create_tables(ddb, prefix)
    yield TableNames.for_prefix(prefix)
    await drop_tables(ddb, TableNames.for_prefix(prefix))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection, to look behind the API."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()
