"""The grpc.aio server: the order service plus health and reflection, always on."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from uoom.orders.v1 import order_service_pb2

from uoom_orders.api.caller_fault_logs import (
    GRPC_CORE_LOGGER,
    CancelRequestNoise,
    ClientGoneFilter,
)
from uoom_orders.api.request_decoding import tolerant_deserializer
from uoom_orders.api.servicer import OrderServicer
from uoom_orders.observability.rate_limited_log import RateLimitedLog
from uoom_orders.runtime.lifecycle import LongRunning

ORDER_SERVICE = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
_METHODS = frozenset(
    m.name for m in order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods
)

_log = logging.getLogger(__name__)

# Requests are small; anything near this is a mistake or an attack.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Keepalive:
    """HTTP/2 keepalive: the server pings a connection quiet for `time_seconds` and closes it
    when no answer comes within `timeout_seconds`. A watch stream can be quiet for minutes;
    the pings keep proxies and NATs from dropping it, and find dead callers."""

    time_seconds: float = 30.0
    timeout_seconds: float = 10.0

    def options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_time_ms", int(self.time_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.timeout_seconds * 1000)),
            # Keep pinging a connection whose streams are open but quiet (the default stops
            # after two pings without data).
            ("grpc.http2.max_pings_without_data", 0),
            # Clients may ping as often as every 10 s (e.g. a client keepalive of 10-30 s).
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]


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


def add_order_service(servicer: OrderServicer, server: grpc.aio.Server) -> None:
    """Registers the servicer's methods as the generated code does, with deserializers that
    hand undecodable requests to the servicer instead of failing in grpc."""
    service = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"]
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_class = getattr(order_service_pb2, method.input_type.name)
        response_class = getattr(order_service_pb2, method.output_type.name)
        make_handler = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make_handler(
            getattr(servicer, method.name),
            request_deserializer=tolerant_deserializer(request_class),
            response_serializer=_serializer(response_class),
        )
    generic = grpc.method_handlers_generic_handler(ORDER_SERVICE, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(ORDER_SERVICE, handlers)


def _serializer(response_class: type[Message]) -> Callable[[Message | bytes], bytes]:
    """The response's encoder; an answer the servicer encoded already (wire.status_answer)
    goes out as it is."""
    encode = response_class.SerializeToString

    def serialize(response: Message | bytes) -> bytes:
        return response if isinstance(response, bytes) else encode(response)

    return serialize


class GrpcServer(LongRunning):
    """Serves until stopped; `stop()` drains in-flight calls within the grace period.

    `before_drain` runs once health says NOT_SERVING and before the drain: what must end
    calls that would otherwise hold the grace period (the watches' streams)."""

    def __init__(
        self,
        servicer: OrderServicer,
        host: str,
        port: int,
        grace: float,
        *,
        credentials: grpc.ServerCredentials | None = None,
        keepalive: Keepalive | None = None,
        before_drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._grace = grace
        self._before_drain = before_drain
        self.health = health.aio.HealthServicer()
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
                *(keepalive or Keepalive()).options(),
            ]
        )
        add_order_service(servicer, self._server)
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
        self._client_gone = ClientGoneFilter(_METHODS)
        self._cancel_noise = CancelRequestNoise(RateLimitedLog(_log))

    async def start(self) -> None:
        logging.getLogger(GRPC_CORE_LOGGER).addFilter(self._client_gone)
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
        if self._before_drain is not None:
            await self._before_drain()
        await self._server.stop(self._grace)
        logging.getLogger(GRPC_CORE_LOGGER).removeFilter(self._client_gone)
        self._cancel_noise.uninstall()
        _log.info("gRPC server stopped")
