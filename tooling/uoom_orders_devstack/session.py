"""The local stack plus every role of the service, in the foreground until Ctrl-C
(`python -m uoom_orders_devstack`)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
from dataclasses import replace

from uoom_orders.admin import prepare_stores
from uoom_orders.bootstrap import ROLES, running_service
from uoom_orders.config import Settings
from uoom_orders.relay import DEAD_LETTER_TOPIC_PARTITIONS, EVENT_TOPIC_PARTITIONS
from uoom_orders_devstack.stack import LocalStack, StackEndpoints

_log = logging.getLogger(__name__)

_SAMPLE_CREATE = (
    '{"request_id": "%(request_id)s", '
    '"customer_id": "123e4567-e89b-12d3-a456-426614174000", '
    '"restaurant_id": "550e8400-e29b-41d4-a716-446655440001", '
    '"items": [{"item_id": "pizza-margherita", "name": "Pizza Margherita", "quantity": 1, '
    '"unit_price": {"currency_code": "USD", "amount_minor": 1599}}], '
    '"delivery_location": {"latitude": 40.7128, "longitude": -74.006, '
    '"address": "123 Main St", "city": "New York", "postal_code": "10001"}}'
)


def _banner(endpoints: StackEndpoints, grpc_port: int, metrics_port: int) -> str:
    target = f"127.0.0.1:{grpc_port}"
    create = _SAMPLE_CREATE % {"request_id": "6f1c1e1e-0000-4000-8000-000000000001"}
    return "\n".join(
        [
            "",
            "Local stack is up:",
            f"  gRPC service      {target}",
            f"  PostgreSQL        {endpoints.database_url}",
            f"  Kafka (tansu)     {endpoints.kafka_bootstrap_servers}",
            f"  DynamoDB (moto)   {endpoints.dynamodb_endpoint}",
            f"  metrics           http://127.0.0.1:{metrics_port}/metrics"
            if metrics_port
            else "  metrics           off",
            "  roles             api, relay, projector (near cache → DynamoDB → PostgreSQL)",
            "",
            "Try:",
            f"  grpcurl -plaintext {target} list",
            f"  grpcurl -plaintext {target} describe uoom.orders.v1.OrderService",
            f"  grpcurl -plaintext {target} grpc.health.v1.Health/Check",
            f"  grpcurl -plaintext -d '{create}' {target} uoom.orders.v1.OrderService/CreateOrder",
            f'  grpcurl -plaintext -d \'{{"order_id": "<order_id from above>"}}\' {target} '
            "uoom.orders.v1.OrderService/GetOrderStatus",
            "",
            "Ctrl-C stops the service and every server.",
            "",
        ]
    )


async def run_dev_session(grpc_port: int, metrics_port: int = 0) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    defaults = Settings(database_url="postgresql://unused")
    # A restarted tansu has forgotten its topics: the launcher creates these again each start.
    stack = LocalStack(
        kafka_topics={
            defaults.kafka_topic: EVENT_TOPIC_PARTITIONS,
            defaults.dead_letter_topic: DEAD_LETTER_TOPIC_PARTITIONS,
        }
    )
    try:
        endpoints = await asyncio.to_thread(stack.start)
        env = endpoints.env() | {
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(grpc_port),
            "METRICS_PORT": str(metrics_port),
            # moto answers in milliseconds, with tails near 100 ms.
            "READ_TIER_TIMEOUT_MS": "500",
        }
        settings = replace(Settings.from_env(env), page_token_secret=secrets.token_bytes(32))
        # The AWS SDK reads its (dummy, local) credentials from the environment.
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        await prepare_stores(settings)
        async with running_service(settings, ROLES) as service:
            print(_banner(endpoints, service.port, metrics_port), flush=True)
            await stop.wait()
            _log.info("stopping")
    finally:
        await asyncio.to_thread(stack.stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
