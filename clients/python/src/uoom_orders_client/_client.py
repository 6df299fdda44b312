"""OrderServiceClient: a thin typed async client over the generated OrderService stub."""

# A method's `timeout` is the gRPC deadline: it travels to the server (grpc-timeout) and
# bounds the channel's retries, which an asyncio.timeout around the call would not do.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, MutableSequence, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeVar

import grpc
import grpc.aio
from uoom.orders.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from uoom_orders_client._errors import (
    FailedPreconditionError,
    NotFoundError,
    error_from_rpc_error,
)
from uoom_orders_client._service_config import service_config_json
from uoom_orders_client._session import DEFAULT_SESSION_CAPACITY, SessionVersions
from uoom_orders_client._watch import (
    DEFAULT_RESUME_ATTEMPTS,
    watch_order_status,
    watch_restaurant_orders,
)

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_ATTEMPTS = 4
SERVED_BY_KEY = "x-served-by"

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_SingleRead = TypeVar(
    "_SingleRead",
    order_service_pb2.GetOrderStatusRequest,
    order_service_pb2.GetOrderDetailsRequest,
)
_SingleReply = TypeVar(
    "_SingleReply",
    order_service_pb2.GetOrderStatusResponse,
    order_service_pb2.GetOrderDetailsResponse,
)
# The reason the service gives when an order never reached the requested min_version.
VERSION_NOT_REACHED = "VERSION_NOT_REACHED"
_Mutation = TypeVar(
    "_Mutation",
    order_service_pb2.CreateOrderRequest,
    order_service_pb2.UpdateOrderStatusRequest,
)


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What a successful call said besides its response.

    ``served_by`` is the read tier that answered (trailing metadata ``x-served-by``, e.g.
    "near-cache", "dynamodb", "postgres"), or None when the server did not say.
    """

    served_by: str | None
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class OrderServiceClient:
    """An async client of uoom.orders.v1.OrderService that owns one grpc.aio channel.

    Use it as ``async with OrderServiceClient("127.0.0.1:50051") as client:``, or call
    ``close()`` yourself; create it inside the event loop that will use it. Every call gets a
    deadline (``timeout``, else ``default_timeout`` seconds) and is retried by the channel on
    UNAVAILABLE up to ``max_attempts`` tries in all, within that deadline. A failed call
    raises an ``OrderServiceError`` subclass chosen by its status code.

    The channel is plaintext unless ``credentials`` are given, or any of
    ``root_certificates``, ``private_key`` and ``certificate_chain`` (PEM bytes; the last two
    together for mTLS), from which SSL channel credentials are built. ``options`` are extra
    channel arguments; they override the client's own for the same key.

    Session guarantees (on unless ``session_guarantees=False``): the client remembers the
    newest version of each order it wrote or read (``session_capacity`` orders, least recently
    used forgotten first) and never returns an older one, across replicas too. Single reads
    ask for at least that version (``min_version``); an order older than remembered in a batch
    or a list page is read again with it. If the service answers that the order never reached
    the remembered version (its source of truth lost a commit), the client takes the service's
    answer and forgets the lost version.
    """

    def __init__(
        self,
        target: str,
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        options: Sequence[tuple[str, Any]] = (),
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        session_guarantees: bool = True,
        session_capacity: int = DEFAULT_SESSION_CAPACITY,
    ) -> None:
        if default_timeout <= 0:
            raise ValueError(f"default_timeout must be > 0, got {default_timeout}")
        channel_options: dict[str, Any] = {
            "grpc.enable_retries": 1,
            "grpc.service_config": service_config_json(max_attempts),
        }
        channel_options.update(options)
        channel_credentials = _channel_credentials(
            credentials, root_certificates, private_key, certificate_chain
        )
        self._default_timeout = default_timeout
        self._closed = False
        self._session = SessionVersions(session_capacity) if session_guarantees else None
        if channel_credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=list(channel_options.items()))
        else:
            self._channel = grpc.aio.secure_channel(
                target, channel_credentials, options=list(channel_options.items())
            )
        self._stub: OrderServiceAsyncStub = order_service_pb2_grpc.OrderServiceStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Close the channel, cancelling calls still running after ``grace`` seconds.

        Safe to call more than once.
        """
        if self._closed:
            return
        self._closed = True
        await self._channel.close(grace)

    # Mutations. An empty request_id is filled with a fresh UUID on a copy of the request,
    # so that the channel's retries send the same one.

    async def create_order(
        self, request: order_service_pb2.CreateOrderRequest, *, timeout: float | None = None
    ) -> order_service_pb2.CreateOrderResponse:
        """Create an order in PENDING; idempotent on ``request.request_id``."""
        response = await self._invoke(self._stub.CreateOrder, _with_request_id(request), timeout)
        self._observe(response.order)
        return response

    async def update_order_status(
        self,
        request: order_service_pb2.UpdateOrderStatusRequest,
        *,
        timeout: float | None = None,
    ) -> order_service_pb2.UpdateOrderStatusResponse:
        """Move an order to another status; idempotent on ``request.request_id``."""
        response = await self._invoke(
            self._stub.UpdateOrderStatus, _with_request_id(request), timeout
        )
        self._observe(response.order)
        return response

    # Reads.

    async def get_order_status(
        self, request: order_service_pb2.GetOrderStatusRequest, *, timeout: float | None = None
    ) -> order_service_pb2.GetOrderStatusResponse:
        """The status record of one order."""
        return (await self._read_one(self._stub.GetOrderStatus, request, timeout, False))[0]

    async def batch_get_order_status(
        self,
        request: order_service_pb2.BatchGetOrderStatusRequest,
        *,
        timeout: float | None = None,
    ) -> order_service_pb2.BatchGetOrderStatusResponse:
        """The status records of up to 100 orders, and the ids not found."""
        response = await self._invoke(self._stub.BatchGetOrderStatus, request, timeout)
        await self._no_older(response.orders, timeout)
        return response

    async def get_order_details(
        self, request: order_service_pb2.GetOrderDetailsRequest, *, timeout: float | None = None
    ) -> order_service_pb2.GetOrderDetailsResponse:
        """The whole order, items included."""
        return (await self._read_one(self._stub.GetOrderDetails, request, timeout, False))[0]

    async def list_orders_by_customer(
        self,
        request: order_service_pb2.ListOrdersByCustomerRequest,
        *,
        timeout: float | None = None,
    ) -> order_service_pb2.ListOrdersByCustomerResponse:
        """One page of a customer's orders, most recently updated first."""
        response = await self._invoke(self._stub.ListOrdersByCustomer, request, timeout)
        await self._no_older(response.orders, timeout)
        return response

    async def list_orders_by_restaurant(
        self,
        request: order_service_pb2.ListOrdersByRestaurantRequest,
        *,
        timeout: float | None = None,
    ) -> order_service_pb2.ListOrdersByRestaurantResponse:
        """One page of a restaurant's orders, most recently updated first."""
        response = await self._invoke(self._stub.ListOrdersByRestaurant, request, timeout)
        await self._no_older(response.orders, timeout)
        return response

    # Reads with the call's trailing metadata, e.g. which read tier served them.

    async def get_order_status_with_metadata(
        self, request: order_service_pb2.GetOrderStatusRequest, *, timeout: float | None = None
    ) -> tuple[order_service_pb2.GetOrderStatusResponse, CallInfo]:
        """As ``get_order_status``, with the call's ``CallInfo``."""
        response, info = await self._read_one(self._stub.GetOrderStatus, request, timeout, True)
        assert info is not None
        return response, info

    async def batch_get_order_status_with_metadata(
        self,
        request: order_service_pb2.BatchGetOrderStatusRequest,
        *,
        timeout: float | None = None,
    ) -> tuple[order_service_pb2.BatchGetOrderStatusResponse, CallInfo]:
        """As ``batch_get_order_status``, with the call's ``CallInfo``."""
        response, info = await self._invoke_with_info(
            self._stub.BatchGetOrderStatus, request, timeout
        )
        await self._no_older(response.orders, timeout)
        return response, info

    async def get_order_details_with_metadata(
        self, request: order_service_pb2.GetOrderDetailsRequest, *, timeout: float | None = None
    ) -> tuple[order_service_pb2.GetOrderDetailsResponse, CallInfo]:
        """As ``get_order_details``, with the call's ``CallInfo``."""
        response, info = await self._read_one(self._stub.GetOrderDetails, request, timeout, True)
        assert info is not None
        return response, info

    async def list_orders_by_customer_with_metadata(
        self,
        request: order_service_pb2.ListOrdersByCustomerRequest,
        *,
        timeout: float | None = None,
    ) -> tuple[order_service_pb2.ListOrdersByCustomerResponse, CallInfo]:
        """As ``list_orders_by_customer``, with the call's ``CallInfo``."""
        response, info = await self._invoke_with_info(
            self._stub.ListOrdersByCustomer, request, timeout
        )
        await self._no_older(response.orders, timeout)
        return response, info

    async def list_orders_by_restaurant_with_metadata(
        self,
        request: order_service_pb2.ListOrdersByRestaurantRequest,
        *,
        timeout: float | None = None,
    ) -> tuple[order_service_pb2.ListOrdersByRestaurantResponse, CallInfo]:
        """As ``list_orders_by_restaurant``, with the call's ``CallInfo``."""
        response, info = await self._invoke_with_info(
            self._stub.ListOrdersByRestaurant, request, timeout
        )
        await self._no_older(response.orders, timeout)
        return response, info

    # Every page of a listing.

    async def iter_orders_by_customer(
        self,
        customer_id: str,
        *,
        page_size: int = 100,
        status_filter: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_UNSPECIFIED,
        timeout: float | None = None,
    ) -> AsyncIterator[order_pb2.OrderSummary]:
        """Every order of a customer, most recently updated first, page after page.

        ``timeout`` applies to each page's call.
        """
        request = order_service_pb2.ListOrdersByCustomerRequest(
            customer_id=customer_id, page_size=page_size, status_filter=status_filter
        )
        while True:
            response = await self.list_orders_by_customer(request, timeout=timeout)
            for order in response.orders:
                yield order
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    async def iter_orders_by_restaurant(
        self,
        restaurant_id: str,
        *,
        page_size: int = 100,
        status_filter: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_UNSPECIFIED,
        timeout: float | None = None,
    ) -> AsyncIterator[order_pb2.OrderSummary]:
        """Every order of a restaurant, most recently updated first, page after page.

        ``timeout`` applies to each page's call.
        """
        request = order_service_pb2.ListOrdersByRestaurantRequest(
            restaurant_id=restaurant_id, page_size=page_size, status_filter=status_filter
        )
        while True:
            response = await self.list_orders_by_restaurant(request, timeout=timeout)
            for order in response.orders:
                yield order
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    # Watches (server streaming), resumed on UNAVAILABLE from what they last delivered.

    def watch_order_status(
        self,
        order_id: str,
        *,
        after_version: int = 0,
        resume_attempts: int = DEFAULT_RESUME_ATTEMPTS,
        timeout: float | None = None,
    ) -> AsyncIterator[order_service_pb2.WatchOrderStatusResponse]:
        """The order's current status, then every newer version, ending after a terminal one.

        ``async for update in client.watch_order_status(order_id):``. A stream that ends with
        UNAVAILABLE is opened again from the last version delivered (``resume_attempts``
        failures in a row at most, waiting the server's RetryInfo or a backoff); with
        ``after_version``, the first update is the first newer version. ``timeout`` (seconds)
        bounds the whole watch; by default it has none. See ``_watch.py`` for the session
        guarantees.
        """
        return watch_order_status(
            self._stub,
            order_id,
            after_version,
            self._session,
            resume_attempts=resume_attempts,
            timeout=timeout,
        )

    def watch_restaurant_orders(
        self,
        restaurant_id: str,
        *,
        status_filter: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_UNSPECIFIED,
        resume_token: str = "",
        resume_attempts: int = DEFAULT_RESUME_ATTEMPTS,
        timeout: float | None = None,
    ) -> AsyncIterator[order_service_pb2.WatchRestaurantOrdersResponse]:
        """A restaurant's board, a ``caught_up`` message, then every change, until cancelled.

        Resumed on UNAVAILABLE like ``watch_order_status``, from the last resume token
        delivered (each resume sends the changes since, then ``caught_up`` again); a version
        of an order not newer than one already delivered is not delivered again.
        """
        return watch_restaurant_orders(
            self._stub,
            restaurant_id,
            status_filter,
            resume_token,
            self._session,
            resume_attempts=resume_attempts,
            timeout=timeout,
        )

    async def _invoke(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
        timeout: float | None,
    ) -> _Response:
        try:
            return await rpc(request, timeout=self._timeout(timeout))
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc_error(error) from error

    async def _invoke_with_info(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
        timeout: float | None,
    ) -> tuple[_Response, CallInfo]:
        call = rpc(request, timeout=self._timeout(timeout))
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc_error(error) from error
        trailing = tuple(await call.trailing_metadata() or ())
        served_by = next(
            (value for key, value in trailing if key == SERVED_BY_KEY and isinstance(value, str)),
            None,
        )
        return response, CallInfo(served_by=served_by, trailing_metadata=trailing)

    # Session guarantees.

    def _observe(self, order: order_pb2.Order | order_pb2.OrderSummary) -> None:
        if self._session is not None:
            self._session.observe(order.order_id, order.version)

    async def _read_one(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_SingleRead, _SingleReply],
        request: _SingleRead,
        timeout: float | None,
        with_info: bool,
    ) -> tuple[_SingleReply, CallInfo | None]:
        """One order's read, at least at the version this session has seen of it."""
        session = self._session
        floor = 0 if session is None else session.floor(request.order_id)
        sent = request
        # A negative min_version is the caller's mistake: the service's answer says so.
        if floor > request.min_version >= 0:
            sent = type(request)()
            sent.CopyFrom(request)
            sent.min_version = floor
        try:
            response, info = await self._call(rpc, sent, timeout, with_info)
        except FailedPreconditionError as error:
            if sent is request or error.reason != VERSION_NOT_REACHED:
                raise
            # The service never reached what this session saw: its source of truth lost a
            # commit. Its answer is the truth now; the lost version is forgotten.
            response, info = await self._call(rpc, request, timeout, with_info)
            if session is not None:
                session.reset(response.order.order_id, response.order.version)
            return response, info
        except NotFoundError:
            if session is not None and floor:
                session.reset(request.order_id, 0)
            raise
        self._observe(response.order)
        return response, info

    async def _no_older(
        self, orders: MutableSequence[order_pb2.OrderSummary], timeout: float | None
    ) -> None:
        """Reads again, at the remembered version, each order older than this session has
        seen; then remembers what it returns."""
        session = self._session
        if session is None:
            return
        stale = [
            i for i, order in enumerate(orders) if order.version < session.floor(order.order_id)
        ]
        if stale:
            fresh = await asyncio.gather(
                *(
                    self.get_order_status(
                        order_service_pb2.GetOrderStatusRequest(order_id=orders[i].order_id),
                        timeout=timeout,
                    )
                    for i in stale
                )
            )
            for i, reply in zip(stale, fresh, strict=True):
                orders[i].CopyFrom(reply.order)
        session.observe_all((order.order_id, order.version) for order in orders)

    async def _call(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
        timeout: float | None,
        with_info: bool,
    ) -> tuple[_Response, CallInfo | None]:
        if with_info:
            return await self._invoke_with_info(rpc, request, timeout)
        return await self._invoke(rpc, request, timeout), None

    def _timeout(self, timeout: float | None) -> float:
        return self._default_timeout if timeout is None else timeout


def _with_request_id(request: _Mutation) -> _Mutation:
    """The request itself when it has a request_id, else a copy with a fresh UUID."""
    if request.request_id:
        return request
    filled = type(request)()
    filled.CopyFrom(request)
    filled.request_id = str(uuid.uuid4())
    return filled


def _channel_credentials(
    credentials: grpc.ChannelCredentials | None,
    root_certificates: bytes | None,
    private_key: bytes | None,
    certificate_chain: bytes | None,
) -> grpc.ChannelCredentials | None:
    """The channel's credentials: given, built from PEM bytes, or None for plaintext."""
    pem_given = any(pem is not None for pem in (root_certificates, private_key, certificate_chain))
    if credentials is not None and pem_given:
        raise ValueError("pass either credentials or PEM bytes, not both")
    if (private_key is None) != (certificate_chain is None):
        raise ValueError("private_key and certificate_chain go together (mTLS)")
    if credentials is not None:
        return credentials
    if not pem_given:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates,
        private_key=private_key,
        certificate_chain=certificate_chain,
    )
