"""The gRPC servicer: requests to commands, queries and watches, results to responses.
Nothing else (how errors are answered: rpc_errors.py)."""

from __future__ import annotations

import logging
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from uoom.orders.v1 import order_pb2, order_service_pb2_grpc
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.api import request_parsing
from uoom_orders.api.rpc_errors import answer_errors, answer_stream_errors
from uoom_orders.application import handlers
from uoom_orders.application.ports import TraceContext, UnitOfWorkFactory
from uoom_orders.application.queries import OrderQueries
from uoom_orders.domain import contract_rules as rules
from uoom_orders.domain.errors import WatchesOff
from uoom_orders.observability.rate_limited_log import RateLimitedLog
from uoom_orders.read.near_cache_reads import NearCacheReads
from uoom_orders.read.ports import ListScope
from uoom_orders.watch import Watches

SERVED_BY = "x-served-by"

_log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        new_uow: UnitOfWorkFactory[order_pb2.Order],
        queries: OrderQueries,
        trace_context: TraceContext = dict,
        watches: Watches | None = None,
        near_cache: NearCacheReads | None = None,
    ) -> None:
        self._new_uow = new_uow
        self._queries = queries
        # None without a near cache: every read goes through the queries.
        self._near_cache = near_cache
        self._near_cache_served: tuple[tuple[str, str], ...] = ()
        if near_cache is not None:
            self._near_cache_served = ((SERVED_BY, near_cache.name),)
        self._trace_context = trace_context
        # None on a replica that does not follow the event topic: it cannot watch.
        self._watches = watches
        # What a caller provokes at will (garbage requests, cancelled calls) is logged at most
        # once per interval per kind, never with a traceback; the metrics count every one.
        self.callers_faults = RateLimitedLog(_log)

    @staticmethod
    def _served_by(context: grpc.aio.ServicerContext[Req, Resp], tier: str) -> None:
        context.set_trailing_metadata(((SERVED_BY, tier),))

    @answer_errors
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

    @answer_errors
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

    # A status read the near cache can answer is answered in one step (near_cache_reads.py),
    # with the response's bytes, which gRPC sends as they are (the generated stubs only know
    # message answers). Any other goes through the queries and the read path.
    @answer_errors
    async def GetOrderStatus(  # type: ignore[override]
        self,
        request: pb.GetOrderStatusRequest,
        context: grpc.aio.ServicerContext[pb.GetOrderStatusRequest, pb.GetOrderStatusResponse],
    ) -> pb.GetOrderStatusResponse | bytes:
        if self._near_cache is not None:
            answer = self._near_cache.summary(request.order_id, request.min_version)
            if answer is not None:
                context.set_trailing_metadata(self._near_cache_served)
                return answer
        order_id, min_version = request_parsing.order_id_and_min_version(
            request.order_id, request.min_version
        )
        summary, tier = await self._queries.get_status(order_id, min_version)
        self._served_by(context, tier)
        return pb.GetOrderStatusResponse(order=summary)

    @answer_errors
    async def BatchGetOrderStatus(  # type: ignore[override]
        self,
        request: pb.BatchGetOrderStatusRequest,
        context: grpc.aio.ServicerContext[
            pb.BatchGetOrderStatusRequest, pb.BatchGetOrderStatusResponse
        ],
    ) -> pb.BatchGetOrderStatusResponse | bytes:
        if self._near_cache is not None:
            answers = self._near_cache.summaries(request.order_ids)
            if answers is not None:
                context.set_trailing_metadata(self._near_cache_served)
                return answers
        ids = request_parsing.batch_ids(request.order_ids)
        result = await self._queries.batch_get_status(ids)
        self._served_by(context, result.served_by)
        # Echo the caller's own strings (one spelling is accepted, so they are the canonical
        # ones too), in request order, each once.
        sent = dict(zip(ids, request.order_ids, strict=True))
        missing = [sent[i] for i in result.missing]
        return pb.BatchGetOrderStatusResponse(orders=result.orders, missing_order_ids=missing)

    @answer_errors
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

    @answer_errors
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

    @answer_errors
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

    def _watching(self) -> Watches:
        if self._watches is None:
            raise WatchesOff(
                "this replica does not follow the event topic (its near cache is off), so it "
                "cannot watch"
            )
        return self._watches

    # A streaming handler of grpc.aio may write with context.write and return None (so a
    # watch's end is deterministic: no generator left for the garbage collector to close);
    # the generated stubs only know handlers that return iterators.
    @answer_stream_errors
    async def WatchOrderStatus(  # type: ignore[override]
        self,
        request: pb.WatchOrderStatusRequest,
        context: grpc.aio.ServicerContext[pb.WatchOrderStatusRequest, pb.WatchOrderStatusResponse],
    ) -> None:
        order_id, after_version = request_parsing.order_id_and_min_version(
            request.order_id, request.after_version, version_field="after_version"
        )
        await self._watching().order_status(order_id, after_version, context.write)

    @answer_stream_errors
    async def WatchRestaurantOrders(  # type: ignore[override]
        self,
        request: pb.WatchRestaurantOrdersRequest,
        context: grpc.aio.ServicerContext[
            pb.WatchRestaurantOrdersRequest, pb.WatchRestaurantOrdersResponse
        ],
    ) -> None:
        query = request_parsing.list_query(
            ListScope.RESTAURANT,
            "restaurant_id",
            request.restaurant_id,
            rules.PAGE_SIZE.maximum,
            request.status_filter,
        )
        await self._watching().restaurant_orders(query, request.resume_token, context.write)
