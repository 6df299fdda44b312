"""Tracing: one trace from the gRPC call through the PostgreSQL transaction, the outbox row,
the Kafka message and the projector's DynamoDB write.

Spans are made by hand at those few boundaries (the servicer, the unit of work, the relay's
publish, the projector's write) rather than by instrumentation packages: each boundary is one
place in our code, and a hand-made span there costs nothing when tracing is off, while an
interceptor or a patched driver would sit on every call.

Off by default; `tracing_setup.configure_tracing` turns it on as the settings say.

Our spans go to the provider made current by `configure_tracing` or `use_tracer_provider`,
looked up at call time, rather than to OTel's global provider: the global can be set only once
per process, and a test needs its own provider and in-memory exporter for the length of one
test. When no provider is current, every helper here returns a shared no-op after one global
read, so the read path pays next to nothing.

The trace context travels as W3C headers (`traceparent`, `tracestate`, and `baggage` by
default; `OTEL_PROPAGATORS` changes the set): in the gRPC metadata, then in the outbox row's
`trace_context` column, then in the Kafka message headers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "OpenSpan",
    "client_span",
    "consume_span",
    "enabled",
    "end_publish_spans",
    "inject_current",
    "open_span",
    "publish_span",
    "server_span",
    "set_rpc_status",
    "use_tracer_provider",
]

_log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "uoom-orders"
"""`service.name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it."""

_SCOPE = "uoom_orders"
# Server-side gRPC codes that mean the server failed (OTel's RPC conventions): bad input,
# not-found and the like are the caller's business and leave the span's status unset.
_SERVER_FAULT_CODES = frozenset({2, 4, 12, 13, 14, 15})  # UNKNOWN, DEADLINE_EXCEEDED, ...


@dataclass(frozen=True, slots=True)
class _Current:
    provider: trace.TracerProvider
    tracer: trace.Tracer


# None until `configure_tracing` or `use_tracer_provider` runs: nothing is set at import.
_current: _Current | None = None
# Shared and re-entrant: what every span helper returns while tracing is off.
_NO_SPAN: AbstractContextManager[Span] = contextlib.nullcontext(trace.INVALID_SPAN)


def enabled() -> bool:
    """True while a tracer provider is current."""
    return _current is not None


@contextlib.contextmanager
def use_tracer_provider(provider: trace.TracerProvider) -> Iterator[None]:
    """Sends this package's spans to `provider` until the block ends (tests, embedding)."""
    global _current
    previous = _current
    _current = _Current(provider, provider.get_tracer(_SCOPE))
    try:
        yield
    finally:
        _current = previous


# --- propagation --------------------------------------------------------------------------


def inject_current() -> dict[str, str]:
    """The current trace context as headers (e.g. `traceparent`); empty outside a span.

    For the outbox row, so the relay and the projector continue the writer's trace.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _trace_headers(headers: Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    fields = propagate.get_global_textmap().fields
    carrier: dict[str, str] = {}
    for name, value in headers or ():
        if name.lower() in fields:
            carrier[name.lower()] = (
                value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            )
    return carrier


# --- spans --------------------------------------------------------------------------------


def server_span(
    full_method: str, metadata: Callable[[], Iterable[tuple[str, Any]] | None]
) -> AbstractContextManager[Span]:
    """The current span of one gRPC call, continuing the caller's trace from the metadata.

    `full_method` is `package.Service/Method`; `metadata` is only called when tracing is on.
    Exceptions are not recorded automatically: `set_rpc_status` records the error that
    decided the status, not the AbortError that carries it out.
    """
    current = _current
    if current is None:
        return _NO_SPAN
    service, _, method = full_method.rpartition("/")
    return current.tracer.start_as_current_span(
        full_method,
        context=propagate.extract(_trace_headers(metadata())),
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
        record_exception=False,
        set_status_on_exception=False,
    )


def set_rpc_status(span: Span, code: int, error: BaseException | None = None) -> None:
    """Records a call's gRPC status code on its span, and the error when the server failed."""
    span.set_attribute("rpc.grpc.status_code", code)
    if error is not None and code in _SERVER_FAULT_CODES:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def client_span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> AbstractContextManager[Span]:
    """The current span of a call to another system (errors are recorded on it)."""
    current = _current
    if current is None:
        return _NO_SPAN
    return current.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


class OpenSpan:
    """A span that stays current until `end()`, for a scope that starts and ends in different
    methods (an async context manager's enter and exit, run in the same task)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span | None, token: Token[Context] | None) -> None:
        self._span = span
        self._token = token

    def end(
        self,
        error: BaseException | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """Ends the span, with `error` recorded if given; safe to call twice."""
        span, self._span = self._span, None
        token, self._token = self._token, None
        if span is None or token is None:
            return
        if attributes:
            span.set_attributes(attributes)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        otel_context.detach(token)
        span.end()


_NO_OPEN_SPAN = OpenSpan(None, None)


def open_span(
    name: str, *, kind: SpanKind, attributes: Mapping[str, AttributeValue] | None = None
) -> OpenSpan:
    """Starts a span and makes it current until its `end()`."""
    current = _current
    if current is None:
        return _NO_OPEN_SPAN
    span = current.tracer.start_span(name, kind=kind, attributes=attributes)
    return OpenSpan(span, otel_context.attach(trace.set_span_in_context(span)))


def publish_span(
    topic: str,
    parent: Mapping[str, str],
    headers: Sequence[tuple[str, bytes]],
    *,
    message_id: str,
    key: str,
    outbox_id: int,
) -> tuple[Span | None, list[tuple[str, bytes]]]:
    """Starts the span of one message's publish as a child of `parent` (the trace context
    stored with its outbox row); returns it with `headers` re-pointed at it, so the consumer's
    span becomes its child. Off: (None, the headers unchanged). End it with
    `end_publish_spans` once the broker has answered."""
    current = _current
    if current is None:
        return None, list(headers)
    span = current.tracer.start_span(
        f"publish {topic}",
        context=propagate.extract(parent),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": message_id,
            "messaging.kafka.message.key": key,
            "uoom.outbox.id": outbox_id,
        },
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    kept = [(name, value) for name, value in headers if name.lower() not in carrier]
    return span, kept + [(name, value.encode("utf-8")) for name, value in carrier.items()]


def end_publish_spans(
    spans: Sequence[Span | None],
    results: Sequence[object],
    send_error: BaseException | None = None,
) -> None:
    """Ends the publish spans of a batch: `results[i]` is what record i's send came to (an
    exception marks a failure); records past the end of `results` were never queued because
    of `send_error`."""
    for index, span in enumerate(spans):
        if span is None:
            continue
        outcome = results[index] if index < len(results) else send_error
        if isinstance(outcome, BaseException):
            span.record_exception(outcome)
            span.set_status(Status(StatusCode.ERROR, type(outcome).__name__))
        span.end()


def consume_span(
    topic: str,
    headers: Iterable[tuple[str, bytes]] | None,
    *,
    group: str,
    partition: int,
    offset: int,
    order_id: str,
    version: int,
) -> AbstractContextManager[Span]:
    """The current span of processing one Kafka message, a child of the trace context in its
    headers (so one trace runs from the gRPC call to the read model)."""
    current = _current
    if current is None:
        return _NO_SPAN
    return current.tracer.start_as_current_span(
        f"process {topic}",
        context=propagate.extract(_trace_headers(headers)),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            "uoom.order.id": order_id,
            "uoom.order.version": version,
        },
    )
