"""One benchmark run: start what is needed, seed, then rounds of interleaved measurements.

Startup and cleanup live in one AsyncExitStack, unwound in reverse on success, error, Ctrl-C
(the runner cancels the main task) or SIGTERM: every process the run starts is stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uoom.orders.v1 import order_service_pb2

from uoom_orders_bench import scenarios as scenario_kinds
from uoom_orders_bench.bulk_seed import seed_bulk
from uoom_orders_bench.cpu import ProcessCpu
from uoom_orders_bench.pipeline import EventTopic, PipelineTargets, ReadModelTable
from uoom_orders_bench.process_metrics import MetricsEndpoint, with_metrics_port
from uoom_orders_bench.rebuild import rebuild_scenario
from uoom_orders_bench.report import (
    RoundFigures,
    ScenarioReport,
    machine_facts,
    render_machine,
    render_table,
    to_json,
    write_json,
)
from uoom_orders_bench.scenarios import LoadSettings, Scenario, Side
from uoom_orders_bench.stages import pipeline_stages
from uoom_orders_bench.targets import (
    ALL_ROLES,
    bare_server_process,
    order_stub,
    replica_environment,
    service_environment,
    service_process,
    start_logged,
    start_serving,
    wait_quiet,
    wait_serving,
)
from uoom_orders_bench.verdicts import judge, render_verdicts
from uoom_orders_bench.workload import OrderBook, seed_orders
from uoom_orders_bench.zipf import ZipfSettings, ZipfTarget, zipf_scenario
from uoom_orders_devstack.stack import LocalStack

# After writes, the service's background work (outbox relay, projection, cache feed) must not
# spill into the next measurement: a service we started is watched until it is idle; one given
# with --target gets this pause instead.
_SETTLE_TARGET_S = 2.0
# Kinds whose rounds all run before any other scenario's. The lag scenario measures the
# pipeline through the local broker, tansu, whose work per fetch grows with the records a
# partition holds, all of them kept (README, "What the local stack is and is not"). A round of
# the other scenarios writes about 6,000 events: in place, the lag rounds of a whole run
# started with 4,000-16,000 records held and every hop was slower round after round (near
# cache p99 78.6, 365 and 1,301 ms in rounds 1 to 3 of one run), which measured the stand-in
# more than the service (Kafka reads a partition by its offset index, whatever it holds). Run
# first, its rounds start with the seed's records and the earlier lag rounds' (it prints how
# many).
_FIRST = ("lag",)


@dataclass(frozen=True)
class BenchOptions:
    """Everything the command line decides."""

    rounds: int = 5
    orders: int = 1000
    kinds: tuple[str, ...] = scenario_kinds.DEFAULT_KINDS
    load: LoadSettings = field(default_factory=LoadSettings)
    service_env: dict[str, str] = field(default_factory=dict)
    single_process: bool = False
    database_url: str | None = None
    kafka: str | None = None
    dynamodb: str | None = None
    target: str | None = None
    json_path: Path | None = None
    plots: bool = False  # PNG plots next to the JSON (plots.py)
    log_dir: Path | None = None
    zipf: ZipfSettings = field(default_factory=ZipfSettings)


@dataclass
class _Setup:
    service_address: str = ""
    service_pid: int | None = None
    baseline_address: str = ""
    pipeline: PipelineTargets = field(default_factory=PipelineTargets)
    pids: dict[str, int] = field(default_factory=dict)
    """The processes this run started, by their gRPC address (for their CPU time)."""
    env: dict[str, str] = field(default_factory=dict)
    """The service's settings (the stores it uses), for the rebuild scenario."""
    dynamodb_pid: int | None = None
    """The local DynamoDB endpoint's process, when this run started it."""
    background_pids: list[int] = field(default_factory=list)
    """The relay, the projector and the DynamoDB endpoint, when this run started them."""

    def address(self, side: Side) -> str:
        return self.baseline_address if side == "baseline" else self.service_address

    async def settle(self) -> float:
        """Waits for the service's background work to finish; returns the seconds waited."""
        if self.service_pid is None:
            await asyncio.sleep(_SETTLE_TARGET_S)
            return _SETTLE_TARGET_S
        waited = await wait_quiet(self.service_pid)
        # And the pipeline behind it: a projector still writing a backlog (the seed's thousand
        # orders take it seconds) would show as lag in the next scenario.
        for pid in self.background_pids:
            waited += await wait_quiet(pid)
        return waited


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_benchmark(options: BenchOptions, command: str, argv: Sequence[str]) -> None:
    """Runs every round of every scenario, then prints the tables (and writes the JSON)."""
    facts = machine_facts()
    print(render_machine(facts, command), flush=True)
    setup_facts: dict[str, Any] = {}
    async with AsyncExitStack() as resources:
        log_dir = _log_dir(options, resources)
        setup = _Setup()
        await _start_service(options, resources, log_dir, setup, setup_facts)

        started = time.monotonic()
        async with order_stub(setup.service_address) as stub:
            summaries = await seed_orders(stub, options.orders)
        setup_facts["seed_seconds"] = round(time.monotonic() - started, 3)
        setup_facts["orders_seeded"] = len(summaries)
        settled = await setup.settle()
        _say(
            f"seeded {len(summaries)} orders in {setup_facts['seed_seconds']:.1f} s; "
            f"the service was busy {settled:.1f} s more"
        )

        orders_file = log_dir / "orders.binpb"
        orders_file.write_bytes(
            order_service_pb2.BatchGetOrderStatusResponse(orders=summaries).SerializeToString()
        )
        bare, setup.baseline_address = bare_server_process(orders_file, log_dir)
        await start_serving(resources, bare, setup.baseline_address)
        _say(f"baseline (bare grpc.aio) at {setup.baseline_address}")

        book = OrderBook(summaries)
        cpu = ProcessCpu(setup.pids | ({setup.baseline_address: bare.pid} if bare.pid else {}))

        def build(kinds: Sequence[str]) -> list[ScenarioReport]:
            built = scenario_kinds.build(
                kinds,
                options.load,
                book,
                setup.pipeline,
                cpu,
                built_elsewhere={"rebuild": lambda: _rebuild(setup)},
            )
            return [ScenarioReport(s) for s in built]

        # Both built before anything runs: the read scenarios take the seeded orders, which
        # the bare server holds too, not the orders the lag rounds create.
        first = build([kind for kind in options.kinds if kind in _FIRST])
        rest = build([kind for kind in options.kinds if kind not in _FIRST and kind != "zipf"])
        # Every round of the first kinds (lag) before any other scenario writes: see _FIRST.
        await _run_rounds(options.rounds, first, setup)
        await _run_rounds(options.rounds, rest, setup, idle=cpu)
        reports = first + rest
        if "zipf" in options.kinds and options.target is not None:
            _say("zipf: not with --target (it seeds the stores and starts a replica of its own)")
        elif "zipf" in options.kinds:
            # After every other scenario's rounds: its 200,000 orders, seeded in PostgreSQL and
            # DynamoDB, would otherwise be in the rebuild's walk and the other scenarios' stores.
            zipf = await _start_zipf(options, resources, log_dir, setup.env, setup_facts)
            zipf_report = ScenarioReport(zipf_scenario(options.load, zipf))
            await _run_rounds(options.rounds, [zipf_report], setup)
            reports.append(zipf_report)

    setup_facts["load_average_end"] = list(os.getloadavg())
    print()
    for report in reports:
        print(render_table(report))
        print()
    verdicts = judge(reports)
    print(render_verdicts(verdicts))
    print()
    load_end = ", ".join(f"{v:.2f}" for v in setup_facts["load_average_end"])
    print(f"load average at end: {load_end} (other work on the machine shows here)")
    if options.json_path is not None:
        document = to_json(
            reports,
            command=command,
            argv=argv,
            facts=facts,
            options=_jsonable(dataclasses.asdict(options)),
            setup=setup_facts,
        ) | {"targets": [verdict.as_dict() for verdict in verdicts]}
        write_json(options.json_path, document)
        if options.plots:
            from uoom_orders_bench.plots import write_plots

            for path in write_plots(document, options.json_path.with_suffix("")):
                print(f"plot written to {path}", file=sys.stderr)


