"""Every Prometheus metric the service exports, defined once (names are a public contract).

The reference write-up's names are kept where they exist (`dynamodb_cache_hits_total`,
`dynamodb_read_latency_seconds` with its buckets). Defining a metric registers nothing
with the outside world; the HTTP endpoint is started by bootstrap when configured.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from uoom_orders.observability.loop_metrics import LoopCounter, LoopHistogram

# The reference's buckets: 1, 2, 5, 10, 20, 50 ms.
READ_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
RPC_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- gRPC ---------------------------------------------------------------------------------
# Counted by every call, in the event loop: loop metrics (loop_metrics.py), as are the read
# path's hits, misses, latency and answers below.
RPC_HANDLED = LoopCounter(
    "grpc_server_handled_total", "RPCs completed, by method and status code", ["method", "code"]
)
RPC_LATENCY = LoopHistogram(
    "grpc_server_handling_seconds",
    "Time to answer an RPC, by method",
    ["method"],
    buckets=RPC_LATENCY_BUCKETS,
)

# --- read path ----------------------------------------------------------------------------
CACHE_HITS = LoopCounter(
    "dynamodb_cache_hits_total",
    "Reads answered by a cache tier (near cache, DAX, DynamoDB) rather than PostgreSQL",
    ["tier"],
)
CACHE_MISSES = LoopCounter(
    "dynamodb_cache_misses_total",
    "Reads a tier could not answer (absent, expired or older than min_version)",
    ["tier"],
)
READ_LATENCY = LoopHistogram(
    "dynamodb_read_latency_seconds",
    "Latency of a read from one tier",
    ["tier"],
    buckets=READ_LATENCY_BUCKETS,
)
TIER_ERRORS = Counter(
    "order_read_tier_errors_total", "Reads that failed or timed out in a tier", ["tier"]
)
TIER_BREAKER_STATE = Gauge(
    "order_read_tier_breaker_state",
    "Circuit breaker of a tier: 0 closed, 1 half-open, 2 open",
    ["tier"],
)
READS_SERVED = LoopCounter(
    "order_reads_served_total", "Reads answered, by the tier that answered", ["tier"]
)
NEAR_CACHE_FEED_LAG = Histogram(
    "near_cache_feed_lag_seconds",
    "From an event's publication (its Kafka record's timestamp) to its apply by this process's "
    "near-cache feed",
    buckets=LAG_BUCKETS,
)
DYNAMODB_CONSUMED_CAPACITY = Counter(
    "dynamodb_consumed_capacity_units_total",
    "Capacity units DynamoDB reported for the service's calls (ReturnConsumedCapacity=TOTAL: the "
    "table and its indexes), by operation and table",
    ["operation", "table"],
)
DYNAMODB_CONDITION_FAILED = Counter(
    "dynamodb_conditional_check_failed_total",
    "Conditional writes DynamoDB refused: they consume write capacity (at least one unit) that "
    "no reply reports",
    ["operation", "table"],
)
DYNAMODB_THROTTLES = Counter(
    "dynamodb_throttled_requests_total", "DynamoDB requests rejected for throughput", ["operation"]
)

# --- outbox relay -------------------------------------------------------------------------
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest outbox row not yet published"
)
OUTBOX_PENDING = Gauge("outbox_unpublished_rows", "Outbox rows not yet published")
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published to Kafka")
OUTBOX_PUBLISH_LAG = Histogram(
    "outbox_publish_lag_seconds",
    "From a change's commit (its outbox row's insert, by PostgreSQL's clock) to Kafka's "
    "acknowledgement of its event",
    buckets=LAG_BUCKETS,
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "outbox_publish_errors_total", "Failed attempts to publish a batch of outbox rows"
)
OUTBOX_PURGED = Counter("outbox_purged_total", "Published outbox rows deleted after retention")

# --- projector ----------------------------------------------------------------------------
PROJECTOR_APPLIED = Counter(
    "projector_events_applied_total", "Events written to the read model", ["table"]
)
PROJECTOR_STALE = Counter(
    "projector_stale_events_total",
    "Events skipped because the read model already had that version or a newer one",
    ["table"],
)
PROJECTOR_DEAD_LETTERS = Counter(
    "projector_dead_letters_total", "Messages sent to the dead-letter topic"
)
PROJECTOR_CONSUMER_LAG = Gauge(
    "projector_consumer_lag_messages", "Messages behind the end of the partition", ["partition"]
)
PROJECTOR_E2E_LAG = Histogram(
    "projector_end_to_end_lag_seconds",
    "From the change's commit (event time) to its write in the read model",
    buckets=LAG_BUCKETS,
)
PROJECTOR_WRITE_LAG = Histogram(
    "projector_write_lag_seconds",
    "From an event's publication (its Kafka record's timestamp) to its write in the read model",
    buckets=LAG_BUCKETS,
)

# --- reconciliation (anti-entropy) ----------------------------------------------------------
RECONCILE_CHECKED = Counter(
    "reconcile_orders_checked_total", "Orders compared between PostgreSQL and the read model"
)
RECONCILE_DIFFERENCES = Counter(
    "reconcile_differences_total",
    "Read-model items found to differ from PostgreSQL, by table and kind (missing, older, "
    "newer, content, orphan)",
    ["table", "kind"],
)
RECONCILE_REPAIRS = Counter(
    "reconcile_repairs_total",
    "Differences repaired from PostgreSQL, by table and kind",
    ["table", "kind"],
)
RECONCILE_LAST_PASS = Gauge(
    "reconcile_last_pass_completed_timestamp_seconds",
    "When the last complete reconciliation pass ended (Unix time)",
)

# --- write model ------------------------------------------------------------------------
POSTGRES_DURABILITY = Gauge(
    "postgres_durability_setting_safe",
    "1 when a PostgreSQL setting the durability contract depends on is on, 0 when it is off",
    ["setting"],
)

# --- health -------------------------------------------------------------------------------
COMPONENT_UP = Gauge(
    "order_service_component_up",
    "1 when a store or role the process uses answers, 0 when it does not",
    ["component"],
)
DEGRADED = Gauge(
    "order_service_degraded",
    "1 while the service answers with a fallback because a store or feed is down",
)
NEAR_CACHE_ENTRIES = Gauge("near_cache_entries", "Orders held in the near cache")
NEAR_CACHE_BYTES = Gauge("near_cache_bytes", "Approximate bytes held in the near cache")

# --- watches (server-streamed changes, watch/) ---------------------------------------------
WATCH_ACTIVE = Gauge(
    "watch_streams_active",
    "Watch streams open on this replica, by kind (order, restaurant)",
    ["kind"],
)
WATCH_PUSHED = Counter(
    "watch_messages_pushed_total", "Messages written to watch streams, by kind", ["kind"]
)
WATCH_COALESCED = Counter(
    "watch_versions_coalesced_total",
    "Versions a watch did not send because a newer one of the same order replaced them while "
    "its caller read too slowly, by kind",
    ["kind"],
)
WATCH_PUSH_LAG = Histogram(
    "watch_push_lag_seconds",
    "From a change's commit (event time) to its message taken by the watch stream",
    buckets=LAG_BUCKETS,
)
WATCH_ENDED = Counter(
    "watch_streams_ended_total",
    "Watch streams ended, by kind and why: COMPLETED (terminal status), CANCELLED, or the "
    "error's reason (FEED_NOT_LIVE, SHUTTING_DOWN, WATCH_TOO_SLOW, TOO_MANY_WATCHES, ...)",
    ["kind", "reason"],
)

# --- callers' faults (each also logged, rate-limited: observability/rate_limited_log.py) ----
RPC_MALFORMED = Counter(
    "grpc_server_malformed_requests_total",
    "Requests whose bytes are not the method's request message (answered INVALID_ARGUMENT)",
    ["method"],
)
RPC_CANCELLED = Counter(
    "grpc_server_cancelled_total",
    "Calls cancelled before they were answered: the client cancelled, its deadline passed, "
    "or the server's shutdown grace ran out",
    ["method"],
)
