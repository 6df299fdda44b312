"""Turning tracing on: an SDK tracer provider with the exporters the settings name.

The settings hold the standard variables that decide whether and how we export
(`OTEL_TRACES_EXPORTER`, `OTEL_SDK_DISABLED`, the OTLP endpoint's presence and protocol); the
SDK itself reads the rest: the sampler (`OTEL_TRACES_SAMPLER`), the batch settings
(`OTEL_BSP_*`), the resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) and the
exporter's endpoint and headers.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from uoom_orders.observability.tracing import DEFAULT_SERVICE_NAME, use_tracer_provider

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TracingConfig:
    """Which exporters to use (none: tracing off) and the OTLP protocol."""

    exporters: tuple[str, ...] = ()
    otlp_protocol: str = "http/protobuf"


class TracingSetupError(RuntimeError):
    """The configured exporter cannot be made here (its package is missing)."""


def _otlp_exporter(protocol: str) -> SpanExporter:
    # Imported here: the exporters pull in an HTTP or gRPC client that an untraced process
    # never needs to load.
    if protocol == "grpc":
        try:
            module = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
            )
        except ImportError as error:
            raise TracingSetupError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the package "
                "opentelemetry-exporter-otlp-proto-grpc; install it or use http/protobuf"
            ) from error
        exporter: SpanExporter = module.OTLPSpanExporter()
        return exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _resource(service_name: str) -> Resource:
    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    return resource


def tracer_provider(
    config: TracingConfig, service_name: str = DEFAULT_SERVICE_NAME
) -> SdkTracerProvider | None:
    """An SDK provider exporting as configured, or None when no exporter is. The provider is
    not made current or global; the caller shuts it down."""
    if not config.exporters:
        return None
    exporters = [
        _otlp_exporter(config.otlp_protocol) if name == "otlp" else ConsoleSpanExporter()
        for name in config.exporters
    ]
    provider = SdkTracerProvider(resource=_resource(service_name))
    for exporter in exporters:
        # Batching keeps the export (and its network calls) off the request path.
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@contextlib.contextmanager
def configure_tracing(
    config: TracingConfig, service_name: str = DEFAULT_SERVICE_NAME
) -> Iterator[trace.TracerProvider | None]:
    """Turns tracing on for the block when an exporter is configured.

    Yields the provider, or None (tracing stays off). On exit, flushes and shuts the provider
    down. The provider is also made OTel's global one the first time, so any library that
    reports to the global provider joins the same traces.
    """
    provider = tracer_provider(config, service_name)
    if provider is None:
        yield None
        return
    # OTel allows one global provider per process; a second configure (a test, a restart in
    # the same process) leaves the first in place and only swaps ours.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    _log.info("tracing on: %s", ", ".join(config.exporters))
    try:
        with use_tracer_provider(provider):
            yield provider
    finally:
        provider.shutdown()
