"""Command line of ``python -m uoom_orders_bench``."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc

from uoom_orders.config import ConfigError
from uoom_orders_bench.runner import BenchOptions, run_benchmark
from uoom_orders_bench.scenarios import DEFAULT_KINDS, SCENARIO_KINDS, LoadSettings
from uoom_orders_bench.targets import TargetStartError
from uoom_orders_bench.zipf import ZipfSettings
from uoom_orders_devstack.processes import StackStartError

_DEFAULTS = LoadSettings()
_ZIPF = ZipfSettings()
# --quick: one short round, for a smoke test; explicit options still win.
_QUICK = {
    "rounds": 1,
    "duration": 1.0,
    "calls": 200,
    "warmup": 50,
    "create_calls": 20,
    "orders": 100,
    "pipeline_events": 100,
    "zipf_orders": 2000,
    "zipf_warmup": 2.0,
}
_FULL = {
    "rounds": 5,
    "duration": _DEFAULTS.duration_s,
    "calls": _DEFAULTS.calls,
    "warmup": _DEFAULTS.warm_up_calls,
    "create_calls": _DEFAULTS.create_calls,
    "orders": 1000,
    "pipeline_events": _DEFAULTS.pipeline_events,
    "zipf_orders": _ZIPF.orders,
    "zipf_warmup": _ZIPF.warm_up_s,
}
_EPILOG = """\
scenarios (--scenarios, comma separated; a numeric suffix sets the rate or concurrency):
  closed-1        one call in flight, --calls calls: p50/p95/p99/mean, calls/s
  open[-RATE]     open loop at --rate calls/s for --duration s, latency from the scheduled start
  saturated[-C]   --concurrency callers for --duration s: calls/s, p50/p99
  create          CreateOrder at one in flight (service only): back to back, and paced at
                  --create-rate starts/s
  mixed[-RATE]    open loop at --mixed-rate: reads plus --write-share writes; hit rate by tier
  lag[-RATE]      open loop of writes at --lag-rate for --duration s: commit -> visible in an
                  API replica's near cache and in the DynamoDB read model, p50/p95/p99/max
  pipeline[-N]    a burst of N (--pipeline-events) status changes from --pipeline-writers:
                  commits/s, events/s end to end into DynamoDB, time to drain
  rebuild         a reconciliation pass of every order into a fresh pair of empty tables,
                  then over the full ones: orders/s, CPU per order of the pass and of the
                  local DynamoDB endpoint (service only; reconciliation's schedule is off in
                  every run, so that no pass lands in another scenario)
  zipf[-RATE]     open loop at --zipf-rate over --zipf-orders orders seeded in bulk, reads
                  Zipf-distributed, --write-share writes, on a replica whose near cache holds
                  a tenth of them; share served by each tier, read p50/p99 misses included.
                  Runs after every other scenario's rounds (its seeding takes minutes, and
                  its orders stay out of the others' stores); each round warms up
                  --zipf-warmup s first
  watch[-RATE]    for each of --watchers (1,1000,10000) concurrent WatchOrderStatus streams on
                  an API replica, writes at --watch-rate on the watched orders for --duration s:
                  push lag (commit -> message at the watcher) p50/p95/p99, the replica's CPU
                  per pushed message; not in the default run
