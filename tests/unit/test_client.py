"""OrderServiceClient against a fake OrderService served in process on a loopback port."""

from __future__ import annotations

import asyncio
import json
import uuid
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
    CallInfo,
    DeadlineExceededError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    OrderServiceClient,
    OrderServiceError,
    UnavailableError,
    order_pb2,
    order_service_pb2,
)
from uoom_orders_client._service_config import service_config_json

Context = grpc.aio.ServicerContext[Any, Any]

MISSING_ORDER_ID = "00000000-0000-0000-0000-00000000dead"
INVALID_ORDER_ID = "not-a-uuid"
SLOW_ORDER_ID = "00000000-0000-0000-0000-0000000051ee"
CUSTOMER_ID = "11111111-1111-1111-1111-111111111111"
RESTAURANT_ID = "22222222-2222-2222-2222-222222222222"


def _summary(number: int) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(
        order_id=f"00000000-0000-0000-0000-{number:012d}",
        status=order_pb2.ORDER_STATUS_PENDING,
        customer_id=CUSTOMER_ID,
        restaurant_id=RESTAURANT_ID,
        version=1,
    )


class FakeOrderService(order_service_pb2_grpc.OrderServiceServicer):
    """Answers from a fixed list of orders; a few order ids trigger errors or delays."""

    def __init__(self) -> None:
        self.orders = [_summary(n) for n in range(5)]
        self.unavailable_before_success = 0
        self.create_requests: list[order_service_pb2.CreateOrderRequest] = []
        self.update_requests: list[order_service_pb2.UpdateOrderStatusRequest] = []
        self.page_tokens: list[str] = []

    async def CreateOrder(
        self, request: order_service_pb2.CreateOrderRequest, context: Context
    ) -> order_service_pb2.CreateOrderResponse:
        self.create_requests.append(request)
        if self.unavailable_before_success > 0:
            self.unavailable_before_success -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return order_service_pb2.CreateOrderResponse(
            order=order_pb2.Order(
                order_id=str(uuid.uuid4()),
                status=order_pb2.ORDER_STATUS_PENDING,
                customer_id=request.customer_id,
                restaurant_id=request.restaurant_id,
                version=1,
            )
        )

    async def UpdateOrderStatus(
        self, request: order_service_pb2.UpdateOrderStatusRequest, context: Context
    ) -> order_service_pb2.UpdateOrderStatusResponse:
        self.update_requests.append(request)
        return order_service_pb2.UpdateOrderStatusResponse(
            order=order_pb2.Order(order_id=request.order_id, status=request.status, version=2)
        )

    async def GetOrderStatus(
        self, request: order_service_pb2.GetOrderStatusRequest, context: Context
    ) -> order_service_pb2.GetOrderStatusResponse:
        await self._fail_for(request.order_id, context)
        context.set_trailing_metadata((("x-served-by", "near-cache"),))
        return order_service_pb2.GetOrderStatusResponse(
            order=order_pb2.OrderSummary(order_id=request.order_id, version=3)
        )

    async def BatchGetOrderStatus(
        self, request: order_service_pb2.BatchGetOrderStatusRequest, context: Context
    ) -> order_service_pb2.BatchGetOrderStatusResponse:
        known = {order.order_id: order for order in self.orders}
        context.set_trailing_metadata((("x-served-by", "dynamodb"),))
        return order_service_pb2.BatchGetOrderStatusResponse(
            orders=[known[i] for i in request.order_ids if i in known],
            missing_order_ids=[i for i in request.order_ids if i not in known],
        )

    async def GetOrderDetails(
        self, request: order_service_pb2.GetOrderDetailsRequest, context: Context
    ) -> order_service_pb2.GetOrderDetailsResponse:
        await self._fail_for(request.order_id, context)
        context.set_trailing_metadata((("x-served-by", "postgres"),))
        return order_service_pb2.GetOrderDetailsResponse(
            order=order_pb2.Order(order_id=request.order_id, version=3)
        )

    async def ListOrdersByCustomer(
        self, request: order_service_pb2.ListOrdersByCustomerRequest, context: Context
    ) -> order_service_pb2.ListOrdersByCustomerResponse:
        orders, token = self._page(request.page_size, request.page_token)
        return order_service_pb2.ListOrdersByCustomerResponse(orders=orders, next_page_token=token)

    async def ListOrdersByRestaurant(
        self, request: order_service_pb2.ListOrdersByRestaurantRequest, context: Context
    ) -> order_service_pb2.ListOrdersByRestaurantResponse:
        orders, token = self._page(request.page_size, request.page_token)
        return order_service_pb2.ListOrdersByRestaurantResponse(
            orders=orders, next_page_token=token
        )

    # The watches have a fake of their own (test_client_watch.py).
    async def WatchOrderStatus(  # type: ignore[override]
        self, request: order_service_pb2.WatchOrderStatusRequest, context: Context
    ) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no watches here")

    async def WatchRestaurantOrders(  # type: ignore[override]
        self, request: order_service_pb2.WatchRestaurantOrdersRequest, context: Context
    ) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no watches here")

    def _page(self, page_size: int, page_token: str) -> tuple[list[order_pb2.OrderSummary], str]:
        self.page_tokens.append(page_token)
        start = int(page_token or "0")
        end = start + (page_size or 20)
        return self.orders[start:end], str(end) if end < len(self.orders) else ""

    async def _fail_for(self, order_id: str, context: Context) -> None:
        if order_id == MISSING_ORDER_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"order {order_id} not found")
        if order_id == INVALID_ORDER_ID:
            await context.abort_with_status(rpc_status.to_status(_invalid_order_id_status()))
        if order_id == SLOW_ORDER_ID:
            await asyncio.sleep(30)


