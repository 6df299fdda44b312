"""All the wiring: stores, handlers, queries and the server, started and stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import asyncpg

from uoom_orders.api.grpc_server import GrpcServer
from uoom_orders.api.servicer import OrderServicer
from uoom_orders.application.queries import OrderQueries
from uoom_orders.config import Settings
from uoom_orders.read.page_token import PageTokenCodec
from uoom_orders.read.postgres_store import PostgresOrderReadStore
from uoom_orders.write.unit_of_work import PostgresUnitOfWork

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningService:
    server: GrpcServer
    pool: asyncpg.Pool

    @property
    def port(self) -> int:
        return self.server.port


def _page_tokens(settings: Settings) -> PageTokenCodec:
    key = settings.page_token_secret
    if not key:
        _log.warning(
            "PAGE_TOKEN_SECRET is not set: using a random key, so page tokens do not "
            "survive a restart and do not work across replicas"
        )
        key = secrets.token_bytes(32)
    return PageTokenCodec(key)


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[RunningService]:
    """Starts the service; on exit stops taking calls, drains, then closes the pool."""
    async with AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            command_timeout=30,
        )
        stack.push_async_callback(pool.close)
        queries = OrderQueries(PostgresOrderReadStore(pool), _page_tokens(settings))
        servicer = OrderServicer(lambda: PostgresUnitOfWork(pool), queries)
        server = GrpcServer(
            servicer, settings.grpc_host, settings.grpc_port, settings.shutdown_grace_seconds
        )
        await stack.enter_async_context(server)
        yield RunningService(server=server, pool=pool)


async def serve_until_signalled(settings: Settings) -> None:
    """Runs the service until SIGTERM or SIGINT, then shuts it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_service(settings):
            await stop.wait()
            _log.info("signal received: shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
