"""One fault-injection run: the cluster up, the load on, then each fault in turn — steady load,
the fault, the wait for agreement — and its figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from uoom_orders_chaos import cpu_census
from uoom_orders_chaos.cluster import ChaosCluster
from uoom_orders_chaos.convergence import Snapshot, StateReader, await_convergence
from uoom_orders_chaos.faults import FAULT_FUNCTIONS, FaultContext, Lifted
from uoom_orders_chaos.load import LoadDriver
from uoom_orders_chaos.observations import Tally, WriteLedger
from uoom_orders_chaos.options import RunOptions
from uoom_orders_chaos.report import FaultReport

RECOVERY_TIMEOUT_S = 120.0
"""How long a restart or repair may take before the run gives up on it."""
CHANNELS_READY_TIMEOUT_S = 10.0
"""How long a fault's recovery waits for the raw readers' channels to connect again."""


@dataclass
class RunResult:
    reports: list[FaultReport]
    log_dir: Path
    seconds: float


def default_log_dir() -> Path:
    """A new folder under /tmp that the `postgres` user can traverse (the stack lives in it)."""
    path = Path(tempfile.mkdtemp(prefix="uoom-chaos-"))
    path.chmod(0o711)
    return path


def stderr_progress(started: float) -> Callable[[str], None]:
    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    return progress


async def run(options: RunOptions, progress: Callable[[str], None] | None = None) -> RunResult:
    """Runs every fault of `options` in turn and returns their figures."""
    started = time.monotonic()
    say = progress or stderr_progress(started)
    log_dir = options.log_dir or default_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        log_dir.chmod(0o711)
    say(f"starting the local stack and 6 role processes (logs in {log_dir})")
    ledger = WriteLedger()
    rng = random.Random()
    reports: list[FaultReport] = []
    async with ChaosCluster(
        log_dir, service_env=options.service_env, keep_stack=options.keep_stack
    ) as cluster:
        say(
            "running: "
            + ", ".join(f"{r.name} {r.address}" for r in cluster.replicas)
            + f"; load {options.write_rate:g} writes/s, {options.read_rate:g} reads/s"
        )
        async with (
            StateReader(
                cluster.database_url,
                cluster.read_model,
                cluster.replicas,
                also_known=lambda: list(ledger.orders),
            ) as state,
            LoadDriver(
                cluster.replicas,
                ledger,
                write_rate=options.write_rate,
                read_rate=options.read_rate,
            ) as load,
        ):
            already_lost: set[tuple[str, int]] = set()
            for name in options.faults:
                report = await _one_fault(
                    name, options, cluster, state, load, ledger, rng, already_lost, started, say
                )
                reports.append(report)
        say("stopping")
    return RunResult(reports, log_dir, time.monotonic() - started)


async def _one_fault(
    name: str,
    options: RunOptions,
    cluster: ChaosCluster,
    state: StateReader,
    load: LoadDriver,
    ledger: WriteLedger,
    rng: random.Random,
    already_lost: set[tuple[str, int]],
    run_started: float,
    say: Callable[[str], None],
) -> FaultReport:
    tally = Tally()
    load.tally = tally
    load.resume_writes()
    say(f"{name}: steady load for {options.steady_seconds:g} s")
    steady = cluster.cpu_census()
    await asyncio.sleep(options.steady_seconds)
    cpu_steady = cpu_census.cores_between(steady, cluster.cpu_census())
    ctx = FaultContext(cluster, options.fault_seconds, rng)
    injected = time.monotonic()
    injected_at = _wall_clock()
    say(f"{name}: injecting for {options.fault_seconds:g} s")
    lifted = await FAULT_FUNCTIONS[name](ctx)
    lifted_at = _wall_clock(time.monotonic() - lifted.at)
    say(f"{name}: lifted ({'; '.join(ctx.notes)}); waiting for agreement")

    if "*" in lifted.reread_components:
        state.forget()
    else:
        state.forget(lifted.reread_components)
        state.forget(orders=lifted.reread_orders)
    healing = cluster.cpu_census()
    quiesce = asyncio.create_task(_quiesce(load, lifted), name="quiesce")
    convergence = await await_convergence(
        state, lifted.at, options.settle_timeout, quiesced=quiesce
    )
    cpu_healing = cpu_census.cores_between(healing, cluster.cpu_census())
    await _finish_recovery(ctx, lifted)
    # Recovered only once every raw reader's channel is connected again: a replica this fault
    # restarted is serving, but a channel to it may still be waiting out its reconnect backoff,
    # and the reads it fails meanwhile are this fault's, not the next one's.
    not_connected = await load.raw_channels_ready(CHANNELS_READY_TIMEOUT_S)
    if not_connected:
        ctx.log(f"raw readers' channel not connected after recovery: {', '.join(not_connected)}")
    with contextlib.suppress(Exception):
        await quiesce
    # Once any restart or repair is over, everything is read again: the final differences.
    state.forget()
    final = await state.snapshot()
    postgres = final.postgres or state.last_postgres
    lost_examples: list[str] = []
    lost_count: int | None = None
    if postgres is not None:
        lost = [
            w
            for w in ledger.lost(postgres.versions())
            if (w.order_id, w.version) not in already_lost
        ]
        already_lost.update((w.order_id, w.version) for w in lost)
        lost_count = len(lost)
        lost_examples = [f"{w.order_id} v{w.version}" for w in lost[:5]]
    if load.retired_orders:
        ctx.log(f"{len(load.retired_orders)} orders retired after a refused write so far")
    say(
        f"{name}: converged in "
        + ("-" if convergence.seconds is None else f"{convergence.seconds:.1f} s")
        + f", {final.total()} final differences"
    )
    return FaultReport(
        fault=name,
        started_at_s=injected - run_started,
        fault_seconds=lifted.at - injected,
        injected_at=injected_at,
        lifted_at=lifted_at,
        writes_acknowledged=tally.writes_acknowledged,
        writes_not_sent=tally.writes_not_sent,
        reads=tally.reads,
        reads_not_sent=tally.reads_not_sent,
        write_errors=dict(tally.write_errors),
        read_errors=dict(tally.read_errors),
        raw_read_errors=dict(tally.raw_read_errors),
        lost_writes=lost_count,
        lost_examples=lost_examples,
        regressions=dict(tally.regressions),
        regressions_by_tier=dict(tally.regressions_by_tier),
        regression_examples={
            kind: [f"{e.order_id} v{e.seen_before}→v{e.answered} ({e.where})" for e in examples]
            for kind, examples in tally.examples.items()
        },
        convergence_s=convergence.seconds,
        agreed_after_s=convergence.agreed_after,
        snapshot_s=convergence.snapshot_seconds,
        final_check_s=final.finished - final.started,
        final_differences=_differences(final),
        difference_examples=final.examples,
        timings_s=dict(ctx.timings),
        notes=ctx.notes,
        orders=0 if postgres is None else len(postgres.summaries),
        cpu_steady=cpu_steady,
        cpu_healing=cpu_healing,
    )


async def _quiesce(load: LoadDriver, lifted: Lifted) -> None:
    """Stops the writes once the fault lifted (after the repair, when it runs under writes)."""
    if lifted.writes_until_recovered and lifted.recovery is not None:
        await asyncio.wait([lifted.recovery], timeout=RECOVERY_TIMEOUT_S)
    load.pause_writes()
    await load.writes_drained()


async def _finish_recovery(ctx: FaultContext, lifted: Lifted) -> None:
    if lifted.recovery is None:
        return
    try:
        async with asyncio.timeout(RECOVERY_TIMEOUT_S):
            await lifted.recovery
    except Exception as error:  # reported, and the next fault runs anyway
        ctx.log(f"recovery failed: {error!r}")


def _wall_clock(seconds_ago: float = 0.0) -> str:
    """HH:MM:SS.mmm UTC, `seconds_ago` before now: what the processes' logs print."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return moment.strftime("%H:%M:%S.%f")[:-3]


def _differences(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    return {name: dict(kinds) for name, kinds in snapshot.differences.items()}
