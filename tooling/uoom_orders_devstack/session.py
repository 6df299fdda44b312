"""The local stack plus every role of the service, in the foreground until Ctrl-C
(`python -m uoom_orders_devstack`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Mapping, Sequence
from dataclasses import replace

from uoom_orders.admin import prepare_stores
from uoom_orders.bootstrap import ROLES, running_service
from uoom_orders.config import Settings
from uoom_orders.relay import DEAD_LETTER_TOPIC_PARTITIONS, EVENT_TOPIC_PARTITIONS
from uoom_orders_devstack.dax_endpoint import DEPLOYED_ITEM_TTL_SECONDS
from uoom_orders_devstack.dynamodb_admin import DynamoDBAdmin
from uoom_orders_devstack.ports import free_port
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


_TIER_NAMES = {
    "near-cache": "near cache",
    "dax": "DAX",
    "dynamodb": "DynamoDB",
    "postgres": "PostgreSQL",
}


def read_path_line(tiers: Sequence[str]) -> str:
    """The read path as the service assembled it, e.g. near cache → DAX → DynamoDB → PostgreSQL."""
    return " → ".join(_TIER_NAMES.get(tier, tier) for tier in tiers)


def _banner(
    endpoints: StackEndpoints,
    grpc_port: int,
    metrics_port: int,
    tiers: Sequence[str],
    dax_item_ttl_seconds: float,
    admin_url: str | None,
) -> str:
    target = f"127.0.0.1:{grpc_port}"
    create = _SAMPLE_CREATE % {"request_id": "6f1c1e1e-0000-4000-8000-000000000001"}
    dax = (
        f"{endpoints.dax_endpoint} (uoom_orders_dax, item cache {dax_item_ttl_seconds:g} s)"
        if endpoints.dax_endpoint
        else "off"
    )
    return "\n".join(
        [
            "",
            "Local stack is up:",
            f"  gRPC service      {target}",
            f"  PostgreSQL        {endpoints.database_url}",
            f"  Kafka (tansu)     {endpoints.kafka_bootstrap_servers}",
            f"  DynamoDB (moto)   {endpoints.dynamodb_endpoint}",
            f"  DAX               {dax}",
            f"  metrics           http://127.0.0.1:{metrics_port}/metrics"
            if metrics_port
            else "  metrics           off",
            *([f"  dynamodb-admin    {admin_url}"] if admin_url else []),
            "  roles             api, relay, projector",
            f"  read path         {read_path_line(tiers)}",
            "",
            "Try:",
            f"  grpcurl -plaintext {target} list",
            f"  grpcurl -plaintext {target} describe uoom.orders.v1.OrderService",
            f"  grpcurl -plaintext {target} grpc.health.v1.Health/Check",
            f"  grpcurl -plaintext -d '{create}' {target} uoom.orders.v1.OrderService/CreateOrder",
            f'  grpcurl -plaintext -d \'{{"order_id": "<order_id from above>"}}\' {target} '
            "uoom.orders.v1.OrderService/GetOrderStatus",
            "",
            "A read that misses the near cache is served by DAX (trailer x-served-by: dax,"
            " shown by grpcurl -v);",
            "to see one, run with --service-env NEAR_CACHE_MAX_ENTRIES=1 and read the older"
            " of two orders.",
            "",
            "Ctrl-C stops the service and every server.",
            "",
        ]
    )


async def run_dev_session(
    grpc_port: int,
    metrics_port: int = 0,
    *,
    service_env: Mapping[str, str] | None = None,
    dax_item_ttl_seconds: float = DEPLOYED_ITEM_TTL_SECONDS,
    dynamodb_admin: bool = False,
) -> int:
    """Runs until SIGINT or SIGTERM. `service_env` (--service-env) is given to the service
    last; `dynamodb_admin` starts dynamodb-admin on the stack's DynamoDB endpoint."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    defaults = Settings(database_url="postgresql://unused")
    # A restarted tansu has forgotten its topics: the launcher creates these again each start.
    # The DAX-protocol endpoint fronts moto with the deployment's item TTL (DAX_ENDPOINT is in
    # the stack's env()): the service reads near cache → DAX → DynamoDB → PostgreSQL.
    stack = LocalStack(
        kafka_topics={
            defaults.kafka_topic: EVENT_TOPIC_PARTITIONS,
            defaults.dead_letter_topic: DEAD_LETTER_TOPIC_PARTITIONS,
        },
        dax_item_ttl_seconds=dax_item_ttl_seconds,
    )
    admin: DynamoDBAdmin | None = None
    try:
        endpoints = await asyncio.to_thread(stack.start)
        env = (
            endpoints.env()
            | {
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(grpc_port),
                "METRICS_PORT": str(metrics_port),
                # moto answers in milliseconds, with tails near 100 ms.
                "READ_TIER_TIMEOUT_MS": "500",
            }
            | dict(service_env or {})
        )
        settings = replace(Settings.from_env(env), page_token_secret=secrets.token_bytes(32))
        # The AWS SDK (and amazon-dax-client) read their (dummy, local) credentials from the
        # environment.
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        await prepare_stores(settings)
        if dynamodb_admin:
            admin = DynamoDBAdmin(
                free_port(),
                stack.base_dir / "dynamodb-admin.log",
                endpoints.dynamodb_endpoint,
                region=endpoints.aws_region,
            )
            await asyncio.to_thread(admin.start)
        async with running_service(settings, ROLES) as service:
            tiers = service.read.tiers if service.read is not None else []
            admin_url = None if admin is None else admin.url
            print(
                _banner(
                    endpoints, service.port, metrics_port, tiers, dax_item_ttl_seconds, admin_url
                ),
                flush=True,
            )
            await stop.wait()
            _log.info("stopping")
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(admin.stop)
        await asyncio.to_thread(stack.stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
