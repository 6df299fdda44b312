"""Each component's frozen config, built from the settings here and nowhere else: components
take their config (or plain values) and never read the settings or the environment."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aioboto3

from uoom_orders.api.grpc_server import Keepalive
from uoom_orders.config.settings import Settings
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.observability.tracing_setup import TracingConfig
from uoom_orders.projector.config import ProjectorConfig
from uoom_orders.read.assembly import ReadPathConfig
from uoom_orders.relay.config import RelayConfig
from uoom_orders.relay.outbox_relay import OutboxRelay
from uoom_orders.relay.publisher import EventPublisher, KafkaEventPublisher
from uoom_orders.watch import WatchLimits


def tracing_config(settings: Settings) -> TracingConfig:
    """OTLP when an exporter says so or an OTLP endpoint is set (the spec's default is otlp;
    ours is none without an endpoint, so an untraced process does not try localhost:4318)."""
    if settings.otel_sdk_disabled or "none" in settings.otel_traces_exporter:
        exporters: tuple[str, ...] = ()
    elif settings.otel_traces_exporter:
        exporters = settings.otel_traces_exporter
    elif settings.otel_exporter_otlp_traces_endpoint or settings.otel_exporter_otlp_endpoint:
        exporters = ("otlp",)
    else:
        exporters = ()
    protocol = settings.otel_exporter_otlp_traces_protocol or settings.otel_exporter_otlp_protocol
    return TracingConfig(exporters, protocol)


def dynamodb_client_for(
    settings: Settings,
    session: aioboto3.Session | None = None,
    *,
    max_retries: int | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The DynamoDB client of AWS_REGION, DYNAMODB_ENDPOINT, DYNAMODB_MAX_RETRIES (unless
    `max_retries` is given) and DYNAMODB_TIMEOUT (credentials from `session`, else the
    environment); closed on exit."""
    return dynamodb_client(
        region=settings.aws_region,
        endpoint=settings.dynamodb_endpoint,
        max_retries=settings.dynamodb_max_retries if max_retries is None else max_retries,
        timeout_ms=settings.dynamodb_timeout_ms,
        session=session,
    )


def projection_client_for(
    settings: Settings, session: aioboto3.Session | None = None
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The projector's DynamoDB client: as `dynamodb_client_for`, without botocore's retries.

    The projector's writes are retried by its writer, then by its outage loop (backing off
    to a second). botocore's retries under them would make a third layer: against an
    endpoint that refuses connections, its standard mode sleeps up to 1 + 2 + 4 s inside a
    single call (2.6-5.7 s measured with 3 retries), so a projector could sleep on for
    seconds after the read model was back while its partitions' events waited.
    """
    return dynamodb_client_for(settings, session, max_retries=0)


def relay_config(settings: Settings) -> RelayConfig:
    return RelayConfig(
        database_url=settings.database_url,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval_seconds,
        retention=timedelta(hours=settings.outbox_retention_hours),
    )


def event_publisher(settings: Settings) -> KafkaEventPublisher:
    return KafkaEventPublisher(
        settings.require_kafka("the outbox relay"),
        settings.kafka_topic,
        enable_idempotence=settings.kafka_idempotent_producer,
    )


def outbox_relay(settings: Settings, publisher: EventPublisher | None = None) -> OutboxRelay:
    """A relay publishing to KAFKA_TOPIC, unless given another publisher."""
    return OutboxRelay(relay_config(settings), publisher or event_publisher(settings))


def projector_config(settings: Settings, **overrides: Any) -> ProjectorConfig:
    """The projector's config; keyword arguments override (tests shorten timeouts)."""
    config = ProjectorConfig(
        bootstrap_servers=settings.require_kafka("the projector role"),
        topic=settings.kafka_topic,
        group_id=settings.projector_group_id,
        # Empty stays empty: the config makes "<topic>.dlq" of its own topic.
        dead_letter_topic=settings.kafka_dead_letter_topic,
        ttl_hours=settings.order_cache_ttl_hours,
        session_timeout_ms=settings.projector_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.projector_session_timeout_ms // 6),
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        idempotent_producer=settings.kafka_idempotent_producer,
        leave_group_on_stop=settings.projector_leave_group_on_stop,
        commit_interval_seconds=settings.projector_commit_interval_ms / 1000,
    )
    return replace(config, **overrides)


def read_path_config(settings: Settings) -> ReadPathConfig:
    return ReadPathConfig(
        tiers=settings.read_tiers,
        tier_timeout_seconds=settings.read_tier_timeout_ms / 1000,
        postgres_timeout_seconds=settings.postgres_read_timeout_ms / 1000,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_reset_seconds=settings.breaker_reset_seconds,
        table_prefix=settings.dynamodb_table_prefix,
        order_ttl_hours=settings.order_cache_ttl_hours,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_topic=settings.kafka_topic,
        kafka_fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        near_cache_max_entries=settings.near_cache_max_entries,
        read_floor_max_entries=settings.read_floor_max_entries,
        near_cache_max_bytes=settings.near_cache_max_mb * 1024 * 1024,
        near_cache_fill_ttl_seconds=settings.near_cache_fill_ttl_seconds,
        dax_endpoint=settings.dax_endpoint,
        dax_threads=settings.dax_threads,
        aws_region=settings.aws_region,
    )


def watch_limits(settings: Settings) -> WatchLimits:
    return WatchLimits(
        max_streams=settings.watch_max_streams, queue_limit=settings.watch_queue_limit
    )


def keepalive(settings: Settings) -> Keepalive:
    return Keepalive(
        time_seconds=settings.grpc_keepalive_time_seconds,
        timeout_seconds=settings.grpc_keepalive_timeout_seconds,
    )
