"""The baseline: a bare grpc.aio server answering status reads from a dict, nothing else.

``python -m uoom_orders_bench.bare_server --port N [--orders-file PATH | --synthetic N]``

It is the ceiling for Python gRPC on the machine: same generated service, same server options,
uvloop like the service, and the same ``x-served-by`` trailing metadata, so that the only
difference from the service is the work the service does. It serves the orders in
``--orders-file`` (a serialized BatchGetOrderStatusResponse, written by the benchmark from the
service's own answers, so both send the same bytes) or N synthetic ones. Health is on, for the
readiness check; reflection is not. SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from uoom.orders.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from uoom_orders.api.grpc_server import MAX_MESSAGE_BYTES, ORDER_SERVICE

SERVED_BY = "x-served-by"
TIER = "bare"
_SERVED_BY_METADATA = ((SERVED_BY, TIER),)


class BareOrderService(order_service_pb2_grpc.OrderServiceServicer):
    """GetOrderStatus and BatchGetOrderStatus from a dict of prebuilt OrderSummary messages."""

    def __init__(self, orders: Sequence[order_pb2.OrderSummary]) -> None:
        self._orders = {order.order_id: order for order in orders}

    async def GetOrderStatus(
        self,
        request: order_service_pb2.GetOrderStatusRequest,
        context: grpc.aio.ServicerContext[
            order_service_pb2.GetOrderStatusRequest, order_service_pb2.GetOrderStatusResponse
        ],
    ) -> order_service_pb2.GetOrderStatusResponse:
        order = self._orders.get(request.order_id)
        if order is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"order {request.order_id} not found")
        context.set_trailing_metadata(_SERVED_BY_METADATA)
        return order_service_pb2.GetOrderStatusResponse(order=order)

    async def BatchGetOrderStatus(
        self,
        request: order_service_pb2.BatchGetOrderStatusRequest,
        context: grpc.aio.ServicerContext[
            order_service_pb2.BatchGetOrderStatusRequest,
            order_service_pb2.BatchGetOrderStatusResponse,
        ],
    ) -> order_service_pb2.BatchGetOrderStatusResponse:
        found: list[order_pb2.OrderSummary] = []
        missing: list[str] = []
        for order_id in dict.fromkeys(request.order_ids):
            order = self._orders.get(order_id)
            if order is None:
                missing.append(order_id)
            else:
                found.append(order)
        context.set_trailing_metadata(_SERVED_BY_METADATA)
        return order_service_pb2.BatchGetOrderStatusResponse(
            orders=found, missing_order_ids=missing
        )


def synthetic_orders(count: int) -> list[order_pb2.OrderSummary]:
    """`count` plausible status records with stable ids (uuid5 of their number)."""
    namespace = uuid.UUID("5b0f4a70-3e52-4c1e-9a55-7b1c2b7f0a11")
    orders = []
    for number in range(count):
        order = order_pb2.OrderSummary(
            order_id=str(uuid.uuid5(namespace, str(number))),
            status=order_pb2.ORDER_STATUS_PENDING,
            customer_id=str(uuid.uuid5(namespace, f"customer-{number}")),
            restaurant_id=str(uuid.uuid5(namespace, f"restaurant-{number}")),
            channel_id="default-channel",
            total=order_pb2.Money(currency_code="USD", amount_minor=1599),
            tracking_code=f"TRK{number:010d}",
            version=1,
        )
        order.created_at.GetCurrentTime()
        order.updated_at.CopyFrom(order.created_at)
        orders.append(order)
    return orders


def load_orders(path: Path) -> list[order_pb2.OrderSummary]:
    """The orders in a serialized BatchGetOrderStatusResponse."""
    response = order_service_pb2.BatchGetOrderStatusResponse.FromString(path.read_bytes())
    return list(response.orders)


async def serve(host: str, port: int, orders: Sequence[order_pb2.OrderSummary]) -> None:
    """Serves until SIGTERM or SIGINT."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    # The generated base class answers UNIMPLEMENTED for the RPCs the baseline does not serve.
    servicer = BareOrderService(orders)  # type: ignore[abstract]
    order_service_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        await health_servicer.set("", serving)
        await health_servicer.set(ORDER_SERVICE, serving)
        print(f"bare server on {host}:{port} with {len(orders)} orders", flush=True)
        await stop.wait()
    finally:
        await server.stop(0.5)


def build_parser() -> argparse.ArgumentParser:
    """The command line of the bare server."""
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.bare_server",
        description="Baseline for the benchmark: OrderService status reads from a dict.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--orders-file", type=Path, help="serialized BatchGetOrderStatusResponse")
    source.add_argument(
        "--synthetic", type=int, default=1000, help="serve N synthetic orders (default 1000)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the bare server until signalled."""
    import uvloop

    args = build_parser().parse_args(argv)
    orders = load_orders(args.orders_file) if args.orders_file else synthetic_orders(args.synthetic)
    try:
        uvloop.run(serve(args.host, args.port, orders))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
