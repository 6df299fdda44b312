"""amazon-dax-client behind the async item-client interface of the read tiers.

The DAX client is synchronous (threads and blocking sockets), so every call runs in a small
bounded thread pool of its own: the event loop never blocks, and a slow DAX cluster can hold
at most `max_workers` threads (the tier's timeout and breaker then take it out of the path).
"""

from __future__ import annotations

import asyncio
import functools
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


def connect_dax(endpoint: str, region: str) -> SyncItemClient:
    """The real amazon-dax-client. Its constructor connects at once: a bad or unreachable
    endpoint fails here, at start, with a message naming DAX_ENDPOINT."""
    try:
        from amazondax import AmazonDaxClient
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise ConfigError("DAX_ENDPOINT is set but amazon-dax-client is not installed") from error
    try:
        client: SyncItemClient = AmazonDaxClient(endpoint_url=endpoint, region_name=region)
    except Exception as error:
        raise ConfigError(f"DAX_ENDPOINT={endpoint!r} cannot be reached: {error}") from error
    return client
