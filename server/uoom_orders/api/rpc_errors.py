"""How every RPC answers: any error becomes a status from the mapping table (nothing escapes as
a stack trace), each call is counted by its status code, and a request whose bytes are not the
method's message is INVALID_ARGUMENT (MALFORMED_REQUEST)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.api.request_decoding import UndecodableRequest
from uoom_orders.api.status_mapping import status_for
from uoom_orders.domain.errors import FieldViolation, InvalidInput
from uoom_orders.observability import metrics, tracing
from uoom_orders.observability.rate_limited_log import RateLimitedLog

_SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["OrderService"]
_SERVICE = _SERVICE_DESCRIPTOR.full_name


class AnswersCalls(Protocol):
    """A servicer: what a caller provokes at will is logged through `callers_faults`."""

    callers_faults: RateLimitedLog


S = TypeVar("S", bound=AnswersCalls)
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
# What a unary method answers: its response message, or that message already encoded
# (wire.status_answer).
Answer = TypeVar("Answer")
Unary = Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Answer]]
# A server-streaming method writes its messages with `context.write` and returns nothing.
Streaming = Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[None]]


def _request_type(method: str) -> str:
    return _SERVICE_DESCRIPTOR.methods_by_name[method].input_type.full_name


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


def answer_errors(method: Unary[S, Req, Resp, Answer]) -> Unary[S, Req, Resp, Answer]:
    """For a unary method: also times each call."""
    name = method.__name__
    full_name = f"{_SERVICE}/{name}"
    latency = metrics.RPC_LATENCY.labels(method=name)
    ok = metrics.RPC_HANDLED.labels(method=name, code="OK")
    cancelled = metrics.RPC_CANCELLED.labels(method=name)

    @functools.wraps(method)
    async def guarded(
        self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> Answer:
        started = time.perf_counter()
        # The call's server span; a shared no-op while tracing is off (no interceptor).
        with tracing.server_span(full_name, context.invocation_metadata) as span:
            try:
                if isinstance(request, UndecodableRequest):
                    raise _malformed(name, request, self.callers_faults)
                response = await method(self, request, context)
            except asyncio.CancelledError:
                # The caller gave up (cancel or deadline) or the shutdown grace ran out: not
                # an error of the service, and nobody is left to answer.
                cancelled.inc()
                latency.observe(time.perf_counter() - started)
                self.callers_faults.warning(
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


def answer_stream_errors(method: Streaming[S, Req, Resp]) -> Streaming[S, Req, Resp]:
    """For a server-streaming method: a stream lasts as long as its caller wants, so it is
    not timed, and a caller leaving it is how it usually ends, so that is not logged."""
    name = method.__name__
    full_name = f"{_SERVICE}/{name}"
    ok = metrics.RPC_HANDLED.labels(method=name, code="OK")
    cancelled = metrics.RPC_CANCELLED.labels(method=name)

    @functools.wraps(method)
    async def guarded(self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> None:
        with tracing.server_span(full_name, context.invocation_metadata) as span:
            try:
                if isinstance(request, UndecodableRequest):
                    raise _malformed(name, request, self.callers_faults)
                await method(self, request, context)
            except asyncio.CancelledError:
                cancelled.inc()
                raise
            except Exception as error:
                status = status_for(error, name)
                metrics.RPC_HANDLED.labels(method=name, code=status.code.name).inc()
                tracing.set_rpc_status(span, status.code.value[0], error)
                await context.abort_with_status(status)
                raise  # unreachable: abort_with_status raises
            ok.inc()
            tracing.set_rpc_status(span, 0)

    return guarded
