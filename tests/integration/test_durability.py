"""The write model's durability settings: what the service checks and says at start."""

from __future__ import annotations

import contextlib
import logging

import asyncpg
import pytest

from uoom_orders.observability import metrics
from uoom_orders.write.durability import check_durability
from uoom_orders_devstack import LocalStack


def _gauge(setting: str) -> float:
    return float(metrics.POSTGRES_DURABILITY.labels(setting=setting)._value.get())


async def test_the_local_stack_commits_durably(database_url: str) -> None:
    """synchronous_commit on: an acknowledged commit survives a PostgreSQL crash."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        settings = {s.name: s for s in await check_durability(pool)}
    assert settings["synchronous_commit"].value == "on"
    assert settings["synchronous_commit"].safe
    assert _gauge("synchronous_commit") == 1


async def test_asynchronous_commit_is_reported(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The check reads the setting the service's own connections run with."""
    async with asyncpg.create_pool(
        database_url, min_size=1, max_size=1, server_settings={"synchronous_commit": "off"}
    ) as pool:
        with caplog.at_level(logging.WARNING, logger="uoom_orders.write.durability"):
            settings = {s.name: s for s in await check_durability(pool)}
    assert not settings["synchronous_commit"].safe
    assert _gauge("synchronous_commit") == 0
    warned = [r.getMessage() for r in caplog.records if "synchronous_commit=off" in r.getMessage()]
    assert len(warned) == 1
    assert "lose acknowledged writes" in warned[0]


async def test_acknowledged_commits_survive_a_postgres_crash(
    stack_servers: LocalStack, database_url: str
) -> None:
    """Commits acknowledged right before an immediate stop are all there after the restart."""
    server = stack_servers.postgres
    if server is None:
        pytest.skip("PostgreSQL is given from outside (TEST_DATABASE_URL)")
    acknowledged: list[int] = []
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE crash_probe (n int PRIMARY KEY)")
        for n in range(300):
            await conn.execute("INSERT INTO crash_probe VALUES ($1)", n)
            acknowledged.append(n)
        server.kill()  # immediate shutdown: no checkpoint, recovery from the WAL at start
    finally:
        server.start()  # whatever happened, leave the session's server running
        with contextlib.suppress(Exception):
            await conn.close(timeout=1)
    conn = await asyncpg.connect(database_url)
    try:
        kept = {r["n"] for r in await conn.fetch("SELECT n FROM crash_probe")}
    finally:
        await conn.close()
    assert set(acknowledged) <= kept, f"lost {sorted(set(acknowledged) - kept)}"
