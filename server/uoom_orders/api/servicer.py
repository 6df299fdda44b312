"""The gRPC servicer: requests to commands and queries, results to responses. Nothing else."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from uoom.orders.v1 import order_pb2, order_service_pb2_grpc
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.api import request_parsing
from uoom_orders.api.request_decoding import UndecodableRequest
from uoom_orders.api.status_mapping import status_for
from uoom_orders.application import handlers
from uoom_orders.application.ports import TraceContext, UnitOfWorkFactory
from uoom_orders.application.queries import OrderQueries
from uoom_orders.domain.errors import FieldViolation, InvalidInput
from uoom_orders.observability import metrics, tracing
from uoom_orders.observability.rate_limited_log import RateLimitedLog
from uoom_orders.read.ports import ListScope

SERVED_BY = "x-served-by"
_SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["OrderService"]
_SERVICE = _SERVICE_DESCRIPTOR.full_name

_log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
Handler = Callable[["OrderServicer", Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]


def _malformed(method: str, request: UndecodableRequest, log: RateLimitedLog) -> InvalidInput:
    metrics.RPC_MALFORMED.labels(method=method).inc()
    log.warning(
        "malformed",
        "%s: a request of %d bytes is not a %s message: %s",
        method,
        request.size,
        _request_type(method),
        request.error[:200],
    )
    return InvalidInput(
        f"the request is not a valid {_request_type(method)} message",
        reason="MALFORMED_REQUEST",
        violations=(
            FieldViolation(
                "",  # the whole request
                f"not a valid {_request_type(method)} in the protobuf binary format",
            ),
        ),
    )


def _request_type(method: str) -> str:
    return _SERVICE_DESCRIPTOR.methods_by_name[method].input_type.full_name


def _answer_errors(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Any error becomes a status from the mapping table; nothing escapes as a stack trace.
    Also counts each call by status code and times it."""
    name = method.__name__
    full_name = f"{_SERVICE}/{name}"
    latency = metrics.RPC_LATENCY.labels(method=name)
    ok = metrics.RPC_HANDLED.labels(method=name, code="OK")
    cancelled = metrics.RPC_CANCELLED.labels(method=name)

    @functools.wraps(method)
    async def guarded(
        self: OrderServicer, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> Resp:
        started = time.perf_counter()
        # The call's server span; a shared no-op while tracing is off (no interceptor).
        with tracing.server_span(full_name, context.invocation_metadata) as span:
            try:
                if isinstance(request, UndecodableRequest):
                    raise _malformed(name, request, self._callers_faults)
                response = await method(self, request, context)
            except asyncio.CancelledError:
                # The caller gave up (cancel or deadline) or the shutdown grace ran out: not
                # an error of the service, and nobody is left to answer.
                cancelled.inc()
                latency.observe(time.perf_counter() - started)
                self._callers_faults.warning(
                    "cancelled", "%s: call cancelled before its answer", name
                )
                raise
            except Exception as error:
                status = status_for(error, name)
                metrics.RPC_HANDLED.labels(method=name, code=status.code.name).inc()
                latency.observe(time.perf_counter() - started)
                tracing.set_rpc_status(span, status.code.value[0], error)
                await context.abort_with_status(status)
                raise  # unreachable: abort_with_status raises
            ok.inc()
            latency.observe(time.perf_counter() - started)
            tracing.set_rpc_status(span, 0)
            return response

    return guarded


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        new_uow: UnitOfWorkFactory[order_pb2.Order],
        queries: OrderQueries,
        trace_context: TraceContext = dict,
    ) -> None:
        self._new_uow = new_uow
        self._queries = queries
        self._trace_context = trace_context
        # What a caller provokes at will (garbage requests, cancelled calls) is logged at most
        # once per interval per kind, never with a traceback; the metrics count every one.
        self._callers_faults = RateLimitedLog(_log)

    @staticmethod
    def _served_by(context: grpc.aio.ServicerContext[Req, Resp], tier: str) -> None:
        context.set_trailing_metadata(((SERVED_BY, tier),))

    @_answer_errors
    async def CreateOrder(
        self,
        request: pb.CreateOrderRequest,
        context: grpc.aio.ServicerContext[pb.CreateOrderRequest, pb.CreateOrderResponse],
    ) -> pb.CreateOrderResponse:
        # The unit of work encodes the order once: the answer is that message.
        order = await handlers.create_order(
            request_parsing.create_order(request),
            self._new_uow,
            trace_context=self._trace_context,
        )
        return pb.CreateOrderResponse(order=order)

    @_answer_errors
    async def UpdateOrderStatus(
        self,
        request: pb.UpdateOrderStatusRequest,
        context: grpc.aio.ServicerContext[
            pb.UpdateOrderStatusRequest, pb.UpdateOrderStatusResponse
        ],
    ) -> pb.UpdateOrderStatusResponse:
        order = await handlers.update_order_status(
            request_parsing.update_order_status(request),
            self._new_uow,
            trace_context=self._trace_context,
        )
        return pb.UpdateOrderStatusResponse(order=order)

    @_answer_errors
    async def GetOrderStatus(
        self,
        request: pb.GetOrderStatusRequest,
        context: grpc.aio.ServicerContext[pb.GetOrderStatusRequest, pb.GetOrderStatusResponse],
    ) -> pb.GetOrderStatusResponse:
        order_id, min_version = request_parsing.order_id_and_min_version(
            request.order_id, request.min_version
        )
        summary, tier = await self._queries.get_status(order_id, min_version)
        self._served_by(context, tier)
        return pb.GetOrderStatusResponse(order=summary)

    @_answer_errors
    async def BatchGetOrderStatus(
        self,
        request: pb.BatchGetOrderStatusRequest,
        context: grpc.aio.ServicerContext[
            pb.BatchGetOrderStatusRequest, pb.BatchGetOrderStatusResponse
        ],
    ) -> pb.BatchGetOrderStatusResponse:
        ids = request_parsing.batch_ids(request.order_ids)
        result = await self._queries.batch_get_status(ids)
        self._served_by(context, result.served_by)
        missing: list[str] = []
        if result.missing:
            # Echo the caller's own strings (one spelling is accepted, so they are the
            # canonical ones too), in request order, each once.
            sent = dict(zip(ids, request.order_ids, strict=True))
            missing = [sent[i] for i in result.missing]
        return pb.BatchGetOrderStatusResponse(orders=result.orders, missing_order_ids=missing)

    @_answer_errors
    async def GetOrderDetails(
        self,
        request: pb.GetOrderDetailsRequest,
        context: grpc.aio.ServicerContext[pb.GetOrderDetailsRequest, pb.GetOrderDetailsResponse],
    ) -> pb.GetOrderDetailsResponse:
        order_id, min_version = request_parsing.order_id_and_min_version(
            request.order_id, request.min_version
        )
        order, tier = await self._queries.get_details(order_id, min_version)
        self._served_by(context, tier)
        return pb.GetOrderDetailsResponse(order=order)

    @_answer_errors
    async def ListOrdersByCustomer(
        self,
        request: pb.ListOrdersByCustomerRequest,
        context: grpc.aio.ServicerContext[
            pb.ListOrdersByCustomerRequest, pb.ListOrdersByCustomerResponse
        ],
    ) -> pb.ListOrdersByCustomerResponse:
        query = request_parsing.list_query(
            ListScope.CUSTOMER,
            "customer_id",
            request.customer_id,
            request.page_size,
            request.status_filter,
        )
        page = await self._queries.list_orders(query, request.page_token)
        self._served_by(context, page.served_by)
        return pb.ListOrdersByCustomerResponse(
            orders=page.orders, next_page_token=page.next_page_token
        )

    @_answer_errors
    async def ListOrdersByRestaurant(
        self,
        request: pb.ListOrdersByRestaurantRequest,
        context: grpc.aio.ServicerContext[
            pb.ListOrdersByRestaurantRequest, pb.ListOrdersByRestaurantResponse
        ],
    ) -> pb.ListOrdersByRestaurantResponse:
        query = request_parsing.list_query(
            ListScope.RESTAURANT,
            "restaurant_id",
            request.restaurant_id,
            request.page_size,
            request.status_filter,
        )
        page = await self._queries.list_orders(query, request.page_token)
        self._served_by(context, page.served_by)
        return pb.ListOrdersByRestaurantResponse(
            orders=page.orders, next_page_token=page.next_page_token
        )