def _rebuild(setup: _Setup) -> list[Scenario]:
    if not setup.env.get("DYNAMODB_ENDPOINT"):
        raise ValueError("the rebuild scenario needs the DynamoDB endpoint (--dynamodb)")
    return [rebuild_scenario(setup.env, setup.dynamodb_pid)]


async def _measure_idle(cpu: ProcessCpu, setup: _Setup, round_number: int) -> None:
    """Each server's CPU while nobody calls it, for the figures beyond idle (per round: the
    machine's other work changes)."""
    parts = []
    for side in ("baseline", "service"):
        cores = await cpu.measure_idle(setup.address(side))
        if cores is not None:
            parts.append(f"{side} {100 * cores:.1f} %")
    if parts:
        _say(f"[round {round_number}] idle CPU, % of a core: {', '.join(parts)}")


async def _run_rounds(
    rounds: int,
    reports: Sequence[ScenarioReport],
    setup: _Setup,
    *,
    idle: ProcessCpu | None = None,
) -> None:
    """Every round of `reports`' scenarios, each round measuring each scenario once; with
    `idle`, each round begins by measuring the servers' idle CPU."""
    if not reports:
        return
    for round_number in range(1, rounds + 1):
        if idle is not None:
            await _measure_idle(idle, setup, round_number)
        await _run_round(round_number, rounds, reports, setup)


