"""Tracing: one trace from CreateOrder to the read model over the real stack, and the OTEL_*
configuration.

The spans go to this test's own provider and in-memory exporter through
`use_tracer_provider`, never to OTel's global provider (which a process can set only once),
so nothing leaks into other tests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence

import asyncpg
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, SpanKind, StatusCode

from tests.builders import create_request
from tests.integration.projector_support import eventually
from uoom_orders.bootstrap import running_service
from uoom_orders.config import ConfigError, Settings
from uoom_orders.config.components import tracing_config
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.dynamodb.tables import create_tables
from uoom_orders.observability import tracing
from uoom_orders.observability.tracing_setup import (
    TracingConfig,
    configure_tracing,
    tracer_provider,
)
from uoom_orders_client import OrderServiceClient
from uoom_orders_devstack import StackEndpoints

CREATE_ORDER = "uoom.orders.v1.OrderService/CreateOrder"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """This test's spans, from a provider current only for the test."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with tracing.use_tracer_provider(provider):
        yield memory
    provider.shutdown()


def _settings(endpoints: StackEndpoints, database_url: str) -> Settings:
    tag = uuid.uuid4().hex[:10]
    # The stack's own environment first: it carries the local broker's settings.
    return Settings.from_env(
        endpoints.env()
        | {
            "DATABASE_URL": database_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "PAGE_TOKEN_SECRET": "tracing-test-page-token-key",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "KAFKA_TOPIC": f"tracing-{tag}",
            "PROJECTOR_GROUP_ID": f"tracing-{tag}",
            "DYNAMODB_ENDPOINT": endpoints.dynamodb_endpoint,
            "DYNAMODB_TABLE_PREFIX": f"tr-{tag}-",
            "RELAY_POLL_INTERVAL_SECONDS": "0.2",
            "READ_TIERS": "none",
        }
    )


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{name}: {[span.name for span in spans]}"
    return found[0]


def _is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None
    assert parent.context is not None
    return bool(child.parent.span_id == parent.context.span_id)


