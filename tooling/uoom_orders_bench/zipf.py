"""The zipf scenario: an honest hit rate. Reads Zipf-distributed over a large set of orders, a
near cache bounded to a tenth of them, a share of writes; the share of reads each tier served,
and read latency per tier and over all reads, misses included.

The orders (200,000 by default) are seeded in bulk (bulk_seed.py): PostgreSQL and the read
model's status table hold them, no event announced them, so the API replica measured here, an
`--roles api` process of its own with NEAR_CACHE_MAX_ENTRIES = orders / 10, learns of an order
only by reading it (from DynamoDB; PostgreSQL if that misses) or from a write's event. Order
ids are ranked in a random order fixed by the seed; rank r is read with probability
proportional to 1 / r^s (s = --zipf-exponent, 0.99 by default, YCSB's constant). Writes move
a Zipf-drawn order one lifecycle step (expected_version), or create an order when the drawn
ones cannot move.

Each round first runs the same load unmeasured for --zipf-warmup seconds (60 by default: an
entry copied up from a lower tier lives NEAR_CACHE_FILL_TTL_SECONDS, 60 s by default, so after
a minute the near cache holds what a replica running for ever would), then measures for
--duration seconds. Beside the measured shares it prints the share of reads that go to the
orders a cache of that size could at best hold (the hottest ranks): the ceiling of any cache.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders_bench import load
from uoom_orders_bench.process_metrics import MetricsEndpoint, Samples, counter, counter_by
from uoom_orders_bench.scenarios import LoadSettings, Metric, Scenario
from uoom_orders_bench.stats import latency_figures
from uoom_orders_bench.targets import order_stub
from uoom_orders_bench.workload import CALL_TIMEOUT_S, NEXT_STATUS, SERVED_BY, create_request

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

READ_PREFIX = "read:"
# How many draws a write makes to find an order that can move before it creates one instead.
_WRITE_DRAWS = 8


@dataclass(frozen=True)
class ZipfSettings:
    """The scenario's numbers (the command line's)."""

    orders: int = 200_000
    # Below the mixed scenario's 500/s: a fifth or more of these reads miss the near cache and
    # reach the local DynamoDB endpoint, which at 500/s (with the projector's writes) saturates
    # on two cores and times out, so PostgreSQL's share would measure moto, not the cache.
    rate: float = 200.0
    warm_up_s: float = 60.0
    exponent: float = 0.99
    cache_share: float = 0.1
    """NEAR_CACHE_MAX_ENTRIES of the measured replica, as a share of the orders."""

    @property
    def cache_entries(self) -> int:
        """The measured replica's NEAR_CACHE_MAX_ENTRIES."""
        return max(1, int(self.orders * self.cache_share))


class ZipfPicker:
    """Draws order ids with Zipf-distributed popularity over a fixed random ranking."""

    def __init__(self, order_ids: Sequence[str], exponent: float, rng: random.Random) -> None:
        if not order_ids:
            raise ValueError("no orders to draw from")
        self.ranked = list(order_ids)
        rng.shuffle(self.ranked)
        weights = (1 / rank**exponent for rank in range(1, len(self.ranked) + 1))
        self._cumulative = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> str:
        """One order id: rank r with probability proportional to 1 / r^exponent."""
        target = rng.random() * self._cumulative[-1]
        return self.ranked[bisect.bisect_right(self._cumulative, target)]

    def top_share(self, entries: int) -> float:
        """The share of draws that fall on the `entries` hottest orders."""
        entries = min(max(entries, 0), len(self.ranked))
        return self._cumulative[entries - 1] / self._cumulative[-1] if entries else 0.0


@dataclass
class ZipfOrders:
    """The seeded orders with their current status and version, across rounds."""

    picker: ZipfPicker
    state: dict[str, tuple[order_pb2.OrderStatus.ValueType, int]]
    busy: set[str] = field(default_factory=set)

    @classmethod
    def of(
        cls, summaries: Sequence[order_pb2.OrderSummary], exponent: float, seed: int
    ) -> ZipfOrders:
        """The orders of `summaries`, ranked by a generator seeded with `seed`."""
        ids = [s.order_id for s in summaries]
        picker = ZipfPicker(ids, exponent, random.Random(f"zipf-ranks:{seed}"))
        return cls(picker, {s.order_id: (s.status, s.version) for s in summaries})

    def next_move(self, rng: random.Random) -> order_service_pb2.UpdateOrderStatusRequest | None:
        """An update moving a Zipf-drawn idle order one step, or None when the draws found
        none that can move."""
        for _ in range(_WRITE_DRAWS):
            order_id = self.picker.pick(rng)
            status, version = self.state[order_id]
            if order_id in self.busy or status not in NEXT_STATUS:
                continue
            self.busy.add(order_id)
            return order_service_pb2.UpdateOrderStatusRequest(
                request_id=str(uuid.uuid4()),
                order_id=order_id,
                status=NEXT_STATUS[status],
                expected_version=version,
            )
        return None

    def moved(self, order_id: str, order: order_pb2.Order | None) -> None:
        """An update's outcome; None (it failed: its version is unknown now) leaves the order
        alone from now on."""
        self.busy.discard(order_id)
        if order is None:
            self.state[order_id] = (order_pb2.ORDER_STATUS_DELIVERED, 0)
        else:
            self.state[order_id] = (order.status, order.version)


