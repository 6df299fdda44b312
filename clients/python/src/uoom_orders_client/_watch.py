"""Watches that resume by themselves.

A watch stream ends with UNAVAILABLE when its replica cannot go on (its event feed is not live,
it shuts down, the caller fell too far behind, the connection broke). The client then opens it
again, on whichever replica the channel reaches, from what it last delivered: the order's last
version (``after_version``) or the board's last resume token. It waits the server's retry hint
(google.rpc.RetryInfo) or its own backoff, whichever is longer, and gives up after
``resume_attempts`` failed attempts in a row (an attempt that delivers a message resets the
count), raising the last error.

With session guarantees, each version delivered is remembered like a read's, a watch asks for
at least the version the session has seen (so its first message is never older), and versions
older than remembered are not delivered; a ``corrected`` message (the service's source of truth
lost newer versions) replaces what is remembered. ``skipped_versions`` counts, per order, the
versions between two messages this iterator delivered, across resumes.
"""

# `timeout` is the gRPC deadline of the whole watch, split over its streams (see _client.py).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders_client._errors import OrderServiceError, UnavailableError, error_from_rpc_error
from uoom_orders_client._session import SessionVersions

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

DEFAULT_RESUME_ATTEMPTS = 10
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 2.0
# Orders of a board whose last delivered version one iterator remembers.
_BOARD_MEMORY = 10_000
_TERMINAL = frozenset({order_pb2.ORDER_STATUS_DELIVERED, order_pb2.ORDER_STATUS_CANCELLED})


class _Resumer:
    """Decides, after a failed stream, whether to open it again and waits before."""

    def __init__(self, attempts: int, timeout: float | None) -> None:
        if attempts < 0:
            raise ValueError(f"resume_attempts must be >= 0, got {attempts}")
        self._attempts = attempts
        self._failures = 0
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """The time left of the whole watch (None: no deadline); DEADLINE_EXCEEDED past it."""
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise OrderServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "watch deadline exceeded")
        return left

    def delivered(self) -> None:
        self._failures = 0

    async def after(self, error: grpc.aio.AioRpcError) -> None:
        """Returns when the stream may be opened again; raises the typed error when not."""
        typed = error_from_rpc_error(error)
        if not isinstance(typed, UnavailableError) or self._failures >= self._attempts:
            raise typed from error
        self._failures += 1
        backoff = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (self._failures - 1))
        await asyncio.sleep(max(typed.retry_delay or 0.0, backoff * random.uniform(0.5, 1.0)))


async def watch_order_status(
    stub: OrderServiceAsyncStub,
    order_id: str,
    after_version: int,
    session: SessionVersions | None,
    *,
    resume_attempts: int,
    timeout: float | None,
) -> AsyncIterator[order_service_pb2.WatchOrderStatusResponse]:
    """See OrderServiceClient.watch_order_status."""
    resumer = _Resumer(resume_attempts, timeout)
    last = after_version
    while True:
        floor = 0 if session is None else session.floor(order_id)
        request = order_service_pb2.WatchOrderStatusRequest(
            order_id=order_id, after_version=max(last, floor - 1)
        )
        call = stub.WatchOrderStatus(request, timeout=resumer.remaining())
        try:
            async for message in call:
                resumer.delivered()
                order = message.order
                if message.corrected:
                    if session is not None:
                        session.reset(order.order_id, order.version)
                    message.skipped_versions = 0
                elif order.version <= last or order.version < floor:
                    continue
                else:
                    message.skipped_versions = order.version - last - 1 if last else 0
                    if session is not None:
                        session.observe(order.order_id, order.version)
                last = order.version
                yield message
                if order.status in _TERMINAL:
                    return
            return
        except grpc.aio.AioRpcError as error:
            await resumer.after(error)
        finally:
            call.cancel()


async def watch_restaurant_orders(
    stub: OrderServiceAsyncStub,
    restaurant_id: str,
    status_filter: order_pb2.OrderStatus.ValueType,
    resume_token: str,
    session: SessionVersions | None,
    *,
    resume_attempts: int,
    timeout: float | None,
) -> AsyncIterator[order_service_pb2.WatchRestaurantOrdersResponse]:
    """See OrderServiceClient.watch_restaurant_orders."""
    resumer = _Resumer(resume_attempts, timeout)
    token = resume_token
    delivered: OrderedDict[str, int] = OrderedDict()
    while True:
        request = order_service_pb2.WatchRestaurantOrdersRequest(
            restaurant_id=restaurant_id, status_filter=status_filter, resume_token=token
        )
        call = stub.WatchRestaurantOrders(request, timeout=resumer.remaining())
        try:
            async for message in call:
                resumer.delivered()
                if message.resume_token:  # empty while a fresh board is being sent
                    token = message.resume_token
                if message.HasField("order"):
                    order = message.order
                    previous = delivered.get(order.order_id)
                    if message.corrected:
                        if session is not None:
                            session.reset(order.order_id, order.version)
                    else:
                        floor = 0 if session is None else session.floor(order.order_id)
                        if order.version <= (previous or 0) or order.version < floor:
                            continue
                        if previous is not None:
                            message.skipped_versions = order.version - previous - 1
                        if session is not None:
                            session.observe(order.order_id, order.version)
                    delivered[order.order_id] = order.version
                    delivered.move_to_end(order.order_id)
                    if len(delivered) > _BOARD_MEMORY:
                        delivered.popitem(last=False)
                yield message
            return
        except grpc.aio.AioRpcError as error:
            await resumer.after(error)
        finally:
            call.cancel()
