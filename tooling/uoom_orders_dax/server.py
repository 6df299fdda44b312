"""The endpoint's lifecycle: entering means every node is listening, leaving means every
listener and connection is closed and the DynamoDB client released."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections import Counter
from collections.abc import Callable, Sequence

from uoom_orders_dax import connection
from uoom_orders_dax.caches import TtlCache
from uoom_orders_dax.dynamodb import DynamoDBForwarder
from uoom_orders_dax.settings import DaxSettings
from uoom_orders_dax.shared_state import NodeAddress, SharedState


def _advertised(server: asyncio.Server) -> tuple[str, int]:
    """The address and port clients are told to use: the listener's own (a host name is
    already resolved there), and loopback for a wildcard listener."""
    host, port = server.sockets[0].getsockname()[:2]
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        return ("::1" if address.version == 6 else "127.0.0.1"), port
    return str(address), port


class DaxServer:
    """A DAX-protocol endpoint in front of a DynamoDB endpoint; an async context manager."""

    def __init__(self, settings: DaxSettings, *, ports: Sequence[int] | None = None) -> None:
        """`ports` overrides the settings' ports (an endpoint restarted where it was)."""
        self.settings = settings
        self._ports = tuple(ports) if ports is not None else settings.node_ports()
        if len(self._ports) != settings.nodes:
            raise ValueError("one port per node")
        self._stack = contextlib.AsyncExitStack()
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._state: SharedState | None = None
        self.accepted: Counter[int] = Counter()
        """Connections accepted, by node number (0 is the leader): who the client reached."""

    @property
    def state(self) -> SharedState:
        if self._state is None:
            raise RuntimeError("the endpoint is not running")
        return self._state

    @property
    def nodes(self) -> list[NodeAddress]:
        return list(self.state.nodes)

    @property
    def endpoint(self) -> str:
        """The discovery endpoint for amazon-dax-client: dax://host:port of the first node."""
        first = self.state.nodes[0]
        host = f"[{first.host}]" if ":" in first.host else first.host
        return f"dax://{host}:{first.port}"

    def clear_caches(self) -> None:
        self.state.items.clear()
        self.state.queries.clear()

    async def __aenter__(self) -> DaxServer:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    async def _start(self) -> None:
        s = self.settings
        forwarder = await self._stack.enter_async_context(
            DynamoDBForwarder(
                s.dynamodb_endpoint,
                region=s.region,
                access_key_id=s.aws_access_key_id,
                secret_access_key=s.aws_secret_access_key,
            )
        )
        state = SharedState(
            forwarder,
            TtlCache(s.item_ttl_seconds, s.item_cache_entries),
            TtlCache(s.query_ttl_seconds, s.query_cache_entries),
        )
        for number, port in enumerate(self._ports):
            server = await asyncio.start_server(self._connected(state, number), s.host, port)
            self._servers.append(server)
            state.nodes.append(NodeAddress(*_advertised(server)))
        self._state = state

    def _connected(
        self, state: SharedState, node: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], asyncio.Future[None]]:
        def on_connection(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> asyncio.Future[None]:
            self.accepted[node] += 1
            task = asyncio.ensure_future(connection.serve(state, reader, writer))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
            return task

        return on_connection

    async def _stop(self) -> None:
        """Safe to call twice: listeners, then open connections, then DynamoDB."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        for server in servers:
            await server.wait_closed()
        self._state = None
        await self._stack.aclose()
