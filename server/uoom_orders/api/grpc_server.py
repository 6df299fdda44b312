"""The grpc.aio server: the order service plus health and reflection, always on."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from uoom.orders.v1 import order_service_pb2

from uoom_orders.api.servicer import OrderServicer, add_to_server
from uoom_orders.observability import metrics
from uoom_orders.observability.rate_limited_log import RateLimitedLog

ORDER_SERVICE = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
_METHODS = frozenset(
    m.name for m in order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods
)
# The logger grpc's asyncio server logs its handler failures to.
_GRPC_CORE_LOGGER = "grpc._cython.cygrpc"

_log = logging.getLogger(__name__)

# Requests are small; anything near this is a mistake or an attack.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def server_credentials(
    cert_file: str, key_file: str, client_ca_file: str | None
) -> grpc.ServerCredentials:
    """TLS from PEM files; with a client CA, clients must present a certificate it signed."""
    with open(cert_file, "rb") as cert, open(key_file, "rb") as key:
        pair = (key.read(), cert.read())
    client_ca = None
    if client_ca_file is not None:
        with open(client_ca_file, "rb") as ca:
            client_ca = ca.read()
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


class _ClientGoneFilter(logging.Filter):
    """grpc logs an ERROR with a traceback when it cannot send an answer because the caller has
    gone (its deadline passed or it cancelled between our return and the send): the caller's
    doing, not a fault of the service. This turns each such record into a count and a
    rate-limited one-line warning."""

    _PREFIX = "ExecuteBatchError raised in core by servicer method"

    def __init__(self) -> None:
        super().__init__()
        self._log = RateLimitedLog(_log)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(self._PREFIX):
            return True
        method = message.rpartition("/")[2].rstrip("]")
        if method not in _METHODS:  # a label from our own list only, never from a message
            method = "other"
        metrics.RPC_CANCELLED.labels(method=method).inc()
        self._log.warning("gone", "%s: the caller left before its answer was sent", method)
        return False


class _CancelRequestNoise:
    """A loop exception handler for one known failure of asyncpg's cancel requests.

    When a call's deadline cuts off a PostgreSQL statement, asyncpg sends PostgreSQL a cancel
    request on a new connection; when that connection's TLS negotiation is cut short, asyncpg
    (0.30, 0.31) leaves a future's ConnectionError("unexpected connection_lost() call")
    unretrieved, which asyncio logs as an ERROR with a traceback
    (https://github.com/MagicStack/asyncpg/issues/1310). asyncpg then replaces the connection;
    nothing is lost. That one case becomes a rate-limited warning; everything else goes to the
    handler that was there before."""

    _MESSAGE = "unexpected connection_lost() call"

    def __init__(self, log: RateLimitedLog) -> None:
        self._log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._previous = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self._handle)

    def uninstall(self) -> None:
        if self._loop is not None and self._loop.get_exception_handler() == self._handle:
            self._loop.set_exception_handler(self._previous)
        self._loop = None

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if type(error) is ConnectionError and str(error) == self._MESSAGE:
            self._log.warning(
                "cancel-request",
                "a cancel request to PostgreSQL for a cut-off call failed (asyncpg issue "
                "1310); the connection is replaced",
            )
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


class GrpcServer:
    """Serves until stopped; `stop()` drains in-flight calls within the grace period."""

    def __init__(
        self,
        servicer: OrderServicer,
        host: str,
        port: int,
        grace: float,
        *,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self._grace = grace
        self.health = health.aio.HealthServicer()
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        add_to_server(servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (ORDER_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        address = f"{host}:{port}"
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        self._stopped = False
        self._client_gone = _ClientGoneFilter()
        self._cancel_noise = _CancelRequestNoise(RateLimitedLog(_log))

    async def start(self) -> None:
        logging.getLogger(_GRPC_CORE_LOGGER).addFilter(self._client_gone)
        self._cancel_noise.install()
        await self._server.start()
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set("", serving)
        await self.health.set(ORDER_SERVICE, serving)
        _log.info("gRPC server listening on port %d", self.port)

    async def stop(self) -> None:
        """Health NOT_SERVING first, so balancers move away, then drain. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self._grace)
        logging.getLogger(_GRPC_CORE_LOGGER).removeFilter(self._client_gone)
        self._cancel_noise.uninstall()
        _log.info("gRPC server stopped")

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()

    async def __aenter__(self) -> GrpcServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
