"""Every setting, declared once: its environment variable, what it accepts, its default and
its meaning. `Settings.from_env` reads them all; the README's table is made from the same
declarations (`scripts/settings_table.py`), and a test fails when the two drift."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uoom_orders.config import parsers as p
from uoom_orders.config.declaration import REQUIRED, ConfigError, Declaration, declare, read_value

_SECONDS = "seconds (> 0)"


@dataclass(frozen=True)
class Settings:
    """The service's configuration: one field per environment variable (see `declarations`)."""

    database_url: str = declare(
        "DATABASE_URL", p.postgres_url, REQUIRED, "postgresql:// URL", "the write model"
    )
    grpc_host: str = declare("GRPC_HOST", p.text, "0.0.0.0", "host", "where gRPC listens")
    grpc_port: int = declare("GRPC_PORT", p.int_between(0, 65535), 50051, None, "gRPC port")
    db_pool_min_size: int = declare(
        "DB_POOL_MIN_SIZE", p.int_between(0, 1000), 2, None, "asyncpg pool"
    )
    db_pool_max_size: int = declare(
        "DB_POOL_MAX_SIZE", p.int_between(1, 1000), 20, None, "asyncpg pool"
    )
    shutdown_grace_seconds: float = declare(
        "SHUTDOWN_GRACE_SECONDS",
        p.positive_float,
        10.0,
        _SECONDS,
        "drain time for in-flight calls on SIGTERM",
    )
    grpc_keepalive_time_seconds: float = declare(
        "GRPC_KEEPALIVE_TIME_SECONDS",
        p.positive_float,
        30.0,
        _SECONDS,
        "the server pings a connection quiet this long, so proxies keep idle watch streams",
    )
    grpc_keepalive_timeout_seconds: float = declare(
        "GRPC_KEEPALIVE_TIMEOUT_SECONDS",
        p.positive_float,
        10.0,
        _SECONDS,
        "a connection whose ping gets no answer this long is closed",
    )
    page_token_secret: bytes = declare(
        "PAGE_TOKEN_SECRET",
        p.secret,
        b"",
        "≥ 16 characters",
        "HMAC key of page tokens; set it when running several replicas",
        "random per process",
    )
    log_level: str = declare(
        "LOG_LEVEL", p.one_of(*p.LOG_LEVELS, lower=False), "INFO", "DEBUG … CRITICAL", "log level"
    )
    log_format: str | None = declare(
        "LOG_FORMAT",
        p.one_of(*p.LOG_FORMATS),
        None,
        "json, text",
        "log lines on stderr",
        "json; text for the local stack",
    )
    service_roles: tuple[str, ...] = declare(
        "SERVICE_ROLES",
        p.roles,
        p.ROLE_NAMES,
        "comma list of api, relay, projector",
        "default of `serve --roles`",
    )
    aws_region: str = declare(
        "AWS_REGION", p.text, "us-east-1", "AWS region", "of DynamoDB and DAX"
    )
    dynamodb_endpoint: str | None = declare(
        "DYNAMODB_ENDPOINT",
        p.http_url,
        None,
        "http(s)://host:port",
        "a local DynamoDB endpoint",
        "AWS",
    )
    dynamodb_table_prefix: str = declare(
        "DYNAMODB_TABLE_PREFIX",
        p.table_prefix,
        "uoom-dev-",
        "letters, digits, - _ .",
        "tables are `{prefix}order-status`, `{prefix}order-details`",
    )
    dynamodb_max_retries: int = declare(
        "DYNAMODB_MAX_RETRIES",
        p.int_between(0, 20),
        3,
        None,
        "botocore's retries of a DynamoDB call (the projector's writes retry in their own loop)",
    )
    dynamodb_timeout_ms: int = declare(
        "DYNAMODB_TIMEOUT",
        p.int_between(1, 600_000),
        5000,
        None,
        "ms to connect and per DynamoDB read",
    )
    dax_endpoint: str | None = declare(
        "DAX_ENDPOINT",
        p.dax_url,
        None,
        "dax://host:8111, daxs://host:9111, host:8111",
        "the DAX cluster (the dax tier is off without it)",
    )
    dax_threads: int = declare(
        "DAX_THREADS", p.int_between(1, 256), 8, None, "threads for the synchronous DAX client"
    )
    order_cache_ttl_hours: int = declare(
        "ORDER_CACHE_TTL_HOURS", p.int_between(1, 24 * 365), 72, None, "read-model item TTL (hours)"
    )
    kafka_bootstrap_servers: str | None = declare(
        "KAFKA_BOOTSTRAP_SERVERS",
        p.host_ports,
        None,
        "host:port[,host:port]",
        "the broker; required by the relay and projector roles and the near cache",
    )
    kafka_topic: str = declare(
        "KAFKA_TOPIC", p.topic, "uoom.orders.v1.order-events", "topic name", "the event topic"
    )
    kafka_dead_letter_topic: str = declare(
        "KAFKA_DEAD_LETTER_TOPIC",
        p.topic,
        "",
        "topic name",
        "the projector's dead letters",
        "`<KAFKA_TOPIC>.dlq`",
    )
    kafka_idempotent_producer: bool = declare(
        "KAFKA_IDEMPOTENT_PRODUCER",
        p.boolean,
        True,
        "true, false",
        "idempotent producers; off for the local tansu broker, which rejects them",
    )
    kafka_fetch_max_wait_ms: int = declare(
        "KAFKA_FETCH_MAX_WAIT_MS",
        p.int_between(1, 30_000),
        500,
        None,
        "consumers' fetch wait (near-cache feed, projector); Kafka answers early when records "
        "arrive, tansu does not, so the local stack uses 20",
    )
    projector_group_id: str = declare(
        "PROJECTOR_GROUP_ID", p.topic, "uoom-orders-projector", "group id", "consumer group"
    )
    projector_session_timeout_ms: int = declare(
        "PROJECTOR_SESSION_TIMEOUT_MS",
        p.int_between(1000, 300_000),
        6000,
        None,
        "how long the group waits for a silent projector before moving its partitions "
        "(heartbeats every sixth of it); the local stack uses 2000",
    )
    projector_leave_group_on_stop: bool = declare(
        "PROJECTOR_LEAVE_GROUP_ON_STOP",
        p.boolean,
        True,
        "true, false",
        "a stopping projector leaves its group, so its partitions move at once (otherwise after "
        "the session timeout); off for the local tansu broker, whose group stalls on it",
    )
    projector_commit_interval_ms: int = declare(
        "PROJECTOR_COMMIT_INTERVAL_MS",
        p.int_between(0, 60_000),
        500,
        None,
        "the projector commits written offsets at most this often (and when it stops); a crash "
        "re-applies what was written since, which changes nothing; 0 commits every batch",
    )
    relay_poll_interval_seconds: float = declare(
        "RELAY_POLL_INTERVAL_SECONDS",
        p.positive_float,
        1.0,
        _SECONDS,
        "the relay polls this often besides waking on NOTIFY",
    )
    relay_batch_size: int = declare(
        "RELAY_BATCH_SIZE", p.int_between(1, 10_000), 500, None, "outbox rows per published batch"
    )
    outbox_retention_hours: float = declare(
        "OUTBOX_RETENTION_HOURS",
        p.positive_float,
        24.0,
        "hours (> 0)",
        "published outbox rows are kept this long",
    )
    read_tiers: tuple[str, ...] = declare(
        "READ_TIERS",
        p.read_tiers,
        p.READ_TIER_NAMES,
        "comma list of near-cache, dax, dynamodb; none",
        "tiers above PostgreSQL, fastest first; a tier whose store is not configured is left out",
    )
    read_tier_timeout_ms: int = declare(
        "READ_TIER_TIMEOUT_MS",
        p.int_between(1, 60_000),
        250,
        None,
        "per-read budget of a tier (ms)",
    )
    postgres_read_timeout_ms: int = declare(
        "POSTGRES_READ_TIMEOUT_MS",
        p.int_between(1, 600_000),
        3000,
        None,
        "per-read budget of PostgreSQL (ms)",
    )
    breaker_failure_threshold: int = declare(
        "BREAKER_FAILURE_THRESHOLD",
        p.int_between(1, 1000),
        5,
        None,
        "failures in a row that open a breaker",
    )
    breaker_reset_seconds: float = declare(
        "BREAKER_RESET_SECONDS",
        p.positive_float,
        2.0,
        _SECONDS,
        "an open breaker lets a trial call through after this",
    )
    near_cache_max_entries: int = declare(
        "NEAR_CACHE_MAX_ENTRIES",
        p.int_between(1, 100_000_000),
        100_000,
        None,
        "near-cache bound (orders)",
    )
    read_floor_max_entries: int = declare(
        "READ_FLOOR_MAX_ENTRIES",
        p.int_between(1, 100_000_000),
        500_000,
        None,
        "orders whose newest answered version a replica remembers, so it never answers an "
        "older one (about 100 bytes each; kept with the near cache off too)",
    )
    near_cache_max_mb: int = declare(
        "NEAR_CACHE_MAX_MB", p.int_between(1, 1_000_000), 256, None, "near-cache bound (MiB)"
    )
    near_cache_fill_ttl_seconds: float = declare(
        "NEAR_CACHE_FILL_TTL_SECONDS",
        p.positive_float,
        60.0,
        _SECONDS,
        "entries copied up from DynamoDB or PostgreSQL live this long (those from the event "
        "stream as long as the read model's items)",
    )
    watch_max_streams: int = declare(
        "WATCH_MAX_STREAMS",
        p.int_between(1, 1_000_000),
        10_000,
        None,
        "watch streams (WatchOrderStatus, WatchRestaurantOrders) a replica holds at once; "
        "beyond, RESOURCE_EXHAUSTED",
    )
    watch_queue_limit: int = declare(
        "WATCH_QUEUE_LIMIT",
        p.int_between(1, 100_000),
        32,
        None,
        "changes waiting for a slow watcher before they are coalesced to the newest version "
        "of each order",
    )
    reconcile_interval_seconds: int = declare(
        "RECONCILE_INTERVAL_SECONDS",
        p.int_between(0, 7 * 86_400),
        300,
        None,
        "a reconciliation pass this often in the projector role (one projector at a time); "
        "0: off (the `reconcile` command still works)",
    )
    reconcile_scan_every_passes: int = declare(
        "RECONCILE_SCAN_EVERY_PASSES",
        p.int_between(1, 100_000),
        12,
        None,
        "every this many scheduled passes also scans both tables for items of orders "
        "PostgreSQL does not have (the scan reads every item: as much as the walk); a pass "
        "brought forward by a read-model outage walks only; the `reconcile` command always scans",
    )
    metrics_port: int = declare(
        "METRICS_PORT", p.int_between(0, 65535), 0, None, "Prometheus endpoint; 0: off"
    )
    grpc_tls_cert_file: str | None = declare(
        "GRPC_TLS_CERT_FILE", p.readable_file, None, "PEM file", "TLS certificate chain"
    )
    grpc_tls_key_file: str | None = declare(
        "GRPC_TLS_KEY_FILE", p.readable_file, None, "PEM file", "TLS private key"
    )
    grpc_tls_client_ca_file: str | None = declare(
        "GRPC_TLS_CLIENT_CA_FILE",
        p.readable_file,
        None,
        "PEM file",
        "with it, clients must present a certificate it signed (mutual TLS)",
    )
    # Tracing: the standard OpenTelemetry variables that decide whether and how we export.
    # The SDK and the exporters read the others themselves (OTEL_SERVICE_NAME,
    # OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*, endpoints and headers).
    otel_sdk_disabled: bool = declare(
        "OTEL_SDK_DISABLED", p.boolean, False, "true, false", "true turns tracing off"
    )
    otel_traces_exporter: tuple[str, ...] = declare(
        "OTEL_TRACES_EXPORTER",
        p.trace_exporters,
        (),
        "comma list of otlp, console, none",
        "span exporters",
        "otlp when an OTLP endpoint is set, else none",
    )
    otel_exporter_otlp_traces_endpoint: str | None = declare(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", p.text, None, "URL", "OTLP endpoint for traces"
    )
    otel_exporter_otlp_endpoint: str | None = declare(
        "OTEL_EXPORTER_OTLP_ENDPOINT", p.text, None, "URL", "OTLP endpoint"
    )
    otel_exporter_otlp_protocol: str = declare(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        p.one_of(*p.OTLP_PROTOCOLS),
        "http/protobuf",
        "http/protobuf, grpc",
        "OTLP protocol (grpc needs opentelemetry-exporter-otlp-proto-grpc)",
    )
    otel_exporter_otlp_traces_protocol: str | None = declare(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        p.one_of(*p.OTLP_PROTOCOLS),
        None,
        "http/protobuf, grpc",
        "OTLP protocol for traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    )

    @property
    def dead_letter_topic(self) -> str:
        return self.kafka_dead_letter_topic or f"{self.kafka_topic}.dlq"

    def require_kafka(self, needed_by: str) -> str:
        """The bootstrap servers, or ConfigError saying who needs them."""
        if not self.kafka_bootstrap_servers:
            raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS is required for {needed_by}")
        return self.kafka_bootstrap_servers

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads every declared variable; raises ConfigError naming the first bad one."""
        env = os.environ if env is None else env
        values = {f.name: read_setting(f.name, env) for f in dataclasses.fields(cls)}
        settings = cls(**values)
        _check_together(settings)
        return settings


def declarations() -> list[tuple[dataclasses.Field[Any], Declaration]]:
    """Each field of Settings with its declaration, in declaration order."""
    return [(f, f.metadata["declaration"]) for f in dataclasses.fields(Settings)]


def read_setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """One setting by its field name (e.g. the log level, before the others are read)."""
    env = os.environ if env is None else env
    declared = next(f for f in dataclasses.fields(Settings) if f.name == name)
    return read_value(declared, env)


def _check_together(settings: Settings) -> None:
    if settings.db_pool_min_size > settings.db_pool_max_size:
        raise ConfigError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
    if (settings.grpc_tls_cert_file is None) != (settings.grpc_tls_key_file is None):
        raise ConfigError("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together")
    if settings.grpc_tls_client_ca_file and not settings.grpc_tls_cert_file:
        raise ConfigError("GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE")
