"""A fake OrderService served over a real grpc.aio server on a free loopback port, for the
client's unit tests (the client speaks to it through real channels)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc.aio
from uoom.orders.v1 import order_service_pb2_grpc

F = TypeVar("F", bound=order_service_pb2_grpc.OrderServiceServicer)


@contextlib.asynccontextmanager
async def serving(fake: F) -> AsyncIterator[tuple[F, str]]:
    """Serves `fake`; yields it and its host:port; stops the server on exit."""
    server = grpc.aio.server()
    order_service_pb2_grpc.add_OrderServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
