"""amazon-dax-client behind the async item-client interface of the read tiers.

The DAX client is synchronous (threads and blocking sockets), so every call runs in a small
bounded thread pool of its own: the event loop never blocks, and a slow DAX cluster can hold
at most `max_workers` threads (the tier's timeout and breaker then take it out of the path).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from uoom_orders.config import ConfigError


class SyncItemClient(Protocol):
    """What amazon-dax-client's AmazonDaxClient offers (and what a wrapper of it must offer)."""

    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def query(self, **kwargs: Any) -> dict[str, Any]: ...
    def close(self) -> None: ...


class AsyncDaxClient:
    """Runs a synchronous DAX client's calls in a bounded thread pool."""

    def __init__(self, client: SyncItemClient, *, max_workers: int = 8) -> None:
        self._client = client
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dax")
        self._closed = False

    async def _run(self, method: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        result: dict[str, Any] = await loop.run_in_executor(
            self._pool, functools.partial(method, **kwargs)
        )
        return result

    async def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self._client.get_item, kwargs)

    async def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self._client.batch_get_item, kwargs)

    async def query(self, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self._client.query, kwargs)

    def close(self) -> None:
        """Closes the client and its threads; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


class DaxUnreachable(ConnectionError):
    """The DAX cluster did not answer the client's connection; the tier treats it as down."""


def connect_dax(endpoint: str, region: str) -> SyncItemClient:
    """The real amazon-dax-client. Its constructor connects at once: an unreachable endpoint
    raises DaxUnreachable naming DAX_ENDPOINT."""
    try:
        from amazondax import AmazonDaxClient
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise ConfigError("DAX_ENDPOINT is set but amazon-dax-client is not installed") from error
    try:
        client: SyncItemClient = AmazonDaxClient(endpoint_url=endpoint, region_name=region)
    except Exception as error:
        raise DaxUnreachable(f"DAX_ENDPOINT={endpoint!r} cannot be reached: {error}") from error
    return client


class LazyDaxClient:
    """A DAX client that connects on first use, and again after a failed connection: a DAX
    cluster that is down when a replica starts makes the tier fail (its breaker then sends
    reads to the next tier) instead of stopping the start, so a cache outage never becomes a
    capacity outage. Thread-safe: calls come from the tier's thread pool."""

    def __init__(self, connect: Callable[[], SyncItemClient]) -> None:
        self._connect = connect
        self._client: SyncItemClient | None = None
        self._lock = threading.Lock()
        self._closed = False

    def try_connect(self) -> bool:
        """Connects now if not yet connected; whether a client is connected afterwards."""
        try:
            self._connected()
        except DaxUnreachable:
            return False
        return True

    def _connected(self) -> SyncItemClient:
        with self._lock:
            if self._closed:
                raise DaxUnreachable("the DAX client is closed")
            if self._client is None:
                self._client = self._connect()
            return self._client

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._connected().get_item(**kwargs)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._connected().batch_get_item(**kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._connected().query(**kwargs)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()
