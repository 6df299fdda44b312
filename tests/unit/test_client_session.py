"""The client's session guarantees against a fake service whose replicas lag: a caller of the
package never sees an order go back in time, and a commit the service lost does not wedge it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from uoom.orders.v1 import order_service_pb2_grpc

from tests.support.fake_server import serving
from uoom_orders_client import (
    FailedPreconditionError,
    InvalidArgumentError,
    OrderServiceClient,
    order_pb2,
    order_service_pb2,
)
from uoom_orders_client._session import SessionVersions

Context = grpc.aio.ServicerContext[Any, Any]
ORDER = "00000000-0000-4000-8000-000000000001"
OTHER = "00000000-0000-4000-8000-000000000002"
OWNER = "11111111-1111-4111-8111-111111111111"


class LaggingService(order_service_pb2_grpc.OrderServiceServicer):
    """Commits go to `truth`; reads answer `stale` (a lagging replica) unless min_version
    asks for more, then the truth, or VERSION_NOT_REACHED beyond it."""

    def __init__(self) -> None:
        self.truth = {ORDER: 1, OTHER: 1}
        self.stale = {ORDER: 1, OTHER: 1}
        self.min_versions: list[int] = []

    def _summary(self, order_id: str, version: int) -> order_pb2.OrderSummary:
        return order_pb2.OrderSummary(order_id=order_id, version=version, customer_id=OWNER)

    async def _version(self, order_id: str, min_version: int, context: Context) -> int:
        self.min_versions.append(min_version)
        if min_version < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "min_version: negative")
        if min_version > self.truth[order_id]:
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.ErrorInfo(reason="VERSION_NOT_REACHED", domain="orders.uoom")
            )
            status = status_pb2.Status(
                code=code_pb2.FAILED_PRECONDITION, message="not reached", details=[detail]
            )
            await context.abort_with_status(rpc_status.to_status(status))
        if min_version > self.stale[order_id]:
            return self.truth[order_id]
        return self.stale[order_id]

    async def UpdateOrderStatus(
        self, request: order_service_pb2.UpdateOrderStatusRequest, context: Context
    ) -> order_service_pb2.UpdateOrderStatusResponse:
        self.truth[request.order_id] += 1
        version = self.truth[request.order_id]
        return order_service_pb2.UpdateOrderStatusResponse(
            order=order_pb2.Order(order_id=request.order_id, version=version)
        )

    async def GetOrderStatus(
        self, request: order_service_pb2.GetOrderStatusRequest, context: Context
    ) -> order_service_pb2.GetOrderStatusResponse:
        version = await self._version(request.order_id, request.min_version, context)
        return order_service_pb2.GetOrderStatusResponse(
            order=self._summary(request.order_id, version)
        )

    async def GetOrderDetails(
        self, request: order_service_pb2.GetOrderDetailsRequest, context: Context
    ) -> order_service_pb2.GetOrderDetailsResponse:
        version = await self._version(request.order_id, request.min_version, context)
        return order_service_pb2.GetOrderDetailsResponse(
            order=order_pb2.Order(order_id=request.order_id, version=version)
        )

    async def BatchGetOrderStatus(
        self, request: order_service_pb2.BatchGetOrderStatusRequest, context: Context
    ) -> order_service_pb2.BatchGetOrderStatusResponse:
        return order_service_pb2.BatchGetOrderStatusResponse(
            orders=[self._summary(i, self.stale[i]) for i in request.order_ids]
        )

    async def ListOrdersByCustomer(
        self, request: order_service_pb2.ListOrdersByCustomerRequest, context: Context
    ) -> order_service_pb2.ListOrdersByCustomerResponse:
        return order_service_pb2.ListOrdersByCustomerResponse(
            orders=[self._summary(i, v) for i, v in self.stale.items()]
        )


@pytest.fixture
async def service() -> AsyncIterator[tuple[LaggingService, str]]:
    fake = LaggingService()  # type: ignore[abstract]  # CreateOrder, lists by restaurant: unused
    async with serving(fake) as served:
        yield served


async def _write(client: OrderServiceClient, order_id: str) -> int:
    reply = await client.update_order_status(
        order_service_pb2.UpdateOrderStatusRequest(
            order_id=order_id, status=order_pb2.ORDER_STATUS_CONFIRMED
        )
    )
    return reply.order.version


async def test_reads_after_a_write_never_go_below_it(service: tuple[LaggingService, str]) -> None:
    fake, target = service
    async with OrderServiceClient(target) as client:
        written = await _write(client, ORDER)
        assert written == 2
        status = await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=ORDER)
        )
        assert status.order.version == 2
        details, _ = await client.get_order_details_with_metadata(
            order_service_pb2.GetOrderDetailsRequest(order_id=ORDER.upper())
        )
        assert details.order.version == 2
        assert fake.min_versions == [2, 2]


async def test_batches_and_pages_replace_what_is_older_than_seen(
    service: tuple[LaggingService, str],
) -> None:
    fake, target = service
    async with OrderServiceClient(target) as client:
        await _write(client, ORDER)
        await _write(client, ORDER)
        batch = await client.batch_get_order_status(
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=[OTHER, ORDER])
        )
        assert [(o.order_id, o.version) for o in batch.orders] == [(OTHER, 1), (ORDER, 3)]
        page = await client.list_orders_by_customer(
            order_service_pb2.ListOrdersByCustomerRequest(customer_id=OWNER)
        )
        assert {o.order_id: o.version for o in page.orders} == {ORDER: 3, OTHER: 1}
        listed = [o.version async for o in client.iter_orders_by_customer(OWNER)]
        assert sorted(listed) == [1, 3]
        # What a read returned is remembered too: a newer read raises the floor.
        fake.stale[OTHER] = fake.truth[OTHER] = 4
        await client.batch_get_order_status(
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=[OTHER])
        )
        fake.stale[OTHER] = 2
        again = await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=OTHER)
        )
        assert again.order.version == 4


async def test_a_version_the_service_lost_is_forgotten(service: tuple[LaggingService, str]) -> None:
    fake, target = service
    async with OrderServiceClient(target) as client:
        assert await _write(client, ORDER) == 2
        fake.truth[ORDER] = fake.stale[ORDER] = 1  # PostgreSQL lost version 2
        status = await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=ORDER)
        )
        assert status.order.version == 1
        assert fake.min_versions == [2, 0]
        await client.get_order_status(order_service_pb2.GetOrderStatusRequest(order_id=ORDER))
        assert fake.min_versions[-1] == 1
        # The caller's own min_version is the caller's: its failure is not hidden.
        with pytest.raises(FailedPreconditionError) as raised:
            await client.get_order_status(
                order_service_pb2.GetOrderStatusRequest(order_id=ORDER, min_version=5)
            )
        assert raised.value.reason == "VERSION_NOT_REACHED"
        # A negative one is left for the service to refuse.
        fake.min_versions.clear()
        with pytest.raises(InvalidArgumentError):
            await client.get_order_status(
                order_service_pb2.GetOrderStatusRequest(order_id=ORDER, min_version=-1)
            )
        assert fake.min_versions == [-1]


async def test_session_guarantees_can_be_turned_off(service: tuple[LaggingService, str]) -> None:
    fake, target = service
    async with OrderServiceClient(target, session_guarantees=False) as client:
        await _write(client, ORDER)
        status = await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=ORDER)
        )
        assert status.order.version == 1
        assert fake.min_versions == [0]


def test_session_memory_is_bounded_and_keeps_the_newest() -> None:
    session = SessionVersions(capacity=2)
    session.observe("A", 3)
    session.observe("a", 2)  # the same order, older: ignored
    assert session.floor("A") == 3
    session.observe("b", 1)
    session.floor("a")  # used: now the most recent
    session.observe("c", 1)
    assert len(session) == 2
    assert session.floor("b") == 0  # the least recently used went first
    assert session.floor("a") == 3
    with pytest.raises(ValueError, match="capacity"):
        SessionVersions(capacity=0)