async def _run_round(
    round_number: int, rounds: int, reports: Sequence[ScenarioReport], setup: _Setup
) -> None:
    # Alternate which side goes first, so a drift within a round does not favour one side.
    order: tuple[Side, ...] = (
        ("baseline", "service") if round_number % 2 else ("service", "baseline")
    )
    for report in reports:
        scenario = report.scenario
        sides = tuple(s for s in order if s == "service" or scenario.with_baseline)
        figures = RoundFigures(round_number, sides)
        for side in sides:
            measured = await scenario.measure(setup.address(side), round_number)
            if side == "baseline":
                figures.baseline = measured
            else:
                figures.service = measured
        report.rounds.append(figures)
        _say(f"[round {round_number}/{rounds}] {scenario.name}: {_progress(scenario, figures)}")
        if scenario.writes:
            await setup.settle()


def _progress(scenario: Scenario, figures: RoundFigures) -> str:
    parts = []
    for side in figures.order:
        f = figures.side(side)
        assert f is not None
        if scenario.progress is not None:
            parts.append(f"{side} {scenario.progress(f)}")
            continue
        cpu = f.get("server_cpu_ms_per_call")
        parts.append(
            f"{side} p50 {f['p50_ms']:.3f} ms p99 {f['p99_ms']:.3f} ms "
            f"{f['calls_per_s']:,.0f}/s errors {f['errors']:.0f}"
            + (f" cpu {cpu:.3f} ms/call" if cpu is not None else "")
        )
    return " | ".join(parts)


def _log_dir(options: BenchOptions, resources: AsyncExitStack) -> Path:
    if options.log_dir is not None:
        options.log_dir.mkdir(parents=True, exist_ok=True)
        return options.log_dir
    path = Path(tempfile.mkdtemp(prefix="uoom-bench-"))
    resources.callback(shutil.rmtree, path, ignore_errors=True)
    return path


