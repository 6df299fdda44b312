"""The read path on real servers: tiers, coherence of every replica's near cache, read-your-
writes, expiry, stores failing under it, and pagination across tier changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.builders import create_request, update_request
from tests.integration.pipeline import Api, Pipeline, dynamodb_item, pipeline, recreate_tables
from tests.integration.projector_support import eventually
from uoom_orders.bootstrap import ROLES, running_service
from uoom_orders_client import (
    OrderServiceClient,
    UnavailableError,
    order_pb2,
    order_service_pb2,
)
from uoom_orders_devstack import LocalStack, StackEndpoints
from uoom_orders_devstack.dynamodb_endpoint import MotoDynamoDBServer
from uoom_orders_devstack.ports import free_port

S = order_pb2


async def served_by(
    client: OrderServiceClient, order_id: str, min_version: int = 0
) -> tuple[str | None, int]:
    reply, info = await client.get_order_status_with_metadata(
        order_service_pb2.GetOrderStatusRequest(order_id=order_id, min_version=min_version)
    )
    return info.served_by, reply.order.version


@pytest.fixture
async def stack(local_stack: StackEndpoints, database_url: str) -> AsyncIterator[Pipeline]:
    async with pipeline(local_stack, database_url) as running:
        yield running


@pytest.fixture
def private_moto(tmp_path: Path) -> Iterator[MotoDynamoDBServer]:
    """A DynamoDB endpoint of this test's own, to stop and start without touching others'."""
    server = MotoDynamoDBServer(free_port(), tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()


async def test_an_order_is_served_from_the_near_cache_after_its_event(stack: Pipeline) -> None:
    api = await stack.start_api()
    order = (await api.client.create_order(create_request())).order
    # The event reaches the near cache of every replica: no PostgreSQL read needed.
    await eventually(
        lambda: _is_tier(api.client, order.order_id, "near-cache"), "near cache to serve it"
    )
    await eventually(lambda: _has_item(stack, order.order_id), "projector to write the read model")
    details, info = await api.client.get_order_details_with_metadata(
        order_service_pb2.GetOrderDetailsRequest(order_id=order.order_id)
    )
    assert info.served_by == "near-cache"
    assert details.order == order


async def _is_tier(client: OrderServiceClient, order_id: str, tier: str) -> bool:
    return (await served_by(client, order_id))[0] == tier


async def _has_item(stack: Pipeline, order_id: str) -> bool:
    return await dynamodb_item(stack, order_id) is not None


async def test_a_new_replica_reads_old_orders_from_dynamodb_then_its_near_cache(
    stack: Pipeline,
) -> None:
    first = await stack.start_api()
    order = (await first.client.create_order(create_request())).order
    await eventually(lambda: _has_item(stack, order.order_id), "projection")
    late = await stack.start_api()  # its feed starts after the event: it never saw it
    assert await served_by(late.client, order.order_id) == ("dynamodb", 1)
    assert await served_by(late.client, order.order_id) == ("near-cache", 1)


async def test_a_change_through_one_replica_reaches_the_others_near_cache(
    stack: Pipeline,
) -> None:
    a, b = await stack.start_api(), await stack.start_api()
    order = (await a.client.create_order(create_request())).order
    await eventually(lambda: _is_tier(b.client, order.order_id, "near-cache"), "b's cache")
    changed_at = time.monotonic()
    await a.client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_CONFIRMED))

    async def b_sees_version_2() -> bool:
        tier, version = await served_by(b.client, order.order_id)
        return tier == "near-cache" and version == 2

    await eventually(b_sees_version_2, "the change in b's near cache", timeout=10, interval=0.005)
    lag = time.monotonic() - changed_at
    assert lag < 5, f"coherence took {lag:.3f}s"


async def test_min_version_never_reads_older_than_the_callers_write(stack: Pipeline) -> None:
    a, b = await stack.start_api(), await stack.start_api()
    order = (await a.client.create_order(create_request())).order
    await eventually(lambda: _is_tier(b.client, order.order_id, "near-cache"), "b's cache")
    for step, status in enumerate(
        [S.ORDER_STATUS_CONFIRMED, S.ORDER_STATUS_PREPARING, S.ORDER_STATUS_READY_FOR_PICKUP],
        start=2,
    ):
        written = await a.client.update_order_status(update_request(order.order_id, status))
        assert written.order.version == step
        # Immediately, on the other replica: whatever tier answers, never less than written.
        tier, version = await served_by(b.client, order.order_id, min_version=step)
        assert version >= step, tier


async def test_batches_mix_tiers_dedup_and_list_missing(stack: Pipeline) -> None:
    api = await stack.start_api()
    cached = (await api.client.create_order(create_request())).order.order_id
    await eventually(lambda: _is_tier(api.client, cached, "near-cache"), "cache")
    ghost = str(uuid.uuid4())
    reply, info = await api.client.batch_get_order_status_with_metadata(
        order_service_pb2.BatchGetOrderStatusRequest(order_ids=[ghost, cached, cached, ghost])
    )
    assert [o.order_id for o in reply.orders] == [cached]
    assert list(reply.missing_order_ids) == [ghost]
    assert info.served_by is not None
    assert info.served_by.startswith("near-cache")


async def test_an_expired_read_model_item_is_absent_and_written_back(stack: Pipeline) -> None:
    api = await stack.start_api(READ_TIERS="dynamodb")
    order = (await api.client.create_order(create_request())).order
    await eventually(lambda: _has_item(stack, order.order_id), "projection")
    settings = stack.settings()
    from uoom_orders.dynamodb.client import dynamodb_client

    async with dynamodb_client(
        region=settings.aws_region, endpoint=settings.dynamodb_endpoint
    ) as client:
        await client.update_item(
            TableName=f"{settings.dynamodb_table_prefix}order-status",
            Key={"orderId": {"S": order.order_id}},
            UpdateExpression="SET #ttl = :past",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
        )
    # DynamoDB has not deleted it yet (and moto never will): it must still count as absent.
    assert await served_by(api.client, order.order_id) == ("postgres", 1)

    async def revived() -> bool:
        item = await dynamodb_item(stack, order.order_id)
        return item is not None and int(item["ttl"]["N"]) > time.time()

    await eventually(revived, "write-back to revive the item")
    assert await served_by(api.client, order.order_id) == ("dynamodb", 1)


async def test_dynamodb_down_reads_fall_back_and_recover(
    local_stack: StackEndpoints, database_url: str, private_moto: MotoDynamoDBServer
) -> None:
    async with pipeline(
        local_stack, database_url, dynamodb_endpoint=private_moto.endpoint
    ) as stack:
        api = await stack.start_api(READ_TIERS="dynamodb")
        order = (await api.client.create_order(create_request())).order
        await eventually(lambda: _has_item(stack, order.order_id), "projection")
        assert (await served_by(api.client, order.order_id))[0] == "dynamodb"

        private_moto.stop()
        started = time.monotonic()
        for _ in range(20):
            assert (await served_by(api.client, order.order_id))[0] == "postgres"
        # The breaker opened: twenty reads did not each wait for a timeout.
        assert time.monotonic() - started < 10

        private_moto.start()  # moto keeps nothing across a restart
        await recreate_tables(stack)
        await eventually(
            lambda: _is_tier(api.client, order.order_id, "dynamodb"),
            "breaker to close and write-back to refill",
        )


async def test_postgres_down_reads_still_answer_from_the_tiers(
    stack: Pipeline, stack_servers: LocalStack
) -> None:
    api = await stack.start_api()
    order = (await api.client.create_order(create_request())).order
    await eventually(lambda: _is_tier(api.client, order.order_id, "near-cache"), "cache")
    await eventually(lambda: _has_item(stack, order.order_id), "projection")
    assert stack_servers.postgres is not None
    stack_servers.postgres.stop()
    try:
        assert (await served_by(api.client, order.order_id))[0] == "near-cache"
        page = await api.client.list_orders_by_customer(
            order_service_pb2.ListOrdersByCustomerRequest(customer_id=order.customer_id)
        )
        assert [o.order_id for o in page.orders] == [order.order_id]
        with pytest.raises(UnavailableError):
            await api.client.create_order(create_request(), timeout=5)
        # Reported, not hidden: writes are down, reads still served, so degraded, not down.
        monitor = api.service.health
        assert monitor is not None
        await monitor.check_once()
        assert monitor.up["postgres"] is False
        assert monitor.degraded
        assert await health_status(api) == health_pb2.HealthCheckResponse.SERVING
    finally:
        stack_servers.postgres.start()


async def test_pagination_continues_when_the_serving_tier_changes(
    local_stack: StackEndpoints, database_url: str, private_moto: MotoDynamoDBServer
) -> None:
    async with pipeline(
        local_stack, database_url, dynamodb_endpoint=private_moto.endpoint
    ) as stack:
        api = await stack.start_api(READ_TIERS="dynamodb")
        customer = str(uuid.uuid4())
        ids = [
            (await api.client.create_order(create_request(customer_id=customer))).order.order_id
            for _ in range(9)
        ]
        for order_id in ids:
            await eventually(partial(_has_item, stack, order_id), "projection")
        first, info = await api.client.list_orders_by_customer_with_metadata(
            order_service_pb2.ListOrdersByCustomerRequest(customer_id=customer, page_size=4)
        )
        assert info.served_by == "dynamodb"
        private_moto.stop()
        seen = [o.order_id for o in first.orders]
        token = first.next_page_token
        tiers = set()
        while token:
            page, info = await api.client.list_orders_by_customer_with_metadata(
                order_service_pb2.ListOrdersByCustomerRequest(
                    customer_id=customer, page_size=4, page_token=token
                )
            )
            tiers.add(info.served_by)
            seen.extend(o.order_id for o in page.orders)
            token = page.next_page_token
        assert tiers == {"postgres"}
        assert seen == list(reversed(ids))  # newest first, each once, none skipped
        private_moto.start()


async def health_status(api: Api) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.service.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="uoom.orders.v1.OrderService"), timeout=5
        )
    return int(reply.status)


async def test_a_store_down_degrades_the_service_but_it_keeps_serving(
    local_stack: StackEndpoints, database_url: str, private_moto: MotoDynamoDBServer
) -> None:
    async with pipeline(
        local_stack, database_url, dynamodb_endpoint=private_moto.endpoint
    ) as stack:
        api = await stack.start_api()
        monitor = api.service.health
        assert monitor is not None
        await monitor.check_once()  # the feed went live after the start-up check
        assert not monitor.degraded, monitor.up
        assert await health_status(api) == health_pb2.HealthCheckResponse.SERVING

        private_moto.stop()
        await monitor.check_once()
        assert monitor.up["dynamodb"] is False
        assert monitor.degraded
        assert await health_status(api) == health_pb2.HealthCheckResponse.SERVING

        private_moto.start()
        await recreate_tables(stack)
        await monitor.check_once()
        assert not monitor.degraded


async def test_health_reports_the_server_and_each_role(stack: Pipeline) -> None:
    settings = stack.settings()
    async with running_service(settings, ROLES) as service:
        assert service.health is not None
        await service.health.check_once()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in (
                "",
                "uoom.orders.v1.OrderService",
                "uoom.orders.outbox-relay",
                "uoom.orders.projector",
            ):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
