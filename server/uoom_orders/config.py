"""Configuration from environment variables; a bad value stops the start and names the variable."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlparse

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    db_pool_min_size: int = 2
    db_pool_max_size: int = 20
    shutdown_grace_seconds: float = 10.0
    # Empty means: a random key per process (tokens then do not survive restarts or replicas).
    page_token_secret: bytes = b""
    log_level: str = "INFO"
    aws_region: str = "us-east-1"
    dynamodb_endpoint: str | None = None
    dynamodb_table_prefix: str = "uoom-dev-"
    dynamodb_max_retries: int = 3
    dynamodb_timeout_ms: int = 5000
    dax_endpoint: str | None = None
    order_cache_ttl_hours: int = 72
    kafka_bootstrap_servers: str | None = None
    kafka_topic: str = "uoom.orders.v1.order-events"
    # Empty means "<kafka_topic>.dlq".
    kafka_dead_letter_topic: str = ""
    # Real Kafka: on. The local tansu broker rejects aiokafka's idempotent producer.
    kafka_idempotent_producer: bool = True
    projector_group_id: str = "uoom-orders-projector"
    # How long the group waits for a silent projector before its partitions move to another
    # (and, on the broker, roughly twice what a join takes). Heartbeats go every sixth of it.
    projector_session_timeout_ms: int = 6000
    # How long a consumer's fetch may wait for records. Kafka answers as soon as records
    # arrive, so a long wait costs no latency and saves idle CPU; tansu waits it out (10 ms).
    kafka_fetch_max_wait_ms: int = 500
    relay_poll_interval_seconds: float = 1.0
    relay_batch_size: int = 500
    outbox_retention_hours: float = 24.0
    # Read tiers above PostgreSQL, in order; a tier whose store is not configured is left out
    # (dax without DAX_ENDPOINT, near-cache without KAFKA_BOOTSTRAP_SERVERS).
    read_tiers: tuple[str, ...] = ("near-cache", "dax", "dynamodb")
    read_tier_timeout_ms: int = 250
    postgres_read_timeout_ms: int = 3000
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 2.0
    near_cache_max_entries: int = 100_000
    near_cache_max_mb: int = 256
    # Entries copied up from DynamoDB or PostgreSQL live this long; entries from the event
    # stream live as long as the read model's items (ORDER_CACHE_TTL_HOURS).
    near_cache_fill_ttl_seconds: float = 60.0
    dax_threads: int = 8
    # Reconciliation (anti-entropy) in the projector role: a full pass every this many seconds
    # (one projector at a time); 0 turns it off (the `reconcile` command still works).
    reconcile_interval_seconds: int = 300
    # Prometheus metrics HTTP port; 0 turns the endpoint off.
    metrics_port: int = 0
    # TLS on the gRPC port: certificate chain and key (PEM files). With a client CA as well,
    # clients must present a certificate it signed (mutual TLS).
    grpc_tls_cert_file: str | None = None
    grpc_tls_key_file: str | None = None
    grpc_tls_client_ca_file: str | None = None

    @property
    def dead_letter_topic(self) -> str:
        return self.kafka_dead_letter_topic or f"{self.kafka_topic}.dlq"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads the variables; raises ConfigError naming the first bad one."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        settings = cls(
            database_url=reader.get("DATABASE_URL", _postgres_url),
            grpc_host=reader.get("GRPC_HOST", str, cls.grpc_host),
            grpc_port=reader.get("GRPC_PORT", _int_between(0, 65535), cls.grpc_port),
            db_pool_min_size=reader.get(
                "DB_POOL_MIN_SIZE", _int_between(0, 1000), cls.db_pool_min_size
            ),
            db_pool_max_size=reader.get(
                "DB_POOL_MAX_SIZE", _int_between(1, 1000), cls.db_pool_max_size
            ),
            shutdown_grace_seconds=reader.get(
                "SHUTDOWN_GRACE_SECONDS", _positive_float, cls.shutdown_grace_seconds
            ),
            page_token_secret=reader.get("PAGE_TOKEN_SECRET", _secret, b""),
            log_level=reader.get("LOG_LEVEL", _log_level, cls.log_level),
            aws_region=reader.get("AWS_REGION", _non_empty, cls.aws_region),
            dynamodb_endpoint=reader.get("DYNAMODB_ENDPOINT", _http_url, None),
            dynamodb_table_prefix=reader.get(
                "DYNAMODB_TABLE_PREFIX", _table_prefix, cls.dynamodb_table_prefix
            ),
            dynamodb_max_retries=reader.get(
                "DYNAMODB_MAX_RETRIES", _int_between(0, 20), cls.dynamodb_max_retries
            ),
            dynamodb_timeout_ms=reader.get(
                "DYNAMODB_TIMEOUT", _int_between(1, 600_000), cls.dynamodb_timeout_ms
            ),
            dax_endpoint=reader.get("DAX_ENDPOINT", _dax_url, None),
            order_cache_ttl_hours=reader.get(
                "ORDER_CACHE_TTL_HOURS", _int_between(1, 24 * 365), cls.order_cache_ttl_hours
            ),
            kafka_bootstrap_servers=reader.get("KAFKA_BOOTSTRAP_SERVERS", _host_ports, None),
            kafka_topic=reader.get("KAFKA_TOPIC", _topic, cls.kafka_topic),
            kafka_dead_letter_topic=reader.get("KAFKA_DEAD_LETTER_TOPIC", _topic, ""),
            kafka_idempotent_producer=reader.get(
                "KAFKA_IDEMPOTENT_PRODUCER", _bool, cls.kafka_idempotent_producer
            ),
            projector_group_id=reader.get("PROJECTOR_GROUP_ID", _topic, cls.projector_group_id),
            projector_session_timeout_ms=reader.get(
                "PROJECTOR_SESSION_TIMEOUT_MS",
                _int_between(1000, 300_000),
                cls.projector_session_timeout_ms,
            ),
            kafka_fetch_max_wait_ms=reader.get(
                "KAFKA_FETCH_MAX_WAIT_MS", _int_between(1, 30_000), cls.kafka_fetch_max_wait_ms
            ),
            relay_poll_interval_seconds=reader.get(
                "RELAY_POLL_INTERVAL_SECONDS", _positive_float, cls.relay_poll_interval_seconds
            ),
            relay_batch_size=reader.get(
                "RELAY_BATCH_SIZE", _int_between(1, 10_000), cls.relay_batch_size
            ),
            outbox_retention_hours=reader.get(
                "OUTBOX_RETENTION_HOURS", _positive_float, cls.outbox_retention_hours
            ),
            read_tiers=reader.get("READ_TIERS", _read_tiers, cls.read_tiers),
            read_tier_timeout_ms=reader.get(
                "READ_TIER_TIMEOUT_MS", _int_between(1, 60_000), cls.read_tier_timeout_ms
            ),
            postgres_read_timeout_ms=reader.get(
                "POSTGRES_READ_TIMEOUT_MS", _int_between(1, 600_000), cls.postgres_read_timeout_ms
            ),
            breaker_failure_threshold=reader.get(
                "BREAKER_FAILURE_THRESHOLD", _int_between(1, 1000), cls.breaker_failure_threshold
            ),
            breaker_reset_seconds=reader.get(
                "BREAKER_RESET_SECONDS", _positive_float, cls.breaker_reset_seconds
            ),
            near_cache_max_entries=reader.get(
                "NEAR_CACHE_MAX_ENTRIES", _int_between(1, 100_000_000), cls.near_cache_max_entries
            ),
            near_cache_max_mb=reader.get(
                "NEAR_CACHE_MAX_MB", _int_between(1, 1_000_000), cls.near_cache_max_mb
            ),
            near_cache_fill_ttl_seconds=reader.get(
                "NEAR_CACHE_FILL_TTL_SECONDS", _positive_float, cls.near_cache_fill_ttl_seconds
            ),
            dax_threads=reader.get("DAX_THREADS", _int_between(1, 256), cls.dax_threads),
            reconcile_interval_seconds=reader.get(
                "RECONCILE_INTERVAL_SECONDS",
                _int_between(0, 7 * 86_400),
                cls.reconcile_interval_seconds,
            ),
            metrics_port=reader.get("METRICS_PORT", _int_between(0, 65535), cls.metrics_port),
            grpc_tls_cert_file=reader.get("GRPC_TLS_CERT_FILE", _readable_file, None),
            grpc_tls_key_file=reader.get("GRPC_TLS_KEY_FILE", _readable_file, None),
            grpc_tls_client_ca_file=reader.get("GRPC_TLS_CLIENT_CA_FILE", _readable_file, None),
        )
        if settings.db_pool_min_size > settings.db_pool_max_size:
            raise ConfigError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        if (settings.grpc_tls_cert_file is None) != (settings.grpc_tls_key_file is None):
            raise ConfigError("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together")
        if settings.grpc_tls_client_ca_file and not settings.grpc_tls_cert_file:
            raise ConfigError(
                "GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE"
            )
        return settings


class _Reader:
    _MISSING: object = object()

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], T], default: T | object = _MISSING) -> T:
        raw = self._env.get(name, "").strip()
        if not raw:
            if default is self._MISSING:
                raise ConfigError(f"{name} is required")
            return default  # type: ignore[return-value]
        try:
            return parse(raw)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{name}={raw[:80]!r} is invalid: {error}") from error


def _non_empty(raw: str) -> str:
    return raw


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _postgres_url(raw: str) -> str:
    if urlparse(raw).scheme not in ("postgres", "postgresql"):
        raise ValueError("expected postgresql://user@host:port/database")
    return raw


def _http_url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("expected http(s)://host:port")
    return raw


def _dax_url(raw: str) -> str:
    # The reference writes a bare host:port; amazon-dax-client wants dax:// or daxs://.
    if "://" not in raw:
        raw = f"dax://{raw}"
    parsed = urlparse(raw)
    if parsed.scheme not in ("dax", "daxs") or not parsed.hostname:
        raise ValueError("expected dax://host:8111 or daxs://host:9111")
    return raw


def _host_ports(raw: str) -> str:
    for part in raw.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected host:port[,host:port...]")
    return raw


def _table_prefix(raw: str) -> str:
    if not all(c.isalnum() or c in "-_." for c in raw) or len(raw) > 200:
        raise ValueError("letters, digits, '-', '_' and '.' only")
    return raw


READ_TIER_NAMES = ("near-cache", "dax", "dynamodb")


def _read_tiers(raw: str) -> tuple[str, ...]:
    """A comma list of near-cache, dax, dynamodb (in that order), or "none"."""
    if raw.lower() == "none":
        return ()
    tiers = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [t for t in tiers if t not in READ_TIER_NAMES]
    if unknown:
        raise ValueError(f"unknown tier {unknown[0]!r}; known: {', '.join(READ_TIER_NAMES)}")
    if list(tiers) != sorted(tiers, key=READ_TIER_NAMES.index) or len(set(tiers)) != len(tiers):
        raise ValueError("tiers go fastest first, each once: near-cache, dax, dynamodb")
    return tiers


def _readable_file(raw: str) -> str:
    try:
        with open(raw, "rb"):
            pass
    except OSError as error:
        raise ValueError(f"cannot read the file: {error.strerror}") from error
    return raw


def _topic(raw: str) -> str:
    if len(raw) > 249 or not all(c.isalnum() or c in "._-" for c in raw):
        raise ValueError("up to 249 letters, digits, '.', '_' or '-'")
    return raw


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _secret(raw: str) -> bytes:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw.encode()


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level