async def test_one_trace_runs_from_create_order_to_the_read_model_write(
    local_stack: StackEndpoints,
    database_url: str,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in local_stack.env().items():
        if name.startswith("AWS_"):  # the AWS SDK reads credentials from the environment
            monkeypatch.setenv(name, value)
    settings = _settings(local_stack, database_url)
    topic = settings.kafka_topic
    async with dynamodb_client(
        region=settings.aws_region, endpoint=settings.dynamodb_endpoint
    ) as dynamodb:
        await create_tables(dynamodb, settings.dynamodb_table_prefix)

    async with (
        running_service(settings, ("api", "relay", "projector")) as service,
        OrderServiceClient(f"127.0.0.1:{service.port}", default_timeout=10) as client,
    ):
        reply = await client.create_order(create_request())
        order_id = reply.order.order_id

        def projected() -> bool:
            return any(
                span.name == f"process {topic}"
                and span.attributes is not None
                and span.attributes.get("uoom.order.id") == order_id
                for span in exporter.get_finished_spans()
            )

        await eventually(projected, "the projector's span for the new order")

    finished = exporter.get_finished_spans()
    server = _one(finished, CREATE_ORDER)
    assert server.context is not None
    trace_id = server.context.trace_id
    spans = [s for s in finished if s.context is not None and s.context.trace_id == trace_id]
    # The tree, one span per hop:
    #   CreateOrder (SERVER)
    #   └─ postgresql transaction (CLIENT)        ← its context is stored in the outbox row
    #      └─ publish <topic> (PRODUCER)          ← the relay; its context goes in the headers
    #         └─ process <topic> (CONSUMER)       ← the projector, from the Kafka headers
    #            └─ DynamoDB put_order (CLIENT)
    assert sorted(span.name for span in spans) == sorted(
        [
            CREATE_ORDER,
            "postgresql transaction",
            f"publish {topic}",
            f"process {topic}",
            "DynamoDB put_order",
        ]
    )
    transaction = _one(spans, "postgresql transaction")
    publish = _one(spans, f"publish {topic}")
    process = _one(spans, f"process {topic}")
    put = _one(spans, "DynamoDB put_order")

    assert server.parent is None
    assert _is_child(transaction, server)
    assert _is_child(publish, transaction)
    assert _is_child(process, publish)
    assert _is_child(put, process)
    kinds = [span.kind for span in (server, transaction, publish, process, put)]
    assert kinds == [
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.CLIENT,
    ]

    assert server.attributes is not None
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.method"] == "CreateOrder"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert transaction.attributes is not None
    assert transaction.attributes["uoom.transaction.outcome"] == "commit"
    assert publish.attributes is not None
    assert publish.attributes["messaging.destination.name"] == topic
    assert publish.attributes["messaging.kafka.message.key"] == order_id
    assert process.attributes is not None
    assert process.attributes["uoom.order.version"] == 1
    assert process.attributes["uoom.projection.outcome"] == "applied"
    assert put.attributes is not None
    assert put.attributes["db.system"] == "dynamodb"

    # The outbox row holds the transaction's context: that is how the trace crossed the commit.
    connection = await asyncpg.connect(database_url)
    try:
        stored = await connection.fetchval(
            "SELECT trace_context FROM outbox WHERE order_id = $1", uuid.UUID(order_id)
        )
    finally:
        await connection.close()
    assert transaction.context is not None
    version, stored_trace_id, parent_id, _flags = json.loads(stored)["traceparent"].split("-")
    assert (version, stored_trace_id, parent_id) == (
        "00",
        f"{trace_id:032x}",
        f"{transaction.context.span_id:016x}",
    )


async def test_a_failed_call_marks_its_server_span(
    exporter: InMemorySpanExporter, database_url: str
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "READ_TIERS": "none",
            "PAGE_TOKEN_SECRET": "tracing-test-page-token-key",
        }
    )
    async with (
        running_service(settings) as service,
        OrderServiceClient(f"127.0.0.1:{service.port}", default_timeout=10) as client,
    ):
        with pytest.raises(Exception, match="customer_id"):
            await client.create_order(create_request(customer_id="not-a-uuid"))
    span = _one(exporter.get_finished_spans(), CREATE_ORDER)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == 3  # INVALID_ARGUMENT
    # The caller's mistake, not the server's: the span's status stays unset.
    assert span.status.status_code is StatusCode.UNSET
    assert not [s for s in exporter.get_finished_spans() if s.name == "postgresql transaction"]


# --- configuration by OTEL_* ----------------------------------------------------------------


def _tracing_config() -> TracingConfig:
    """As the service reads it: every OTEL_* variable through the settings."""
    return tracing_config(Settings.from_env(os.environ | {"DATABASE_URL": "postgresql://x"}))


def _provider_from_env() -> SdkTracerProvider | None:
    return tracer_provider(_tracing_config())


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable from the outside environment."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_tracing_is_off_without_otel_variables(otel_env: pytest.MonkeyPatch) -> None:
    assert _provider_from_env() is None
    with configure_tracing(_tracing_config()) as provider:
        assert provider is None
        assert not tracing.enabled()
        # Off means no span work at all: the shared no-op span, and nothing to propagate.
        with tracing.server_span(CREATE_ORDER, lambda: None) as span:
            assert span is INVALID_SPAN
        assert tracing.inject_current() == {}


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    ],
)
def test_none_or_disabled_turns_tracing_off(
    otel_env: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        otel_env.setenv(name, value)
    assert _provider_from_env() is None


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"},
        {"OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_TRACES_EXPORTER": "console"},
    ],
)
def test_an_exporter_or_an_otlp_endpoint_turns_tracing_on(
    otel_env: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        otel_env.setenv(name, value)
    provider = _provider_from_env()
    assert provider is not None
    try:
        assert provider.resource.attributes["service.name"] == tracing.DEFAULT_SERVICE_NAME
    finally:
        provider.shutdown()


def test_otel_service_name_wins_over_the_default(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_TRACES_EXPORTER", "console")
    otel_env.setenv("OTEL_SERVICE_NAME", "orders-canary")
    provider = _provider_from_env()
    assert provider is not None
    try:
        assert provider.resource.attributes["service.name"] == "orders-canary"
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_an_unsupported_setting_names_its_variable(
    otel_env: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    for name, value in variables.items():
        otel_env.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        _provider_from_env()
