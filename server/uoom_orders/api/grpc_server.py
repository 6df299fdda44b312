"""The grpc.aio server: the order service plus health and reflection, always on."""

from __future__ import annotations

import logging
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from uoom.orders.v1 import order_service_pb2, order_service_pb2_grpc

from uoom_orders.api.servicer import OrderServicer

ORDER_SERVICE = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name

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
        order_service_pb2_grpc.add_OrderServiceServicer_to_server(servicer, self._server)
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

    async def start(self) -> None:
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