def _invalid_order_id_status() -> Any:
    error_info = any_pb2.Any()
    error_info.Pack(
        error_details_pb2.ErrorInfo(
            reason="INVALID_ORDER_ID", domain="orders.uoom", metadata={"order_id": "not-a-uuid"}
        )
    )
    bad_request = any_pb2.Any()
    bad_request.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="order_id", description="must be a UUID"
                )
            ]
        )
    )
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message="the request is invalid",
        details=[error_info, bad_request],
    )


@pytest.fixture
async def service() -> AsyncIterator[tuple[FakeOrderService, str]]:
    async with serving(FakeOrderService()) as served:
        yield served


@pytest.fixture
def fake(service: tuple[FakeOrderService, str]) -> FakeOrderService:
    return service[0]


@pytest.fixture
async def client(service: tuple[FakeOrderService, str]) -> AsyncIterator[OrderServiceClient]:
    async with OrderServiceClient(service[1], default_timeout=5.0) as client:
        yield client


def _create_request(request_id: str = "") -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        request_id=request_id,
        customer_id=CUSTOMER_ID,
        restaurant_id=RESTAURANT_ID,
        items=[
            order_pb2.OrderItem(
                item_id="pizza",
                name="Pizza",
                quantity=1,
                unit_price=order_pb2.Money(currency_code="USD", amount_minor=1200),
            )
        ],
        delivery_location=order_pb2.DeliveryLocation(latitude=1.0, longitude=2.0),
    )


# Round trips.


async def test_create_order_round_trips(client: OrderServiceClient) -> None:
    response = await client.create_order(_create_request())

    assert response.order.customer_id == CUSTOMER_ID
    assert response.order.status == order_pb2.ORDER_STATUS_PENDING


async def test_update_order_status_round_trips(client: OrderServiceClient) -> None:
    response = await client.update_order_status(
        order_service_pb2.UpdateOrderStatusRequest(
            order_id="o-1", status=order_pb2.ORDER_STATUS_CONFIRMED
        )
    )

    assert response.order.order_id == "o-1"
    assert response.order.status == order_pb2.ORDER_STATUS_CONFIRMED


async def test_get_order_status_round_trips(client: OrderServiceClient) -> None:
    response = await client.get_order_status(
        order_service_pb2.GetOrderStatusRequest(order_id="o-1")
    )

    assert response.order.order_id == "o-1"


