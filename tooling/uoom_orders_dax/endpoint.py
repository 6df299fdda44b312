"""DaxEndpoint: the endpoint on a thread of its own, for test fixtures and scripts.

amazon-dax-client is synchronous and blocks its caller, so a server on the caller's own
event loop would never get to answer it. Here the server has its own thread and loop; start
and stop block until it listens or has closed. Usable with `with` and with `async with`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from uoom_orders_dax.server import DaxServer
from uoom_orders_dax.settings import DaxSettings
from uoom_orders_dax.shared_state import NodeAddress

_START_TIMEOUT_SECONDS = 30.0


class DaxEndpoint:
    """`DaxEndpoint(dynamodb_endpoint, item_ttl_seconds=…)`; `.endpoint` is dax://host:port."""

    def __init__(self, dynamodb_endpoint: str, **settings: Any) -> None:
        self.settings = DaxSettings(dynamodb_endpoint=dynamodb_endpoint, **settings)
        self._ports: tuple[int, ...] | None = None  # kept across restarts
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._server: DaxServer | None = None
        self.nodes: list[NodeAddress] = []
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the endpoint has not been started")
        return self._endpoint

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def start(self) -> DaxEndpoint:
        """Listens (on the same ports as before, after a stop) and returns once it does."""
        if self._thread is not None:
            return self
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="dax-endpoint", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=_START_TIMEOUT_SECONDS)
        except BaseException:
            self._thread.join(timeout=5)
            self._thread = None
            raise
        return self

    def stop(self) -> None:
        """Closes every listener and connection; safe to call twice."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout=30)
        self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def accepted_connections(self) -> dict[int, int]:
        """Connections accepted since the last start, by node number (0 is the leader)."""
        server = self._server
        return {} if server is None else dict(server.accepted)

    def clear_caches(self) -> None:
        """Empties both caches (they are thread-safe)."""
        if self._server is not None:
            self._server.clear_caches()

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        asyncio.run(self._serve(started))

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = DaxServer(self.settings, ports=self._ports)
            async with server:
                self._server = server
                self.nodes = server.nodes
                self._endpoint = server.endpoint
                self._ports = tuple(node.port for node in self.nodes)
                started.set_result(None)
                await self._stop_event.wait()
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
                return
            raise
        finally:
            self._server = None

    def __enter__(self) -> DaxEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> DaxEndpoint:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)
