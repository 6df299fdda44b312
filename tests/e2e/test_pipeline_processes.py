"""The API, the relay and the projector as separate processes; relay and projector killed with
SIGKILL mid-load and restarted: every acknowledged change reaches the read model, none
regresses."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

import pytest

from tests.builders import create_request, update_request
from tests.e2e.conftest import ServiceProcess, StartService, service_env
from tests.integration.pipeline import use_stack_credentials
from tests.integration.projector_support import eventually
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders_client import OrderServiceClient, order_pb2, order_service_pb2
from uoom_orders_devstack import StackEndpoints

LIFECYCLE = [
    order_pb2.ORDER_STATUS_CONFIRMED,
    order_pb2.ORDER_STATUS_PREPARING,
    order_pb2.ORDER_STATUS_READY_FOR_PICKUP,
    order_pb2.ORDER_STATUS_OUT_FOR_DELIVERY,
    order_pb2.ORDER_STATUS_DELIVERED,
]


@pytest.fixture
def pipeline_env(local_stack: StackEndpoints) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "KAFKA_TOPIC": f"e2e-{tag}",
        "PROJECTOR_GROUP_ID": f"e2e-{tag}",
        "DYNAMODB_TABLE_PREFIX": f"e2e-{tag}-",
        "RELAY_POLL_INTERVAL_SECONDS": "0.2",
        "READ_TIER_TIMEOUT_MS": "1000",
    }


@pytest.fixture
async def tables(
    local_stack: StackEndpoints, database_url: str, pipeline_env: dict[str, str]
) -> None:
    env = service_env(local_stack, database_url, 0) | pipeline_env
    created = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uoom_orders", "create-tables", env=env
    )
    assert await created.wait() == 0


async def start_role(start_service: StartService, role: str, env: dict[str, str]) -> ServiceProcess:
    return await start_service("--roles", role, extra_env=env, wait_for_health=role == "api")


async def read_model_versions(
    local_stack: StackEndpoints, prefix: str, order_ids: list[str]
) -> dict[str, int]:
    use_stack_credentials(local_stack)
    found: dict[str, int] = {}
    async with dynamodb_client(
        region=local_stack.aws_region, endpoint=local_stack.dynamodb_endpoint
    ) as client:
        for start in range(0, len(order_ids), 100):
            keys = [{"orderId": {"S": i}} for i in order_ids[start : start + 100]]
            reply = await client.batch_get_item(
                RequestItems={f"{prefix}order-status": {"Keys": keys, "ConsistentRead": True}}
            )
            for item in reply["Responses"][f"{prefix}order-status"]:
                found[item["orderId"]["S"]] = int(item["version"]["N"])
    return found


def kill(process: ServiceProcess) -> None:
    process.process.send_signal(signal.SIGKILL)
    process.process.wait(10)


async def test_killed_relay_and_projector_lose_nothing(
    start_service: StartService,
    local_stack: StackEndpoints,
    pipeline_env: dict[str, str],
    tables: None,
) -> None:
    api = await start_role(start_service, "api", pipeline_env)
    relay = await start_role(start_service, "relay", pipeline_env)
    projector = await start_role(start_service, "projector", pipeline_env)
    acknowledged: dict[str, int] = {}

    async with OrderServiceClient(api.target, default_timeout=10) as client:

        async def one_order() -> None:
            order = (await client.create_order(create_request())).order
            acknowledged[order.order_id] = 1
            for version, status in enumerate(LIFECYCLE, start=2):
                reply = await client.update_order_status(update_request(order.order_id, status))
                acknowledged[order.order_id] = version
                assert reply.order.version == version

        load = [asyncio.create_task(one_order()) for _ in range(40)]
        await asyncio.sleep(0.3)  # mid-load, not a wait for a condition
        kill(relay)
        kill(projector)
        await asyncio.gather(*load)  # writes keep being acknowledged meanwhile
        relay = await start_role(start_service, "relay", pipeline_env)
        projector = await start_role(start_service, "projector", pipeline_env)

        ids = list(acknowledged)
        prefix = pipeline_env["DYNAMODB_TABLE_PREFIX"]

        async def all_projected() -> bool:
            versions = await read_model_versions(local_stack, prefix, ids)
            return versions == acknowledged

        await eventually(all_projected, "every acknowledged change in the read model", timeout=90)
        for order_id in ids[:5]:
            reply = await client.get_order_status(
                order_service_pb2.GetOrderStatusRequest(order_id=order_id)
            )
            assert reply.order.version == acknowledged[order_id]
            assert reply.order.status == order_pb2.ORDER_STATUS_DELIVERED

    for process in (api, relay, projector):
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.log()


async def test_a_killed_api_keeps_every_acknowledged_write(
    start_service: StartService, pipeline_env: dict[str, str], tables: None
) -> None:
    api = await start_role(start_service, "api", pipeline_env)
    acknowledged: list[str] = []
    async with OrderServiceClient(api.target, default_timeout=5, max_attempts=1) as client:

        async def create_until_killed() -> None:
            while True:
                try:
                    order = (await client.create_order(create_request())).order
                except Exception:
                    return
                acknowledged.append(order.order_id)

        writers = [asyncio.create_task(create_until_killed()) for _ in range(4)]
        await eventually(lambda: len(acknowledged) >= 50, "some acknowledged orders")
        kill(api)
        await asyncio.gather(*writers)
    restarted = await start_role(start_service, "api", pipeline_env)
    async with OrderServiceClient(restarted.target) as client:
        for start in range(0, len(acknowledged), 100):
            reply = await client.batch_get_order_status(
                order_service_pb2.BatchGetOrderStatusRequest(
                    order_ids=acknowledged[start : start + 100]
                )
            )
            assert list(reply.missing_order_ids) == []