async def test_batch_get_order_status_round_trips(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    known = fake.orders[1].order_id
    response = await client.batch_get_order_status(
        order_service_pb2.BatchGetOrderStatusRequest(order_ids=[known, MISSING_ORDER_ID])
    )

    assert [order.order_id for order in response.orders] == [known]
    assert list(response.missing_order_ids) == [MISSING_ORDER_ID]


async def test_get_order_details_round_trips(client: OrderServiceClient) -> None:
    response = await client.get_order_details(
        order_service_pb2.GetOrderDetailsRequest(order_id="o-1")
    )

    assert response.order.order_id == "o-1"


async def test_list_orders_by_customer_returns_one_page(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    response = await client.list_orders_by_customer(
        order_service_pb2.ListOrdersByCustomerRequest(customer_id=CUSTOMER_ID, page_size=2)
    )

    assert list(response.orders) == fake.orders[:2]
    assert response.next_page_token == "2"


async def test_list_orders_by_restaurant_returns_one_page(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    response = await client.list_orders_by_restaurant(
        order_service_pb2.ListOrdersByRestaurantRequest(restaurant_id=RESTAURANT_ID, page_size=4)
    )

    assert list(response.orders) == fake.orders[:4]
    assert response.next_page_token == "4"


# request_id.


async def test_an_empty_request_id_is_filled_on_a_copy(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    request = _create_request()

    await client.create_order(request)
    await client.create_order(request)

    assert request.request_id == ""
    sent = [r.request_id for r in fake.create_requests]
    assert all(uuid.UUID(request_id) for request_id in sent)
    assert sent[0] != sent[1]


async def test_a_given_request_id_is_kept(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    await client.create_order(_create_request("caller-chosen-id"))
    await client.update_order_status(
        order_service_pb2.UpdateOrderStatusRequest(request_id="update-id", order_id="o-1")
    )

    assert [r.request_id for r in fake.create_requests] == ["caller-chosen-id"]
    assert [r.request_id for r in fake.update_requests] == ["update-id"]


async def test_update_order_status_fills_an_empty_request_id(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    request = order_service_pb2.UpdateOrderStatusRequest(order_id="o-1")

    await client.update_order_status(request)

    assert request.request_id == ""
    assert uuid.UUID(fake.update_requests[0].request_id)


# Retries.


async def test_unavailable_is_retried_with_the_same_request_id(
    service: tuple[FakeOrderService, str],
) -> None:
    fake, target = service
    fake.unavailable_before_success = 2

    async with OrderServiceClient(target, max_attempts=3) as client:
        response = await client.create_order(_create_request())

    assert response.order.customer_id == CUSTOMER_ID
    request_ids = [r.request_id for r in fake.create_requests]
    assert len(request_ids) == 3
    assert len(set(request_ids)) == 1
    assert request_ids[0]


async def test_unavailable_after_the_last_attempt_raises(
    service: tuple[FakeOrderService, str],
) -> None:
    fake, target = service
    fake.unavailable_before_success = 10

    async with OrderServiceClient(target, max_attempts=2) as client:
        with pytest.raises(UnavailableError) as raised:
            await client.create_order(_create_request())

    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert len(fake.create_requests) == 2


async def test_max_attempts_of_one_does_not_retry(service: tuple[FakeOrderService, str]) -> None:
    fake, target = service
    fake.unavailable_before_success = 1

    async with OrderServiceClient(target, max_attempts=1) as client:
        with pytest.raises(UnavailableError):
            await client.create_order(_create_request())

    assert len(fake.create_requests) == 1


def test_the_service_config_retries_unavailable_only() -> None:
    config = json.loads(service_config_json(4))

    (method_config,) = config["methodConfig"]
    assert method_config["name"] == [{"service": "uoom.orders.v1.OrderService"}]
    assert method_config["retryPolicy"]["maxAttempts"] == 4
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


@pytest.mark.parametrize("max_attempts", [0, 6])
def test_max_attempts_out_of_range_is_refused(max_attempts: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        OrderServiceClient("127.0.0.1:1", max_attempts=max_attempts)


# Errors.


async def test_invalid_argument_carries_its_details(client: OrderServiceClient) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=INVALID_ORDER_ID)
        )

    error = raised.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "the request is invalid"
    assert error.reason == "INVALID_ORDER_ID"
    assert error.metadata == {"order_id": "not-a-uuid"}
    assert error.field_violations == [
        FieldViolation(field="order_id", description="must be a UUID")
    ]
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)


async def test_not_found_becomes_not_found_error(client: OrderServiceClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        await client.get_order_details(
            order_service_pb2.GetOrderDetailsRequest(order_id=MISSING_ORDER_ID)
        )

    error = raised.value
    assert isinstance(error, OrderServiceError)
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.message == f"order {MISSING_ORDER_ID} not found"
    assert error.reason is None
    assert error.metadata == {}
    assert error.field_violations == []


async def test_a_missed_deadline_becomes_deadline_exceeded_error(
    client: OrderServiceClient,
) -> None:
    with pytest.raises(DeadlineExceededError):
        await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=SLOW_ORDER_ID), timeout=0.2
        )


async def test_errors_from_metadata_variants_are_typed(client: OrderServiceClient) -> None:
    with pytest.raises(NotFoundError):
        await client.get_order_status_with_metadata(
            order_service_pb2.GetOrderStatusRequest(order_id=MISSING_ORDER_ID)
        )


# Trailing metadata.


async def test_served_by_is_read_from_trailing_metadata(client: OrderServiceClient) -> None:
    response, info = await client.get_order_status_with_metadata(
        order_service_pb2.GetOrderStatusRequest(order_id="o-1")
    )

    assert response.order.order_id == "o-1"
    assert isinstance(info, CallInfo)
    assert info.served_by == "near-cache"
    assert ("x-served-by", "near-cache") in info.trailing_metadata


async def test_every_read_has_a_metadata_variant(client: OrderServiceClient) -> None:
    _, batch = await client.batch_get_order_status_with_metadata(
        order_service_pb2.BatchGetOrderStatusRequest(order_ids=["o-1"])
    )
    _, details = await client.get_order_details_with_metadata(
        order_service_pb2.GetOrderDetailsRequest(order_id="o-1")
    )
    _, by_customer = await client.list_orders_by_customer_with_metadata(
        order_service_pb2.ListOrdersByCustomerRequest(customer_id=CUSTOMER_ID)
    )
    _, by_restaurant = await client.list_orders_by_restaurant_with_metadata(
        order_service_pb2.ListOrdersByRestaurantRequest(restaurant_id=RESTAURANT_ID)
    )

    assert batch.served_by == "dynamodb"
    assert details.served_by == "postgres"
    assert by_customer.served_by is None
    assert by_restaurant.served_by is None


# Iteration over pages.


async def test_iter_orders_by_customer_follows_every_page(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    orders = [order async for order in client.iter_orders_by_customer(CUSTOMER_ID, page_size=2)]

    assert orders == fake.orders
    assert fake.page_tokens == ["", "2", "4"]


async def test_iter_orders_by_restaurant_follows_every_page(
    client: OrderServiceClient, fake: FakeOrderService
) -> None:
    orders = [
        order
        async for order in client.iter_orders_by_restaurant(
            RESTAURANT_ID, page_size=3, status_filter=order_pb2.ORDER_STATUS_PENDING
        )
    ]

    assert orders == fake.orders
    assert fake.page_tokens == ["", "3"]


# Lifecycle and configuration.


async def test_close_is_safe_to_call_twice(service: tuple[FakeOrderService, str]) -> None:
    client = OrderServiceClient(service[1])
    await client.get_order_status(order_service_pb2.GetOrderStatusRequest(order_id="o-1"))

    await client.close()
    await client.close()


async def test_close_after_the_context_exits_is_safe(
    service: tuple[FakeOrderService, str],
) -> None:
    async with OrderServiceClient(service[1]) as client:
        pass

    await client.close()


def test_credentials_and_pem_bytes_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        OrderServiceClient(
            "127.0.0.1:1",
            credentials=grpc.ssl_channel_credentials(),
            root_certificates=b"pem",
        )


def test_a_private_key_needs_its_certificate_chain() -> None:
    with pytest.raises(ValueError, match="mTLS"):
        OrderServiceClient("127.0.0.1:1", private_key=b"key")
