"""Shared fixtures: the local stack (started only when a test asks for it) and per-test databases.

Endpoints from outside replace the local servers: TEST_DATABASE_URL, TEST_KAFKA_BOOTSTRAP_SERVERS,
TEST_DYNAMODB_ENDPOINT (TEST_ADMIN_DATABASE_URL optionally names the database used for CREATE
DATABASE; by default the same server's `postgres` database).
"""

from __future__ import annotations

import os

# Before gRPC is imported (the fixtures below import the service). Its fork handlers, on by
# default, run in every child this process forks while in-process servers and clients have
# gRPC threads; PostgreSQL is started as another user, which rules out vfork, and now and then
# a restarted postmaster died with SIGSEGV (exit -11) before its first log line (seen in CI,
# test_postgres_down_reads_still_answer_from_the_tiers, then every later test without
# PostgreSQL). No test uses gRPC across a fork: every child execs at once. The fault-injection
# command does the same (uoom_orders_chaos/__main__.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from uoom_orders.write.migrate import apply_migrations
from uoom_orders_devstack import LocalStack, StackEndpoints

TEMPLATE_DATABASE = "orders_template"
_TESTS_DIR = Path(__file__).parent
_FOLDER_MARKERS = {"integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks tests by folder: tests/integration → integration, tests/e2e → e2e."""
    for item in items:
        try:
            folder = item.path.relative_to(_TESTS_DIR).parts[0]
        except ValueError:
            continue
        marker = _FOLDER_MARKERS.get(folder)
        if marker is not None:
            item.add_marker(marker)


def _database_dsn(server_dsn: str, database: str) -> str:
    return urlsplit(server_dsn)._replace(path=f"/{database}").geturl()


@pytest.fixture(scope="session")
def stack_servers() -> Iterator[LocalStack]:
    """The launcher itself, for tests that stop, kill or restart a server on its port.

    Without the DAX-protocol endpoint (so `env()` has no DAX_ENDPOINT): these tests pin what
    the tiers below DAX answer (`x-served-by: dynamodb`, a write straight to DynamoDB read
    back at once), which an item cache in front would change. The DAX tier's tests start
    endpoints of their own, with the item TTLs, node counts and restarts each one needs.
    """
    stack = LocalStack(
        database_url=os.environ.get("TEST_DATABASE_URL") or None,
        admin_database_url=os.environ.get("TEST_ADMIN_DATABASE_URL") or None,
        kafka_bootstrap_servers=os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS") or None,
        dynamodb_endpoint=os.environ.get("TEST_DYNAMODB_ENDPOINT") or None,
        dax=False,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def local_stack(stack_servers: LocalStack) -> StackEndpoints:
    """The endpoints of the session's stack (local servers or the TEST_* ones)."""
    return stack_servers.endpoints


@pytest.fixture(scope="session")
async def migrated_template(local_stack: StackEndpoints) -> AsyncIterator[str]:
    """A database `orders_template` with every migration applied; yields its DSN."""
    admin = await asyncpg.connect(local_stack.admin_database_url)
    try:
        # Left over by an interrupted run against an outside server.
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DATABASE}")
    finally:
        await admin.close()
    dsn = _database_dsn(local_stack.admin_database_url, TEMPLATE_DATABASE)
    await apply_migrations(dsn)
    yield dsn
    admin = await asyncpg.connect(local_stack.admin_database_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def database_url(local_stack: StackEndpoints, migrated_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test (a copy of the template); dropped afterwards."""
    name = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(local_stack.admin_database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE}")
    finally:
        await admin.close()
    yield _database_dsn(local_stack.admin_database_url, name)
    admin = await asyncpg.connect(local_stack.admin_database_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()
