"""The scenarios: what each measures, on which side, and which figures its table shows.

Each measurement opens its own channel to one server, warms up, measures and closes, so
scenarios and sides do not share connections. Requests are drawn from a generator seeded by
the run's seed, the round and the scenario: in one round both sides get the same requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from uoom_orders_bench import broker, load, pipeline, stages
from uoom_orders_bench.cpu import CPU_PREFIX, ProcessCpu
from uoom_orders_bench.process_metrics import HistogramCounts, MetricsEndpoint
from uoom_orders_bench.stats import NS_PER_MS, latency_figures
from uoom_orders_bench.targets import order_stub
from uoom_orders_bench.workload import (
    CALL_TIMEOUT_S,
    MixedWorkload,
    OrderBook,
    batch_requests,
    create_request,
    get_requests,
)

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

Side = Literal["baseline", "service"]
SCENARIO_KINDS = (
    "closed-1",
    "open",
    "saturated",
    "create",
    "mixed",
    "lag",
    "pipeline",
    "rebuild",
    "zipf",
    "watch",
)
"""Every scenario kind `--scenarios` takes."""
DEFAULT_KINDS = tuple(kind for kind in SCENARIO_KINDS if kind != "watch")
"""The kinds a run without `--scenarios` measures: every figure of the performance targets
(watch runs minutes at 10,000 watchers: only on request)."""
SERVED_BY_PREFIX = "served_by_"
# Distinct prebuilt requests per measurement at most; calls beyond take them round-robin.
_REQUEST_POOL = 8192


@dataclass(frozen=True)
class LoadSettings:
    """How much load each scenario applies (the command line's numbers)."""

    calls: int = 2000
    warm_up_calls: int = 200
    rate: float = 1000.0
    duration_s: float = 5.0
    concurrency: int = 32
    batch_size: int = 10
    create_calls: int = 1000
    create_rate: float = 50.0
    mixed_rate: float = 500.0
    write_share: float = 0.05
    lag_rate: float = 50.0
    visibility_timeout_s: float = 5.0
    pipeline_events: int = 2000
    pipeline_writers: int = 16
    watchers: tuple[int, ...] = (1, 1000, 10_000)
    watch_orders: int = 1000
    watch_rate: float = 50.0
    seed: int = 1


@dataclass(frozen=True)
class Metric:
    """One row of a scenario's table: a figure's key, its label, and whether a ratio applies."""

    key: str
    label: str
    ratio: bool = True
    digits: int = 3


Measure = Callable[[str, int], Awaitable[dict[str, float]]]
"""Measures one side: (server address, round number) → figures."""
Progress = Callable[[dict[str, float]], str]
"""One side's figures as the one-line progress report printed after each round."""


@dataclass(frozen=True)
class Scenario:
    """A named measurement run on the baseline and/or the service each round."""

    name: str
    description: str
    metrics: tuple[Metric, ...]
    measure: Measure
    with_baseline: bool = True
    writes: bool = False
    progress: Progress | None = None
    """None: latency percentiles, calls/s and errors (the figures every load generator has)."""


_P50 = Metric("p50_ms", "p50 ms")
_P95 = Metric("p95_ms", "p95 ms")
_P99 = Metric("p99_ms", "p99 ms")
_MEAN = Metric("mean_ms", "mean ms")
_RATE = Metric("calls_per_s", "calls/s", digits=0)
_ERRORS = Metric("errors", "errors", ratio=False, digits=0)
_ERRORS_ONLY = Metric("errors", "write errors", ratio=False, digits=0)
# The server process's own CPU (user + system) over the measured calls; n/a for --target.
_CPU_PER_CALL = Metric("server_cpu_ms_per_call", "server CPU ms/call")
# The same less what the process spends idle (the service's near-cache feed polls the local
# broker every 20 ms: a few % of a core whether called or not; the bare server has no feed).
_CPU_BEYOND_IDLE = Metric(
    "server_cpu_ms_per_call_beyond_idle", "server CPU ms/call beyond idle (its background)"
)
_CPU_SHARE = Metric("server_cpu_core_pct", "server CPU % of a core", digits=1)
# The part of it on the main thread, where the event loop runs every line of Python; the rest
# is gRPC's own threads (cpu.py).
_CPU_MAIN_THREAD = Metric(
    "server_cpu_main_thread_ms_per_call", "server CPU ms/call on its main thread (event loop)"
)


def _rng(settings: LoadSettings, round_number: int, name: str) -> random.Random:
    return random.Random(f"{settings.seed}:{round_number}:{name}")


ReadOp = Callable[["OrderServiceAsyncStub", random.Random, int], load.Operation]


def _read_operation(method: str, order_ids: Sequence[str], batch_size: int) -> ReadOp:
    """A factory of operations calling `method` with prebuilt random requests."""

    def make(stub: OrderServiceAsyncStub, rng: random.Random, needed: int) -> load.Operation:
        count = max(1, min(needed, _REQUEST_POOL))
        if method == "GetOrderStatus":
            gets = get_requests(order_ids, rng, count)
            get = stub.GetOrderStatus

            async def get_status(index: int) -> str:
                await get(gets[index % count], timeout=CALL_TIMEOUT_S)
                return "call"

            return get_status
        batches = batch_requests(order_ids, rng, count, batch_size)
        batch_get = stub.BatchGetOrderStatus

        async def batch_get_status(index: int) -> str:
            await batch_get(batches[index % count], timeout=CALL_TIMEOUT_S)
            return "call"

        return batch_get_status

    return make


def read_scenarios(
    kind: str, settings: LoadSettings, order_ids: Sequence[str], cpu: ProcessCpu | None = None
) -> list[Scenario]:
    """`kind` (closed-1, open or saturated) for GetOrderStatus and BatchGetOrderStatus; with
    `cpu`, each server's CPU per call too."""
    cpu = cpu or ProcessCpu()
    scenarios = []
    for method, label in (
        ("GetOrderStatus", "GetOrderStatus"),
        ("BatchGetOrderStatus", f"BatchGetOrderStatus({settings.batch_size})"),
    ):
        make = _read_operation(method, order_ids, settings.batch_size)
        if kind == "closed-1":
            scenarios.append(_closed_one(label, make, settings, cpu))
        elif kind == "open":
            scenarios.append(_open(label, make, settings, cpu))
        elif kind == "saturated":
            scenarios.append(_saturated(label, make, settings, cpu))
        else:
            raise ValueError(f"not a read scenario: {kind}")
    return scenarios


def _calls_made(result: load.LoadResult) -> int:
    return result.calls + sum(result.errors.values())


def _closed_one(label: str, make: ReadOp, settings: LoadSettings, cpu: ProcessCpu) -> Scenario:
    name = f"closed-1/{label}"

    async def measure(address: str, round_number: int) -> dict[str, float]:
        needed = settings.warm_up_calls + settings.calls
        window = cpu.window(address)
        async with order_stub(address) as stub:
            operation = make(stub, _rng(settings, round_number, name), needed)
            await load.warm_up(operation, settings.warm_up_calls)
            window.start()
            result = await load.closed_loop(operation, settings.calls, settings.warm_up_calls)
            window.stop()
        return result.figures() | window.figures(_calls_made(result))

    return Scenario(
        name,
        f"{label}, one call in flight, {settings.calls:,} calls after "
        f"{settings.warm_up_calls:,} warm-up",
        (
            _P50,
            _P95,
            _P99,
            _MEAN,
            _RATE,
            _ERRORS,
            _CPU_PER_CALL,
            _CPU_MAIN_THREAD,
            _CPU_BEYOND_IDLE,
            _CPU_SHARE,
        ),
        measure,
    )


def _open(label: str, make: ReadOp, settings: LoadSettings, cpu: ProcessCpu) -> Scenario:
    name = f"open-{settings.rate:g}/{label}"

    async def measure(address: str, round_number: int) -> dict[str, float]:
        needed = settings.warm_up_calls + int(settings.rate * settings.duration_s)
        window = cpu.window(address)
        async with order_stub(address) as stub:
            operation = make(stub, _rng(settings, round_number, name), needed)
            await load.warm_up(operation, settings.warm_up_calls)
            window.start()
            result = await load.open_loop(operation, settings.rate, settings.duration_s)
            window.stop()
        return _open_figures(result, settings.rate) | window.figures(_calls_made(result))

    return Scenario(
        name,
        f"{label}, open loop at {settings.rate:g} calls/s for {settings.duration_s:g} s; latency "
        f"from the scheduled start; late = started > {load.LATE_START_NS / NS_PER_MS:g} ms "
        "after schedule",
        (
            _P50,
            _P95,
            _P99,
            Metric("calls_per_s", "achieved calls/s", digits=0),
            Metric("late_starts", "late starts", ratio=False, digits=0),
            _ERRORS,
            _CPU_PER_CALL,
            _CPU_MAIN_THREAD,
            _CPU_BEYOND_IDLE,
            _CPU_SHARE,
        ),
        measure,
    )


def _open_figures(result: load.LoadResult, rate: float) -> dict[str, float]:
    return result.figures() | {
        "target_rate": rate,
        "late_starts": result.late_starts,
        "max_start_lag_ms": result.max_start_lag_ns / NS_PER_MS,
    }


def _saturated(label: str, make: ReadOp, settings: LoadSettings, cpu: ProcessCpu) -> Scenario:
    name = f"saturated-{settings.concurrency}/{label}"
    warm_up_s = min(1.0, settings.duration_s / 5)

    async def measure(address: str, round_number: int) -> dict[str, float]:
        window = cpu.window(address)
        async with order_stub(address) as stub:
            operation = make(stub, _rng(settings, round_number, name), _REQUEST_POOL)
            # The CPU window is the measured window (after the warm-up), like the throughput.
            start_ns = time.perf_counter_ns() + int(warm_up_s * 1e9)
            sampling = asyncio.create_task(
                window.between(start_ns, start_ns + int(settings.duration_s * 1e9))
            )
            result = await load.saturated(
                operation, settings.concurrency, settings.duration_s, warm_up_s
            )
            await sampling
        in_window = result.throughput_calls or 0
        return result.figures() | {"concurrency": settings.concurrency} | window.figures(in_window)

    return Scenario(
        name,
        f"{label}, {settings.concurrency} concurrent callers for {settings.duration_s:g} s "
        f"(after {warm_up_s:g} s warm-up)",
        (_RATE, _P50, _P99, _ERRORS, _CPU_PER_CALL, _CPU_MAIN_THREAD, _CPU_BEYOND_IDLE, _CPU_SHARE),
        measure,
    )


# The API's own timing of each CreateOrder (api/rpc_errors.py: from the handler's start to its
# answer), beside the caller's: what the caller waits for beyond it is gRPC, the network stack
# and the scheduler of a machine the pipeline shares.
_HANDLING_HISTOGRAM = "grpc_server_handling_seconds"
_SLOW_CREATE_S = 0.010
"""The CreateOrder target's p99 bound: the share of calls over it is shown on both sides."""


def _create_metrics() -> tuple[Metric, ...]:
    over = f"{_SLOW_CREATE_S * 1000:g} ms"
    return (
        _P50,
        _P95,
        _P99,
        _MEAN,
        Metric("over_slow_pct", f"calls over {over}, % (the caller's clock)", digits=2),
        Metric("handler_p50_ms", "in the server's handler p50 ms (its histogram)"),
        Metric("handler_p99_ms", "in the server's handler p99 ms (its histogram)"),
        Metric("handler_mean_ms", "in the server's handler mean ms"),
        Metric("handler_over_slow_pct", f"calls over {over} in the handler, %", digits=2),
        _RATE,
        _ERRORS,
        Metric(f"{CPU_PREFIX}ms_per_call", "API process CPU ms per create"),
        Metric(f"{CPU_PREFIX}core_pct", "API process CPU % of a core", digits=1),
    )


async def _handling(endpoint: MetricsEndpoint | None) -> HistogramCounts | None:
    if endpoint is None:
        return None
    try:
        samples = await endpoint.scrape()
    except OSError:  # not serving metrics: the handler's rows show n/a
        return None
    return HistogramCounts.of(samples, _HANDLING_HISTOGRAM, {"method": "CreateOrder"})


def _handling_figures(
    before: HistogramCounts | None, after: HistogramCounts | None
) -> dict[str, float]:
    if before is None or after is None:
        return {}
    seen = after.minus(before)
    within = dict(seen.buckets).get(_SLOW_CREATE_S)
    figures = {
        "handler_p50_ms": 1000 * seen.quantile(0.50),
        "handler_p99_ms": 1000 * seen.quantile(0.99),
        "handler_mean_ms": 1000 * seen.mean,
        "handler_calls": seen.count,
    }
    if within is not None and seen.count > 0:
        figures["handler_over_slow_pct"] = 100 * (seen.count - within) / seen.count
    return figures


@contextlib.contextmanager
def paused_process(pid: int | None) -> Iterator[None]:
    """The process `pid` stopped (SIGSTOP) for the block, continued after whatever happens."""
    if pid is None:
        yield
        return
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def create_scenarios(
    settings: LoadSettings,
    cpu: ProcessCpu | None = None,
    api: MetricsEndpoint | None = None,
    relay_pid: int | None = None,
) -> list[Scenario]:
    """CreateOrder at one call in flight, the service only (the baseline has no writes): back
    to back, and paced at `create_rate`. Back to back, each create's pipeline work (relay,
    feeds, projector, the local DynamoDB: several times the create's own CPU) piles up on the
    same cores as the next creates; paced below that, the tail is the write path's own.

    Beside the caller's latency: the API's own timing of the same calls (`api`: its metrics,
    when this run started it) and its process's CPU per create (`cpu`). With the relay's
    process (`relay_pid`, when this run started it alone), back to back once more with the
    relay paused while measured: no event flows, so none of the pipeline's work shares the
    cores, which tells the write path's tail from the local stack's (the relay publishes the
    backlog after, and the run waits for the pipeline to be quiet)."""
    warm_up = min(settings.warm_up_calls, max(1, settings.create_calls // 10))
    cpu = cpu or ProcessCpu()

    def measure_with(
        run: Callable[[load.Operation], Awaitable[load.LoadResult]], hold: int | None = None
    ) -> Callable[[str, int], Awaitable[dict[str, float]]]:
        async def measure(address: str, round_number: int) -> dict[str, float]:
            requests = [create_request() for _ in range(warm_up + settings.create_calls)]
            window = cpu.window(address)

            async with order_stub(address) as stub:

                async def operation(index: int) -> str:
                    await stub.CreateOrder(requests[index], timeout=CALL_TIMEOUT_S)
                    return "call"

                await load.warm_up(operation, warm_up)
                with paused_process(hold):
                    before = await _handling(api)
                    window.start()
                    result = await run(operation)
                    window.stop()
                    after = await _handling(api)
            latencies = result.all_latencies()
            slow = sum(1 for latency in latencies if latency > _SLOW_CREATE_S * 1e9)
            return (
                result.figures()
                | {"over_slow_pct": 100 * slow / len(latencies) if latencies else math.nan}
                | _handling_figures(before, after)
                | window.figures(result.calls)
            )

        return measure

    calls = settings.create_calls
    scenarios = [
        Scenario(
            "create/CreateOrder",
            f"CreateOrder, one call in flight, {calls:,} calls back to back after {warm_up} "
            "warm-up (service only)",
            _create_metrics(),
            measure_with(lambda operation: load.closed_loop(operation, calls, warm_up)),
            with_baseline=False,
            writes=True,
        ),
        Scenario(
            "create-paced/CreateOrder",
            f"CreateOrder, one call in flight, {calls:,} calls started {settings.create_rate:g}/s "
            f"after {warm_up} warm-up (service only)",
            _create_metrics(),
            measure_with(
                lambda operation: load.paced_loop(operation, calls, settings.create_rate, warm_up)
            ),
            with_baseline=False,
            writes=True,
        ),
    ]
    if relay_pid is not None:
        scenarios.append(
            Scenario(
                "create-relay-paused/CreateOrder",
                f"CreateOrder, one call in flight, {calls:,} calls back to back after {warm_up} "
                "warm-up, the outbox relay's process paused (SIGSTOP) while measured: no event "
                "flows, so no pipeline work shares the cores (service only)",
                _create_metrics(),
                measure_with(
                    lambda operation: load.closed_loop(operation, calls, warm_up), hold=relay_pid
                ),
                with_baseline=False,
                writes=True,
            )
        )
    return scenarios


def mixed_scenario(settings: LoadSettings, book: OrderBook) -> Scenario:
    """Open-loop reads with a share of writes; the read tiers' shares (service only)."""
    name = f"mixed-{settings.mixed_rate:g}"

    async def measure(address: str, round_number: int) -> dict[str, float]:
        async with order_stub(address) as stub:
            workload = MixedWorkload(
                stub, book, _rng(settings, round_number, name), settings.write_share
            )
            result = await load.open_loop(workload, settings.mixed_rate, settings.duration_s)
        reads = sum(workload.served_by.values())
        from_postgres = workload.served_by.get("postgres", 0)
        figures = result.figures() | {
            "reads": reads,
            "writes": sum(workload.write_kinds.values()),
            "updates": workload.write_kinds["update"],
            "creates": workload.write_kinds["create"],
            "hit_rate_pct": 100.0 * (reads - from_postgres) / reads if reads else 0.0,
            "late_starts": result.late_starts,
            **latency_figures(result.latencies_ns.get("read", []), "read_"),
            **latency_figures(result.latencies_ns.get("write", []), "write_"),
        }
        for tier, count in workload.served_by.items():
            figures[f"{SERVED_BY_PREFIX}{tier}_pct"] = 100.0 * count / reads
        return figures

    return Scenario(
        name,
        f"open loop at {settings.mixed_rate:g} calls/s for {settings.duration_s:g} s: "
        f"{100 * (1 - settings.write_share):g} % GetOrderStatus, "
        f"{100 * settings.write_share:g} % writes (4 in 5 UpdateOrderStatus, 1 in 5 CreateOrder); "
        "hit rate = reads not served by postgres (service only)",
        (
            Metric("calls_per_s", "achieved calls/s", ratio=False, digits=0),
            Metric("read_p50_ms", "read p50 ms", ratio=False),
            Metric("read_p95_ms", "read p95 ms", ratio=False),
            Metric("read_p99_ms", "read p99 ms", ratio=False),
            Metric("write_p50_ms", "write p50 ms", ratio=False),
            Metric("write_p99_ms", "write p99 ms", ratio=False),
            Metric("hit_rate_pct", "hit rate %", ratio=False, digits=2),
            Metric("late_starts", "late starts", ratio=False, digits=0),
            _ERRORS,
        ),
        measure,
        with_baseline=False,
        writes=True,
    )


# The targets of DESIGN.md for commit → visible on the local stack, shown in the row labels.
NEAR_CACHE_LAG_TARGET_MS = 50
READ_MODEL_LAG_TARGET_MS = 150


def _ms(figures: dict[str, float], key: str) -> str:
    return f"{figures.get(key, math.nan):.1f}"


def _lag_progress(figures: dict[str, float]) -> str:
    return (
        f"{figures['calls_per_s']:.0f} writes/s; near cache p50 "
        f"{_ms(figures, 'near_cache_lag_p50_ms')} p99 {_ms(figures, 'near_cache_lag_p99_ms')} ms "
        f"({figures['near_cache_measured']:.0f} measured); dynamodb p50 "
        f"{_ms(figures, 'dynamodb_lag_p50_ms')} p99 {_ms(figures, 'dynamodb_lag_p99_ms')} ms "
        f"({figures.get('dynamodb_measured', 0):.0f} measured); errors {figures['errors']:.0f}"
    )


def lag_scenario(
    settings: LoadSettings, book: OrderBook, targets: pipeline.PipelineTargets
) -> Scenario:
    """Commit → visible in a near cache and in the read model, at a steady write rate."""
    name = f"lag-{settings.lag_rate:g}"

    async def measure(address: str, round_number: int) -> dict[str, float]:
        lag = pipeline.measure_lag(
            address,
            targets,
            book,
            _rng(settings, round_number, name),
            rate=settings.lag_rate,
            duration_s=settings.duration_s,
            timeout_s=settings.visibility_timeout_s,
        )
        return await _pipeline_figures(targets, targets.stages, lag)

    def row(key: str, label: str, digits: int = 1) -> Metric:
        return Metric(key, label, ratio=False, digits=digits)

    def count(key: str, label: str) -> Metric:
        return Metric(key, label, ratio=False, digits=0)

    near, dynamo = NEAR_CACHE_LAG_TARGET_MS, READ_MODEL_LAG_TARGET_MS
    metrics = [
        row("calls_per_s", "achieved writes/s", 0),
        row("write_p50_ms", "write p50 ms", 2),
        row("write_p99_ms", "write p99 ms", 2),
        row("near_cache_lag_p50_ms", "near cache lag p50 ms"),
        row("near_cache_lag_p95_ms", "near cache lag p95 ms"),
        row("near_cache_lag_p99_ms", f"near cache lag p99 ms (target <= {near})"),
        row("near_cache_lag_max_ms", "near cache lag max ms"),
        count("near_cache_measured", "near cache: updates measured"),
        count("near_cache_timeouts", "near cache: timed out"),
        count("near_cache_fell_through", "near cache: probe fell through (not counted)"),
    ]
    if targets.read_model is not None:
        metrics += [
            row("dynamodb_lag_p50_ms", "dynamodb lag p50 ms"),
            row("dynamodb_lag_p95_ms", "dynamodb lag p95 ms"),
            row("dynamodb_lag_p99_ms", f"dynamodb lag p99 ms (target <= {dynamo})"),
            row("dynamodb_lag_max_ms", "dynamodb lag max ms"),
            count("dynamodb_measured", "dynamodb: writes measured"),
            count("dynamodb_timeouts", "dynamodb: timed out"),
        ]
    metrics += [count("late_starts", "late starts"), _ERRORS_ONLY]
    metrics += _stage_metrics(targets, targets.stages)
    read_model = (
        "and of the DynamoDB status table (BatchGetItem, ConsistentRead, every ~10 ms, all writes)"
        if targets.read_model is not None
        else "(the read model is not probed: no DynamoDB endpoint)"
    )
    return Scenario(
        name,
        f"open loop at {settings.lag_rate:g} writes/s for {settings.duration_s:g} s (4 in 5 "
        "UpdateOrderStatus, 1 in 5 CreateOrder); lag = write acknowledged -> new version seen "
        f"by a probe of {targets.near_cache_where} (GetOrderStatus every ~1 ms, updates only) "
        f"{read_model}; timeout {settings.visibility_timeout_s:g} s (service only)",
        tuple(metrics),
        measure,
        with_baseline=False,
        writes=True,
        progress=_with_stages(_lag_progress, targets, targets.stages),
    )


async def _pipeline_figures(
    targets: pipeline.PipelineTargets,
    stage_list: Sequence[stages.Stage],
    measurement: Awaitable[dict[str, float]],
) -> dict[str, float]:
    """The measurement's figures with each stage's lag, the CPU per event of the processes
    events pass, and the records the event topic held as the measurement began."""
    topic = targets.event_topic
    held = None
    if topic is not None:
        held = await broker.records_held(topic.bootstrap_servers, topic.topic)
    figures = await stages.with_stage_lags(stage_list, measurement, targets.carriers)
    if held is not None:
        figures[broker.RECORDS_HELD] = float(held)
    return figures


def _stage_metrics(
    targets: pipeline.PipelineTargets, stage_list: Sequence[stages.Stage]
) -> list[Metric]:
    rows = stages.stage_rows(stage_list, targets.carriers)
    if targets.event_topic is not None:
        rows.append((broker.RECORDS_HELD, "records the event topic held at the start", 0))
    return [Metric(key, label, ratio=False, digits=digits) for key, label, digits in rows]


def _with_stages(
    progress: Progress, targets: pipeline.PipelineTargets, stage_list: Sequence[stages.Stage]
) -> Progress:
    if not stage_list:
        return progress

    def line(figures: dict[str, float]) -> str:
        held = figures.get(broker.RECORDS_HELD)
        topic = "" if held is None else f"; the event topic held {held:,.0f} records at the start"
        stage_lags = stages.summary(stage_list, figures, targets.carriers)
        return f"{progress(figures)}; {stage_lags}{topic}"

    return line


def _pipeline_progress(figures: dict[str, float]) -> str:
    return (
        f"{figures['events']:.0f} events: {figures['commits_per_s']:,.0f} commits/s, "
        f"{figures['events_per_s']:,.0f} events/s end to end, drained "
        f"{figures['drain_s']:.2f} s after the last commit; errors {figures['errors']:.0f}, "
        f"not visible {figures['not_visible']:.0f}"
    )


def pipeline_scenario(settings: LoadSettings, targets: pipeline.PipelineTargets) -> Scenario:
    """A burst of status changes through outbox → relay → Kafka → projector → DynamoDB."""
    read_model = targets.read_model
    if read_model is None:
        raise ValueError("the pipeline scenario needs the DynamoDB endpoint (--dynamodb)")
    events, writers = settings.pipeline_events, settings.pipeline_writers
    name = f"pipeline-{events}"
    stage_list = targets.stages

    async def measure(address: str, round_number: int) -> dict[str, float]:
        burst = pipeline.measure_pipeline(address, read_model, events=events, writers=writers)
        return await _pipeline_figures(targets, stage_list, burst)

    return Scenario(
        name,
        f"{events:,} UpdateOrderStatus from {writers} concurrent writers as fast as the service "
        f"takes them, over {math.ceil(events / pipeline.STEPS_PER_ORDER):,} fresh orders "
        "(created and projected first); then the DynamoDB status table is read until every "
        "order holds its final version (service only)",
        (
            Metric("commits_per_s", "write throughput, commits/s", ratio=False, digits=0),
            Metric("events_per_s", "end to end, events/s", ratio=False, digits=0),
            Metric("write_s", "writing took s", ratio=False, digits=2),
            Metric("drain_s", "drained s after the last commit", ratio=False, digits=2),
            Metric("end_to_end_s", "first commit -> all visible s", ratio=False, digits=2),
            Metric("write_p50_ms", "write p50 ms", ratio=False, digits=2),
            Metric("write_p99_ms", "write p99 ms", ratio=False, digits=2),
            Metric("not_visible", "orders not visible in time", ratio=False, digits=0),
            _ERRORS_ONLY,
            *_stage_metrics(targets, stage_list),
        ),
        measure,
        with_baseline=False,
        writes=True,
        progress=_with_stages(_pipeline_progress, targets, stage_list),
    )


def build(
    kinds: Sequence[str],
    settings: LoadSettings,
    book: OrderBook,
    targets: pipeline.PipelineTargets | None = None,
    cpu: ProcessCpu | None = None,
    built_elsewhere: Mapping[str, Callable[[], Sequence[Scenario]]] | None = None,
) -> list[Scenario]:
    """The scenarios for the `--scenarios` kinds, in the order given (`cpu`: the servers whose
    CPU per call the read scenarios show; `built_elsewhere`: kinds whose module builds them)."""
    targets = targets or pipeline.PipelineTargets()
    scenarios: list[Scenario] = []
    for kind in kinds:
        if kind in ("closed-1", "open", "saturated"):
            scenarios.extend(read_scenarios(kind, settings, list(book.order_ids), cpu))
        elif kind == "create":
            scenarios.extend(
                create_scenarios(settings, cpu, targets.service_metrics, targets.relay_pid)
            )
        elif kind == "mixed":
            scenarios.append(mixed_scenario(settings, book))
        elif kind == "lag":
            scenarios.append(lag_scenario(settings, book, targets))
        elif kind == "pipeline":
            scenarios.append(pipeline_scenario(settings, targets))
        elif kind == "watch":
            # Imported here: watch_scenario builds on this module's Scenario and Metric.
            from uoom_orders_bench.watch_scenario import watch_scenarios

            scenarios.extend(watch_scenarios(settings, targets))
        elif built_elsewhere is not None and kind in built_elsewhere:
            scenarios.extend(built_elsewhere[kind]())
        else:
            raise ValueError(f"unknown scenario {kind!r}; expected one of {SCENARIO_KINDS}")
    return scenarios