async def _start_service(
    options: BenchOptions,
    resources: AsyncExitStack,
    log_dir: Path,
    setup: _Setup,
    facts: dict[str, Any],
) -> None:
    """Sets the service's address: `--target`, or a service started on the (local) stack."""
    if options.target is not None:
        if options.service_env:
            _say("note: --service-env is ignored with --target (the service is not ours)")
        await wait_serving(options.target, timeout_s=10.0)
        facts["service"] = {"target": options.target}
        setup.service_address = options.target
        # Not our service: its own near cache is probed, and the read model only where told.
        if options.dynamodb is not None:
            given = dict(os.environ) | {"DYNAMODB_ENDPOINT": options.dynamodb}
            setup.pipeline = PipelineTargets(read_model=_read_model_table(given))
        return

    stack = LocalStack(
        database_url=options.database_url,
        kafka_bootstrap_servers=options.kafka,
        dynamodb_endpoint=options.dynamodb,
    )
    # Registered before start: an interrupted start is still stopped (stop waits for start).
    resources.callback(stack.stop)
    started = time.monotonic()
    endpoints = await asyncio.to_thread(stack.start)
    facts["stack_seconds"] = round(time.monotonic() - started, 3)
    local = [
        s.name for s in (stack.postgres, stack.kafka, stack.dynamodb, stack.dax) if s is not None
    ]
    if local:
        _say(f"local {', '.join(local)} up in {facts['stack_seconds']:.1f} s")

    # endpoints.env() carries the local broker's settings (no idempotent producer, short fetches).
    env = service_environment(endpoints.env(), options.service_env)
    if "RECONCILE_INTERVAL_SECONDS" not in options.service_env:
        # A scheduled pass walks every order: it would land in whichever scenario runs then
        # and hold the local DynamoDB endpoint for seconds (over the zipf scenario's orders,
        # minutes). The rebuild scenario measures a pass apart.
        env["RECONCILE_INTERVAL_SECONDS"] = "0"
        _say("reconciliation's schedule off in this run (RECONCILE_INTERVAL_SECONDS=0)")
    setup.env = dict(env)
    setup.dynamodb_pid = None if stack.dynamodb is None else stack.dynamodb.pid
    await prepare_stores(env)
    roles = ALL_ROLES if options.single_process else ("api",)
    # Every process serves its own metrics, for the lag by stage.
    env, service_metrics = with_metrics_port(env, "service")
    relay_metrics = projector_metrics = service_metrics
    if not options.single_process:
        # The relay and the projector each in a process of their own, as deployed at scale:
        # the measured API process then does what an API replica does, tailing included, and
        # each role's CPU per event is its process's.
        relay_metrics = await _start_role(resources, env, log_dir, "relay", "outbox relay started")
        projector_metrics = await _start_role(
            resources, env, log_dir, "projector", "projector started"
        )
        setup.background_pids += [
            m.pid for m in (relay_metrics, projector_metrics) if m.pid is not None
        ]
    if setup.dynamodb_pid is not None:
        setup.background_pids.append(setup.dynamodb_pid)
    process, address = service_process(env, log_dir, roles=roles)
    await start_serving(resources, process, address)
    facts["service"] = {
        "address": address,
        "roles": list(roles),
        "service_env": options.service_env,
    }
    _say(f"service ({', '.join(roles)}) at {address} (log: {process.log_path})")
    setup.service_address = address
    setup.service_pid = process.pid
    if process.pid is not None:
        setup.pids[address] = process.pid

    api_metrics = [service_metrics]
    # A second API replica with the same settings, whatever scenarios run: a deployment has
    # more than one, and each applies every write's event, so a write scenario measures the
    # same work whichever other scenarios run with it. The lag is measured in its near cache
    # (a replica that did not take the write, as every reader elsewhere sees it), and the
    # watches are opened there.
    most_watches = max(options.load.watchers, default=0)
    replica_env, replica_metrics = with_metrics_port(
        replica_environment(env) | {"WATCH_MAX_STREAMS": str(max(10_000, 2 * most_watches))},
        "replica",
    )
    api_metrics.append(replica_metrics)
    replica, replica_address = service_process(replica_env, log_dir, roles=("api",), name="replica")
    await start_serving(resources, replica, replica_address)
    replica_pid = replica.pid
    facts["replica"] = {"address": replica_address, "roles": ["api"]}
    _say(f"API replica at {replica_address} (log: {replica.log_path})")
    setup.pipeline = PipelineTargets(
        near_cache_address=replica_address,
        replica_pid=replica_pid,
        read_model=_read_model_table(env),
        stages=pipeline_stages(relay_metrics, projector_metrics, api_metrics),
        service_metrics=service_metrics,
        relay_pid=None if options.single_process else relay_metrics.pid,
        carriers=_carriers(stack, setup.dynamodb_pid),
        event_topic=None if stack.kafka is None else _event_topic(env),
    )


def _carriers(stack: LocalStack, dynamodb_pid: int | None) -> dict[str, int]:
    """The local servers every event passes (when this run started them), by name."""
    broker_pid = None if stack.kafka is None else stack.kafka.pid
    named = {"broker": broker_pid, "dynamodb": dynamodb_pid}
    return {name: pid for name, pid in named.items() if pid is not None}


