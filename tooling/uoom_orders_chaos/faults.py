"""The faults, one function each: inject, hold for the fault's duration, lift.

Each returns a `Lifted`: when the fault lifted (the clock convergence is measured from) and
the recovery still under way then (a restarted process getting ready, a repair command), which
runs while convergence is measured. What "lifted" means is the operator's action that ends
the fault: a restart issued, a paused server continued, a new endpoint started.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from uoom_orders_chaos.cluster import ChaosCluster, RoleProcess
from uoom_orders_chaos.stale_events import publish_stale_events
from uoom_orders_devstack import MotoDynamoDBServer, PostgresServer, StackStartError, TansuBroker

STALE_EVENTS_PER_SECOND = 50


@dataclass
class FaultContext:
    cluster: ChaosCluster
    seconds: float
    """How long the fault lasts."""
    rng: random.Random
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    """Named durations worth reporting (e.g. how long a restarted role took to be ready)."""

    def log(self, message: str) -> None:
        self.notes.append(message)


@dataclass
class Lifted:
    at: float
    """time.monotonic() when the fault lifted."""
    recovery: asyncio.Task[None] | None = None
    writes_until_recovered: bool = False
    """Writes go on until `recovery` ends (the repair of a lost read model runs under writes)."""
    reread_components: tuple[str, ...] = ()
    """Components whose every order may have changed without PostgreSQL changing ("*": all)."""
    reread_orders: frozenset[str] = frozenset()
    """Orders that may have changed anywhere without PostgreSQL changing."""


Fault = Callable[[FaultContext], Awaitable[Lifted]]


def _recover(ctx: FaultContext, name: str, work: Awaitable[object]) -> asyncio.Task[None]:
    """A task running `work`, recording how long it took under `name` in ctx.timings."""

    async def run() -> None:
        started = time.monotonic()
        try:
            await work
        finally:
            ctx.timings[name] = time.monotonic() - started

    return asyncio.create_task(run(), name=name)


async def _kill_and_restart(ctx: FaultContext, process: RoleProcess) -> Lifted:
    await process.kill()
    ctx.log(f"SIGKILL {process.name}")
    await asyncio.sleep(ctx.seconds)
    lifted = time.monotonic()
    ctx.log(f"restart {process.name}")
    return Lifted(
        lifted,
        _recover(ctx, f"{process.name} ready after restart", process.start()),
        # A restarted replica starts empty: whatever it answers now, it answers anew.
        reread_components=(process.name,) if process.role == "api" else (),
    )


async def kill_api(ctx: FaultContext) -> Lifted:
    return await _kill_and_restart(ctx, ctx.cluster.roles_of("api")[0])


async def kill_relay(ctx: FaultContext) -> Lifted:
    return await _kill_and_restart(ctx, ctx.cluster.roles_of("relay")[0])


async def kill_projector(ctx: FaultContext) -> Lifted:
    return await _kill_and_restart(ctx, ctx.cluster.roles_of("projector")[0])


async def projectors_down(ctx: FaultContext) -> Lifted:
    projectors = ctx.cluster.roles_of("projector")
    await asyncio.gather(*(p.stop() for p in projectors))
    ctx.log("SIGTERM every projector")
    await asyncio.sleep(ctx.seconds)
    lifted = time.monotonic()
    ctx.log("start every projector")
    return Lifted(
        lifted,
        _recover(ctx, "projectors ready", asyncio.gather(*(p.start() for p in projectors))),
    )


async def pause_broker(ctx: FaultContext) -> Lifted:
    # tansu keeps everything in memory: a restart would lose every record. Pause it instead.
    broker = ctx.cluster.stack.kafka
    assert broker is not None
    return await _paused(ctx, broker, "tansu")


async def pause_dynamodb(ctx: FaultContext) -> Lifted:
    endpoint = ctx.cluster.stack.dynamodb
    assert endpoint is not None
    return await _paused(ctx, endpoint, "moto_server")


async def _paused(ctx: FaultContext, server: TansuBroker | MotoDynamoDBServer, name: str) -> Lifted:
    """SIGSTOP for the fault's duration, then SIGCONT: connections stay open, nothing answers."""
    server.pause()
    ctx.log(f"SIGSTOP {name}")
    await asyncio.sleep(ctx.seconds)
    server.resume()
    ctx.log(f"SIGCONT {name}")
    return Lifted(time.monotonic())