lag and pipeline also show the lag of each stage (relay, each replica's near-cache feed,
projector) from the processes' own histograms, scraped before and after each run.
closed-1, open and saturated run for GetOrderStatus and BatchGetOrderStatus(--batch-size),
and show each server process's CPU time per call (its own user + system counters).
lag, pipeline, create and mixed measure the service only (their baseline column is n/a).
lag starts a second API replica (serve --roles api) and probes its near cache; watch opens its
streams there. The default run (every scenario but watch) takes about 7-8 minutes on a 2-core
machine, of which lag and pipeline about 2; `--scenarios lag,pipeline` runs only those.
Each round measures the bare server and the service back to back; tables show the median over
rounds, the min-max across rounds, and service/baseline computed per round (paired).
"""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _share(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _counts(raw: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of integers, got {raw!r}"
        ) from error
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("expected positive integers")
    return counts


def _env_pair(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {raw!r}")
    return key.strip(), value


def _plots(args: argparse.Namespace) -> bool:
    if args.plots and args.json_path is None:
        raise ValueError("--plots writes next to the --json file: give both")
    return bool(args.plots)


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench",
        description="The service side by side with a bare grpc.aio server, in the same run.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="one short round (smoke test)")
    add("--rounds", type=_positive_int, help="rounds; figures are medians over them (5)")
    add("--duration", type=_positive_float, help="seconds per open/saturated/mixed run (5)")
    add("--calls", type=_positive_int, help="calls per closed-1 run (2000)")
    add("--warmup", type=int, help="unmeasured calls before each run (200)")
    add("--rate", type=_positive_float, default=_DEFAULTS.rate, help="open loop calls/s (1000)")
    add("--concurrency", type=_positive_int, default=_DEFAULTS.concurrency, help="callers (32)")
    add("--batch-size", type=_positive_int, default=_DEFAULTS.batch_size, help="ids per batch")
    add("--orders", type=_positive_int, help="orders seeded through CreateOrder (1000)")
    add("--create-calls", type=_positive_int, help="calls per create run (1000)")
    add(
        "--create-rate",
        type=_positive_float,
        default=_DEFAULTS.create_rate,
        help="starts/s of the paced create run (50)",
    )
    add("--mixed-rate", type=_positive_float, default=_DEFAULTS.mixed_rate, help="(500)")
    add("--write-share", type=_share, default=_DEFAULTS.write_share, help="mixed writes (0.05)")
    add("--lag-rate", type=_positive_float, default=_DEFAULTS.lag_rate, help="writes/s (50)")
    add(
        "--visibility-timeout",
        type=_positive_float,
        default=_DEFAULTS.visibility_timeout_s,
        help="seconds a lag probe waits for a write to become visible (5)",
    )
    add("--pipeline-events", type=_positive_int, help="status changes per pipeline burst (2000)")
    add(
        "--pipeline-writers",
        type=_positive_int,
        default=_DEFAULTS.pipeline_writers,
        help="concurrent writers of the pipeline burst (16)",
    )
    add("--zipf-orders", type=_positive_int, help="orders the zipf scenario seeds (200000)")
    add("--zipf-rate", type=_positive_float, default=_ZIPF.rate, help="zipf calls/s (200)")
    add("--zipf-warmup", type=float, help="unmeasured seconds before each zipf round (60)")
    add(
        "--zipf-exponent",
        type=_positive_float,
        default=_ZIPF.exponent,
        help="s of the Zipf distribution: rank r is read in proportion to 1/r^s (0.99)",
    )
    add(
        "--watchers",
        type=_counts,
        default=_DEFAULTS.watchers,
        help="comma list of concurrent watches, one watch run each (1,1000,10000)",
    )
    add(
        "--watch-orders",
        type=_positive_int,
        default=_DEFAULTS.watch_orders,
        help="orders watched at once at most; the watches share them (1000)",
    )
    add("--watch-rate", type=_positive_float, default=_DEFAULTS.watch_rate, help="writes/s (50)")
    add("--seed", type=int, default=_DEFAULTS.seed, help="random seed of the requests (1)")
    add(
        "--scenarios",
        default=",".join(DEFAULT_KINDS),
        help=f"comma list of {','.join(SCENARIO_KINDS)} (default {','.join(DEFAULT_KINDS)})",
    )
    add(
        "--service-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service process (repeatable)",
    )
    add(
        "--single-process",
        action="store_true",
        help="run the relay and the projector inside the measured API process (default: each "
        "in a process of its own, as deployments at scale do)",
    )
    add("--database-url", help="use this PostgreSQL instead of a local one")
    add("--kafka", help="use these Kafka bootstrap servers instead of a local broker")
    add("--dynamodb", help="use this DynamoDB endpoint instead of a local one")
    add("--target", help="an already running service (host:port): start none")
    add("--json", type=Path, dest="json_path", help="write every round's raw figures here")
    add(
        "--plots",
        action="store_true",
        help="also write PNG plots next to the JSON: latency of service vs bare, lag per stage",
    )
    add("--log-dir", type=Path, help="keep the servers' logs here (default: a temporary folder)")
    return parser


def _scenario_kinds(raw: str, settings: dict[str, float]) -> tuple[str, ...]:
    """Kinds in order; `open-500`, `saturated-64`, `mixed-200`, `lag-100`, `pipeline-5000`,
    `watch-100` also set their number."""
    numbered = {
        "open": "rate",
        "saturated": "concurrency",
        "mixed": "mixed_rate",
        "lag": "lag_rate",
        "pipeline": "pipeline_events",
        "zipf": "zipf_rate",
        "watch": "watch_rate",
    }
    kinds: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        kind, _, number = item.partition("-") if item != "closed-1" else (item, "", "")
        if kind not in SCENARIO_KINDS:
            raise ValueError(f"unknown scenario {item!r}; expected one of {SCENARIO_KINDS}")
        if number:
            if kind not in numbered:
                raise ValueError(f"{kind} takes no number: {item!r}")
            settings[numbered[kind]] = float(number)
        if kind not in kinds:
            kinds.append(kind)
    if not kinds:
        raise ValueError("no scenario given")
    return tuple(kinds)


def options_from(args: argparse.Namespace) -> BenchOptions:
    """BenchOptions from parsed arguments (--quick fills what was not given)."""
    defaults = _QUICK if args.quick else _FULL

    def pick(name: str) -> float:
        value = getattr(args, name)
        return defaults[name] if value is None else value

    numbers: dict[str, float] = {
        "rate": args.rate,
        "concurrency": args.concurrency,
        "mixed_rate": args.mixed_rate,
        "lag_rate": args.lag_rate,
        "pipeline_events": pick("pipeline_events"),
        "zipf_rate": args.zipf_rate,
        "watch_rate": args.watch_rate,
    }
    kinds = _scenario_kinds(args.scenarios, numbers)
    if "zipf" in kinds and args.target is not None:
        raise ValueError("the zipf scenario seeds its orders and starts its replica: no --target")
    if "watch" in kinds and args.target is not None:
        raise ValueError("the watch scenario starts a replica of its own: not with --target")
    if "pipeline" in kinds and args.target is not None and args.dynamodb is None:
        raise ValueError("with --target, the pipeline scenario needs --dynamodb (its read model)")
    if numbers["pipeline_events"] < 1 or numbers["lag_rate"] <= 0:
        raise ValueError("lag-RATE and pipeline-N need a positive number")
    load = LoadSettings(
        calls=int(pick("calls")),
        warm_up_calls=max(0, int(pick("warmup"))),
        rate=numbers["rate"],
        duration_s=pick("duration"),
        concurrency=max(1, int(numbers["concurrency"])),
        batch_size=args.batch_size,
        create_calls=int(pick("create_calls")),
        create_rate=args.create_rate,
        mixed_rate=numbers["mixed_rate"],
        write_share=args.write_share,
        lag_rate=numbers["lag_rate"],
        visibility_timeout_s=args.visibility_timeout,
        pipeline_events=int(numbers["pipeline_events"]),
        pipeline_writers=args.pipeline_writers,
        watchers=args.watchers,
        watch_orders=args.watch_orders,
        watch_rate=numbers["watch_rate"],
        seed=args.seed,
    )
    zipf = ZipfSettings(
        orders=int(pick("zipf_orders")),
        rate=numbers["zipf_rate"],
        warm_up_s=max(0.0, pick("zipf_warmup")),
        exponent=args.zipf_exponent,
    )
    return BenchOptions(
        rounds=int(pick("rounds")),
        orders=int(pick("orders")),
        kinds=kinds,
        load=load,
        service_env=dict(args.service_env),
        single_process=args.single_process,
        database_url=args.database_url,
        kafka=args.kafka,
        dynamodb=args.dynamodb,
        target=args.target,
        json_path=args.json_path,
        plots=_plots(args),
        log_dir=args.log_dir,
        zipf=zipf,
    )


async def _main(
    options: BenchOptions, command: str, argv: Sequence[str], received: list[signal.Signals]
) -> None:
    # SIGTERM unwinds like Ctrl-C: the main task is cancelled and every process stopped.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def terminate() -> None:
        received.append(signal.SIGTERM)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        await run_benchmark(options, command, argv)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """Parses, runs, and maps failures to exit codes (2 usage, 1 setup failure, 128 + signal)."""
    import uvloop

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from(args)
    except ValueError as error:
        parser.error(str(error))
    command = shlex.join(["python", "-m", "uoom_orders_bench", *argv])
    received: list[signal.Signals] = []
    try:
        uvloop.run(_main(options, command, argv, received))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 128 + (received[0] if received else signal.SIGINT)
    except (TargetStartError, StackStartError, ConfigError) as error:
        print(f"benchmark setup failed: {error}", file=sys.stderr)
        return 1
    except grpc.aio.AioRpcError as error:  # seeding; measurements count failures instead
        code = error.code()
        print(
            f"benchmark failed: {code.name if code else 'UNKNOWN'}: {error.details()}",
            file=sys.stderr,
        )
        return 1
    return 0
