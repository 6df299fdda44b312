"""The whole service in one process, as `python -m uoom_orders_devstack` runs it: API, relay and
projector, on tables, a topic and a consumer group of its own."""

from __future__ import annotations

import asyncio
import sys
import uuid

from tests.e2e.conftest import ServiceProcess, StartService, service_env
from uoom_orders_devstack import StackEndpoints


def own_pipeline_env() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "KAFKA_TOPIC": f"e2e-{tag}",
        "PROJECTOR_GROUP_ID": f"e2e-{tag}",
        "DYNAMODB_TABLE_PREFIX": f"e2e-{tag}-",
        "RELAY_POLL_INTERVAL_SECONDS": "0.2",
        "READ_TIER_TIMEOUT_MS": "1000",
    }


async def start_full_service(
    start_service: StartService,
    local_stack: StackEndpoints,
    database_url: str,
    extra_env: dict[str, str] | None = None,
) -> ServiceProcess:
    """Creates the read-model tables, then runs `serve --roles api,relay,projector`."""
    env = own_pipeline_env() | (extra_env or {})
    created = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uoom_orders",
        "create-tables",
        env=service_env(local_stack, database_url, 0) | env,
    )
    assert await created.wait() == 0
    return await start_service("--roles", "api,relay,projector", extra_env=env)