async def postgres_crash(ctx: FaultContext) -> Lifted:
    server = ctx.cluster.stack.postgres
    assert server is not None
    await asyncio.to_thread(server.kill)
    ctx.log("PostgreSQL immediate stop (SIGQUIT, as pg_ctl stop -m immediate)")
    await asyncio.sleep(ctx.seconds)
    lifted = time.monotonic()
    ctx.log("PostgreSQL started on the same data directory")
    return Lifted(lifted, _recover(ctx, "PostgreSQL ready", _start_postgres(ctx, server)))


async def _start_postgres(ctx: FaultContext, server: PostgresServer, attempts: int = 3) -> None:
    """Starts PostgreSQL again; a start whose process dies at once is tried again.

    Seen here with gRPC's fork handlers on (see __main__.py): the restarted postmaster died
    with SIGSEGV before writing a log line (exit status -11), i.e. in the forked child before
    exec — not the service's doing. A retry, if any, is reported in the fault's notes.
    """
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.to_thread(server.start)
            return
        except StackStartError as error:
            first_line = str(error).splitlines()[0]
            ctx.log(f"PostgreSQL start attempt {attempt} failed: {first_line}")
            if attempt == attempts:
                raise


# What a projector logs at the end of a reconciliation pass (projector/reconcile/schedule.py).
RECONCILED_LINE = '"message": "reconciliation: '
SELF_HEAL_TIMEOUT_S = 120.0


async def dynamodb_lost(ctx: FaultContext) -> Lifted:
    """The operator brings back an empty endpoint and creates the tables; the service heals
    itself: the projectors' writes succeed again, which brings a reconciliation walk forward
    in one of them (writes go on meanwhile)."""
    cluster = ctx.cluster
    endpoint = cluster.stack.dynamodb
    assert endpoint is not None
    await asyncio.to_thread(endpoint.kill)
    ctx.log("SIGKILL moto (every table and item gone)")
    await asyncio.sleep(ctx.seconds)
    lifted = time.monotonic()
    projectors = [p for p in cluster.roles.values() if p.role == "projector"]
    offsets = {p.name: p.log_offset() for p in projectors}

    async def rebuild() -> None:
        started = time.monotonic()
        await asyncio.to_thread(endpoint.start)
        ctx.timings["new endpoint answering"] = time.monotonic() - started
        await cluster.create_tables()
        ctx.timings["new endpoint with tables"] = time.monotonic() - started
        ctx.log("empty moto on the same port, tables created; the projectors heal the rest")
        waits = [
            asyncio.create_task(
                p.wait_logged(RECONCILED_LINE, offsets[p.name], SELF_HEAL_TIMEOUT_S)
            )
            for p in projectors
        ]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            await cancel_all(waits)
        ctx.timings["reconciliation pass done"] = time.monotonic() - started
        ctx.log("a projector's reconciliation pass ended")

    return Lifted(
        lifted,
        _recover(ctx, "read model rebuilt", rebuild()),
        writes_until_recovered=True,
        reread_components=("*",),
    )


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def stale_events(ctx: FaultContext) -> Lifted:
    count = int(ctx.seconds * STALE_EVENTS_PER_SECOND)
    published = await publish_stale_events(ctx.cluster, count, ctx.seconds, ctx.rng)
    ctx.log(
        f"published {published.old} old and {published.duplicate} duplicate events "
        f"straight to {ctx.cluster.topic}"
    )
    return Lifted(time.monotonic(), reread_orders=published.order_ids)


FAULT_FUNCTIONS: dict[str, Fault] = {
    "kill-api": kill_api,
    "kill-relay": kill_relay,
    "kill-projector": kill_projector,
    "pause-broker": pause_broker,
    "pause-dynamodb": pause_dynamodb,
    "projectors-down": projectors_down,
    "postgres-crash": postgres_crash,
    "dynamodb-lost": dynamodb_lost,
    "stale-events": stale_events,
}
