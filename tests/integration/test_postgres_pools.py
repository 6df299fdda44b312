"""The service's pools return connections without asyncpg's reset query, and still never hand
out a connection with a transaction left open, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from uoom_orders.postgres_pools import postgres_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres_pool(database_url, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def test_a_transaction_left_open_is_rolled_back_before_the_next_use(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS marks (n int)")
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO marks VALUES (1)")
        # Returned without COMMIT or ROLLBACK (a call cut off mid-transaction).
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM marks") == 0


async def test_no_reset_query_runs_on_release(pool: asyncpg.Pool) -> None:
    # The one connection of the pool: what a session holds stays across uses (asyncpg's reset
    # query would have ended it), which is why nothing in the service may leave it there.
    async with pool.acquire() as conn:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("SET application_name = 'kept'")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == backend
        assert await conn.fetchval("SHOW application_name") == "kept"