class ZipfWorkload:
    """The open loop's operation: a Zipf-drawn GetOrderStatus, or (a share) a write.

    Reads are labelled `read:<tier that served>` (x-served-by), writes `write`.
    """

    def __init__(
        self,
        stub: OrderServiceAsyncStub,
        orders: ZipfOrders,
        rng: random.Random,
        write_share: float,
    ) -> None:
        self._stub = stub
        self._orders = orders
        self._rng = rng
        self._write_share = write_share
        self.served_by: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()

    async def __call__(self, index: int) -> str:
        if self._rng.random() < self._write_share:
            await self._write()
            return "write"
        request = order_service_pb2.GetOrderStatusRequest(
            order_id=self._orders.picker.pick(self._rng)
        )
        call = self._stub.GetOrderStatus(request, timeout=CALL_TIMEOUT_S)
        await call
        metadata = await call.trailing_metadata()
        tier = next((str(v) for k, v in (metadata or ()) if k == SERVED_BY), "unknown")
        self.served_by[tier] += 1
        return f"{READ_PREFIX}{tier}"

    async def _write(self) -> None:
        update = self._orders.next_move(self._rng)
        if update is None:
            self.writes["create"] += 1
            await self._stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)
            return
        self.writes["update"] += 1
        try:
            response = await self._stub.UpdateOrderStatus(update, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError:
            self._orders.moved(update.order_id, None)
            raise
        self._orders.moved(update.order_id, response.order)


def _tier_key(tier: str) -> str:
    return tier.replace("-", "_")


def zipf_figures(
    result: load.LoadResult, workload: ZipfWorkload, orders: ZipfOrders, cache_entries: int
) -> dict[str, float]:
    """Shares by tier, latency over all reads and per tier, writes, and the cache's ceiling."""
    reads = sum(workload.served_by.values())
    all_reads = [
        latency
        for label, values in result.latencies_ns.items()
        if label.startswith(READ_PREFIX)
        for latency in values
    ]
    figures: dict[str, float] = result.figures() | {
        "reads": reads,
        "writes": sum(workload.writes.values()),
        "updates": workload.writes["update"],
        "creates": workload.writes["create"],
        "late_starts": result.late_starts,
        "orders": len(orders.state),
        "cache_max_entries": cache_entries,
        "ideal_hit_pct": 100 * orders.picker.top_share(cache_entries),
        "hit_rate_pct": (
            100 * (reads - workload.served_by["postgres"]) / reads if reads else float("nan")
        ),
        **latency_figures(all_reads, "read_"),
        **latency_figures(result.latencies_ns.get("write", []), "write_"),
    }
    for label, values in result.latencies_ns.items():
        if label.startswith(READ_PREFIX):
            tier = _tier_key(label[len(READ_PREFIX) :])
            tier_figures = latency_figures(values, f"read_{tier}_")
            figures[f"read_{tier}_p50_ms"] = tier_figures[f"read_{tier}_p50_ms"]
            figures[f"read_{tier}_p99_ms"] = tier_figures[f"read_{tier}_p99_ms"]
    for tier, count in workload.served_by.items():
        figures[f"served_by_{tier}_pct"] = 100 * count / reads
    return figures


@dataclass(frozen=True)
class ZipfTarget:
    """The replica the scenario measures, and the orders seeded for it."""

    address: str
    settings: ZipfSettings
    summaries: Sequence[order_pb2.OrderSummary]
    metrics: MetricsEndpoint | None = None


async def measure_zipf(
    target: ZipfTarget,
    orders: ZipfOrders,
    rng: random.Random,
    *,
    duration_s: float,
    write_share: float,
) -> dict[str, float]:
    """One round: the warm-up (unmeasured), then the measured open loop at the same rate."""
    settings = target.settings
    async with order_stub(target.address) as stub:
        if settings.warm_up_s > 0:
            warm = ZipfWorkload(stub, orders, rng, write_share)
            await load.open_loop(warm, settings.rate, settings.warm_up_s)
        workload = ZipfWorkload(stub, orders, rng, write_share)
        before = await _scrape(target.metrics)
        result = await load.open_loop(workload, settings.rate, duration_s)
        after = await _scrape(target.metrics)
    figures = zipf_figures(result, workload, orders, settings.cache_entries)
    figures["warm_up_s"] = settings.warm_up_s
    if before is not None and after is not None:
        entries = counter(after, "near_cache_entries")
        figures["near_cache_entries"] = entries
        # Entries copied up from a lower tier expire after NEAR_CACHE_FILL_TTL_SECONDS: at a
        # modest rate the cache holds fewer orders than its bound, and this is its ceiling.
        figures["ideal_hit_at_entries_pct"] = 100 * orders.picker.top_share(int(entries))
        # Why a read went further down than its tier: not there (a miss), or the tier failed
        # or timed out (its breaker then sends reads past it for a while).
        for name, kind in (
            ("dynamodb_cache_misses_total", "misses"),
            ("order_read_tier_errors_total", "errors"),
        ):
            earlier = counter_by(before, name, "tier")
            for tier, count in counter_by(after, name, "tier").items():
                figures[f"tier_{_tier_key(tier)}_{kind}"] = count - earlier.get(tier, 0.0)
    return figures


async def _scrape(endpoint: MetricsEndpoint | None) -> Samples | None:
    if endpoint is None:
        return None
    try:
        return await endpoint.scrape()
    except OSError:
        return None


def _progress(figures: dict[str, float]) -> str:
    tiers = ", ".join(
        f"{key[len('served_by_') : -len('_pct')]} {value:.1f} %"
        for key, value in sorted(figures.items())
        if key.startswith("served_by_")
    )
    return (
        f"{figures['reads']:.0f} reads, {figures['writes']:.0f} writes; served by {tiers} "
        f"(a perfect cache of {figures['cache_max_entries']:,.0f}: "
        f"{figures['ideal_hit_pct']:.1f} %); read p50 {figures['read_p50_ms']:.2f} "
        f"p99 {figures['read_p99_ms']:.2f} ms; dynamodb tier errors "
        f"{figures.get('tier_dynamodb_errors', float('nan')):.0f}; errors {figures['errors']:.0f}"
    )


def zipf_scenario(settings: LoadSettings, target: ZipfTarget) -> Scenario:
    """The scenario, on the replica of `target` (service only)."""
    zipf = target.settings
    name = f"zipf-{zipf.rate:g}"
    orders = ZipfOrders.of(target.summaries, zipf.exponent, settings.seed)

    async def measure(address: str, round_number: int) -> dict[str, float]:
        rng = random.Random(f"{settings.seed}:{round_number}:{name}")
        return await measure_zipf(
            target, orders, rng, duration_s=settings.duration_s, write_share=settings.write_share
        )

    def row(key: str, label: str, digits: int = 2) -> Metric:
        return Metric(key, label, ratio=False, digits=digits)

    metrics = [
        row("calls_per_s", "achieved calls/s", 0),
        row("read_p50_ms", "read p50 ms (every tier, misses included)"),
        row("read_p95_ms", "read p95 ms"),
        row("read_p99_ms", "read p99 ms"),
        *(
            row(f"read_{tier}_{q}_ms", f"read served by {label} {q} ms")
            for tier, label in (
                ("near_cache", "near-cache"),
                ("dynamodb", "dynamodb"),
                ("postgres", "postgres"),
            )
            for q in ("p50", "p99")
        ),
        row("write_p50_ms", "write p50 ms"),
        row("write_p99_ms", "write p99 ms"),
        row("hit_rate_pct", "hit rate % (not postgres)"),
        row("ideal_hit_pct", "a perfect cache of that size, %"),
        row("cache_max_entries", "near cache bound (NEAR_CACHE_MAX_ENTRIES)", 0),
        row("near_cache_entries", "near cache entries at the end", 0),
        row("ideal_hit_at_entries_pct", "a perfect cache of that many entries, %"),
        row("tier_near_cache_misses", "near-cache misses", 0),
        row("tier_dynamodb_misses", "dynamodb misses", 0),
        row("tier_dynamodb_errors", "dynamodb errors and timeouts", 0),
        row("reads", "reads", 0),
        row("writes", "writes", 0),
        row("late_starts", "late starts", 0),
        Metric("errors", "errors", ratio=False, digits=0),
    ]
    return Scenario(
        name,
        f"open loop at {zipf.rate:g} calls/s for {settings.duration_s:g} s after "
        f"{zipf.warm_up_s:g} s unmeasured: GetOrderStatus of Zipf-distributed orders (s = "
        f"{zipf.exponent:g}) among {len(target.summaries):,} seeded in bulk, "
        f"{100 * settings.write_share:g} % writes (a step of a Zipf-drawn order); a replica "
        f"whose near cache holds at most {zipf.cache_entries:,} orders; shares by x-served-by "
        "(service only)",
        tuple(metrics),
        measure,
        with_baseline=False,
        writes=True,
        progress=_progress,
    )