def _event_topic(env: Mapping[str, str]) -> EventTopic:
    """The service's event topic, as its settings name it."""
    from uoom_orders.config import Settings

    return EventTopic(
        bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        topic=env.get("KAFKA_TOPIC", Settings.kafka_topic),
    )


async def _start_role(
    resources: AsyncExitStack, env: Mapping[str, str], log_dir: Path, role: str, started: str
) -> MetricsEndpoint:
    """`serve --roles ROLE` alone (no gRPC port), with its metrics; ready once it logs `started`.
    Its endpoint carries its pid, for its CPU per event."""
    role_env, metrics = with_metrics_port(replica_environment(env), role)
    process, _ = service_process(role_env, log_dir, roles=(role,), name=role)
    await start_logged(resources, process, (started,))
    _say(f"{role} in a process of its own (log: {process.log_path})")
    return dataclasses.replace(metrics, pid=process.pid)


async def _start_zipf(
    options: BenchOptions,
    resources: AsyncExitStack,
    log_dir: Path,
    env: Mapping[str, str],
    facts: dict[str, Any],
) -> ZipfTarget:
    """Seeds the zipf scenario's orders in bulk and starts the API replica it measures, whose
    near cache holds a tenth of them."""
    settings = options.zipf
    _say(f"zipf: seeding {settings.orders:,} orders in bulk (PostgreSQL COPY, BatchWriteItem)")
    seeded = await seed_bulk(env, settings.orders, details=False, seed=options.load.seed)
    facts["zipf_seed"] = {
        "orders": len(seeded.summaries),
        "build_s": round(seeded.build_s, 3),
        "postgres_s": round(seeded.postgres_s, 3),
        "dynamodb_s": round(seeded.dynamodb_s, 3),
        "items": seeded.items_written,
    }
    _say(
        f"zipf: seeded {len(seeded.summaries):,} orders in {seeded.total_s:.1f} s (PostgreSQL "
        f"{seeded.postgres_s:.1f} s; status items {seeded.dynamodb_s:.1f} s, "
        f"{seeded.items_written / max(seeded.dynamodb_s, 1e-9):,.0f}/s)"
    )
    replica_env = replica_environment(env) | {"NEAR_CACHE_MAX_ENTRIES": str(settings.cache_entries)}
    # moto answers in milliseconds with tails near 100 ms and is shared with the projector: a
    # tier timeout above its tails (as the reference command uses), unless told otherwise.
    replica_env.setdefault("READ_TIER_TIMEOUT_MS", "1000")
    replica_env, metrics = with_metrics_port(replica_env, "zipf")
    process, address = service_process(replica_env, log_dir, roles=("api",), name="zipf")
    await start_serving(resources, process, address)
    facts["zipf"] = {"address": address, "near_cache_max_entries": settings.cache_entries}
    _say(
        f"zipf: API replica at {address}, NEAR_CACHE_MAX_ENTRIES={settings.cache_entries:,} "
        f"(log: {process.log_path})"
    )
    return ZipfTarget(address, settings, seeded.summaries, metrics)


async def prepare_stores(env: Mapping[str, str]) -> None:
    """What `serve` expects to exist, as the service's settings name it: the PostgreSQL schema
    (migrations) and, when a DynamoDB endpoint is set, both read-model tables. Idempotent."""
    import aioboto3

    from uoom_orders.admin import prepare_stores
    from uoom_orders.config import Settings

    settings = Settings.from_env(env)
    session = aioboto3.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=settings.aws_region,
    )
    await prepare_stores(settings, session)


def _read_model_table(env: Mapping[str, str]) -> ReadModelTable | None:
    """The status table the service's projector writes, as its settings name it (None without
    a DynamoDB endpoint: the read model is not probed)."""
    from uoom_orders.config import Settings
    from uoom_orders.dynamodb.tables import TableNames

    endpoint = env.get("DYNAMODB_ENDPOINT")
    if not endpoint:
        return None
    prefix = env.get("DYNAMODB_TABLE_PREFIX", Settings.dynamodb_table_prefix)
    return ReadModelTable(
        table=TableNames.for_prefix(prefix).status,
        region=env.get("AWS_REGION", Settings.aws_region),
        endpoint=endpoint,
        access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
