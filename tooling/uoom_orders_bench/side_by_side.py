"""Two API servers' CPU per status read, measured at the same moments: for changes worth a few %.

``python -m uoom_orders_bench.side_by_side A B [--method get|batch] [--windows 60]``

A and B are each the service's source (a checkout, or its ``server`` folder: a clone of
another revision, or a copy with an experiment in it) or the word ``bare`` (the benchmark's
baseline server). Both run as API replicas on one local stack, loaded at once by the same
number of callers, and each one-second window compares B's CPU per call with A's, read from
the processes' own counters. This machine's speed moves by a third from minute to minute; both
servers feel the same moment, so the ratio of one window varies by about a tenth and the
median of sixty has a standard error of about 1 %, where rounds run one after the other (the
benchmark's) vary by 10-30 %. Runs of the same comparison still differ by about ±4 % (where
the processes land on the cores), so a change is judged on several runs; ``A A`` shows it.
The regime is not the benchmark's saturated one — two servers and their callers share the
cores, and a call costs more CPU in both — so the ratio is B's cost against A's, not a figure
to hold against a target.

Orders are created through A (the relay and projector run in a process of their own, from the
code this command runs), so both replicas' near caches fill from the event topic as they would
in production; the reads are near-cache hits, the path a status read takes most often.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from uoom.orders.v1 import order_service_pb2

from uoom_orders_bench.cpu import cpu_seconds
from uoom_orders_bench.pipeline import NEAR_CACHE
from uoom_orders_bench.runner import prepare_stores
from uoom_orders_bench.targets import (
    PIPELINE_STARTED,
    bare_server_process,
    order_stub,
    pipeline_process,
    replica_environment,
    service_environment,
    service_process,
    start_logged,
    start_serving,
)
from uoom_orders_bench.workload import SERVED_BY, batch_requests, get_requests, seed_orders
from uoom_orders_devstack import LocalStack
from uoom_orders_devstack.processes import ServerProcess

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

BARE = "bare"
_WARM_UP_S = 3.0
_REQUESTS = 4096
_BATCH_SIZE = 10


@dataclass(frozen=True)
class Window:
    """One side's CPU seconds and completed calls in one window."""

    cpu_s: float
    calls: int


@dataclass(frozen=True)
class Comparison:
    """B's CPU per call against A's, window by window."""

    a: list[Window]
    b: list[Window]

    def ratios(self) -> list[float]:
        """B's CPU per call over A's, in each window where both completed calls."""
        return [
            (b.cpu_s / b.calls) / (a.cpu_s / a.calls)
            for a, b in zip(self.a, self.b, strict=True)
            if a.calls and b.calls and a.cpu_s > 0
        ]

    def pooled(self) -> float:
        """B's CPU per call over A's, over every window at once."""
        return _per_call_ms(self.b) / _per_call_ms(self.a)


def _per_call_ms(windows: Sequence[Window]) -> float:
    calls = sum(w.calls for w in windows)
    return 1000 * sum(w.cpu_s for w in windows) / calls if calls else math.nan


def source_folder(given: str) -> Path | None:
    """The folder holding the `uoom_orders` package of `given` (a checkout or its `server`
    folder); None for the bare server."""
    if given == BARE:
        return None
    path = Path(given).resolve()
    for candidate in (path / "server", path):
        if (candidate / "uoom_orders" / "__init__.py").is_file():
            return candidate
    raise SystemExit(f"{given}: neither a checkout nor a server folder (no uoom_orders package)")


def _check_imports_from(folder: Path, env: dict[str, str]) -> None:
    """Fails unless a process with `env` imports the service from `folder` (an installed copy
    earlier on the path would quietly measure the wrong code)."""
    found = subprocess.run(
        [sys.executable, "-c", "import uoom_orders; print(uoom_orders.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(folder):
        raise SystemExit(f"a replica meant to run {folder} imports {found}")


def _with_source(env: dict[str, str], folder: Path) -> dict[str, str]:
    path = [str(folder), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return env | {"PYTHONPATH": os.pathsep.join(path)}


async def _wait_near_cache(
    stub: OrderServiceAsyncStub, ids: Sequence[str], side: str, timeout_s: float = 60.0
) -> None:
    """Waits until the replica answers every order from its near cache (the events reach it
    through the relay and its feed)."""
    deadline = time.monotonic() + timeout_s
    for start in range(0, len(ids), 100):
        request = order_service_pb2.BatchGetOrderStatusRequest(order_ids=ids[start : start + 100])
        while True:
            call = stub.BatchGetOrderStatus(request, timeout=10.0)
            await call
            served_by = dict(await call.trailing_metadata() or ()).get(SERVED_BY)
            if served_by == NEAR_CACHE:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {side}: orders still served by {served_by!r}")
            await asyncio.sleep(0.05)


async def _load(
    stubs: dict[str, OrderServiceAsyncStub],
    call: Callable[[OrderServiceAsyncStub], Callable[..., Awaitable[object]]],
    requests: Sequence[object],
    pids: dict[str, int],
    callers: int,
    windows: int,
) -> dict[str, list[Window]]:
    """`callers` closed loops against each server at once; per window, each server's CPU and
    calls."""
    counts = dict.fromkeys(stubs, 0)
    stop = asyncio.Event()

    async def caller(side: str, start: int) -> None:
        method = call(stubs[side])
        position = start
        while not stop.is_set():
            await method(requests[position % len(requests)], timeout=10.0)
            counts[side] += 1
            position += 1

    rng = random.Random(11)
    # Alternating, so that neither server's callers are all ahead of the other's.
    tasks = [
        asyncio.create_task(caller(side, rng.randrange(len(requests))))
        for _ in range(callers)
        for side in stubs
    ]
    measured: dict[str, list[Window]] = {side: [] for side in stubs}
    try:
        await asyncio.sleep(_WARM_UP_S)
        for _ in range(windows):
            cpu_before = {side: cpu_seconds(pid) for side, pid in pids.items()}
            calls_before = dict(counts)
            await asyncio.sleep(1.0)
            for side, pid in pids.items():
                before, after = cpu_before[side], cpu_seconds(pid)
                if before is None or after is None:
                    raise RuntimeError(f"server {side} exited during the measurement")
                measured[side].append(Window(after - before, counts[side] - calls_before[side]))
    finally:
        stop.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [e for e in done if isinstance(e, BaseException)]
    if errors:
        raise RuntimeError(f"{len(errors)} callers failed; the first: {errors[0]!r}")
    return measured


async def compare(
    a: str, b: str, *, method: str, windows: int, callers: int, orders: int
) -> Comparison:
    """Starts the stack and both servers, seeds, loads both at once; stops everything."""
    folders = {"A": source_folder(a), "B": source_folder(b)}
    if folders["A"] is None:
        raise SystemExit("A must be the service (B may be bare)")
    async with AsyncExitStack() as resources:
        stack = LocalStack()
        resources.callback(stack.stop)
        endpoints = await asyncio.to_thread(stack.start)
        env = service_environment(endpoints.env(), {"RECONCILE_INTERVAL_SECONDS": "0"})
        await prepare_stores(env)
        log_dir = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="uoom-sbs-")))
        pipeline = pipeline_process(env, log_dir)
        await start_logged(resources, pipeline, PIPELINE_STARTED)

        processes: dict[str, ServerProcess] = {}
        addresses: dict[str, str] = {}

        async def start_replica(side: str, folder: Path) -> None:
            replica_env = _with_source(replica_environment(env), folder)
            _check_imports_from(folder, replica_env)
            process, address = service_process(
                replica_env, log_dir, roles=("api",), name=f"replica-{side}"
            )
            await start_serving(resources, process, address)
            processes[side], addresses[side] = process, address

        # Both replicas before the orders: each near cache fills from the event topic.
        for side, folder in folders.items():
            if folder is not None:
                await start_replica(side, folder)
        async with order_stub(addresses["A"]) as stub:
            summaries = await seed_orders(stub, orders)
        if folders["B"] is None:
            orders_file = log_dir / "orders.binpb"
            orders_file.write_bytes(
                order_service_pb2.BatchGetOrderStatusResponse(orders=summaries).SerializeToString()
            )
            bare, addresses["B"] = bare_server_process(orders_file, log_dir)
            await start_serving(resources, bare, addresses["B"])
            processes["B"] = bare
        ids = [summary.order_id for summary in summaries]
        rng = random.Random(7)
        requests: Sequence[object]
        if method == "get":
            requests = get_requests(ids, rng, _REQUESTS)

            def call(stub: OrderServiceAsyncStub) -> Callable[..., Awaitable[object]]:
                return stub.GetOrderStatus

        else:
            requests = batch_requests(ids, rng, _REQUESTS // 2, _BATCH_SIZE)

            def call(stub: OrderServiceAsyncStub) -> Callable[..., Awaitable[object]]:
                return stub.BatchGetOrderStatus

        pids = {side: p.pid for side, p in processes.items() if p.pid is not None}
        for side, folder in folders.items():
            if folder is not None:
                async with order_stub(addresses[side]) as stub:
                    await _wait_near_cache(stub, ids, side)
        # The server whose channel the client made first answers more calls (the client's
        # completions are taken in that order) and so costs a little less per call: about 2 %
        # when A and B are the same code. Each order for half of the windows cancels it.
        measured: dict[str, list[Window]] = {"A": [], "B": []}
        for order, count in ((("A", "B"), (windows + 1) // 2), (("B", "A"), windows // 2)):
            async with AsyncExitStack() as channels:
                stubs = {
                    side: await channels.enter_async_context(order_stub(addresses[side]))
                    for side in order
                }
                for side, windows_of_side in (
                    await _load(stubs, call, requests, pids, callers, count)
                ).items():
                    measured[side] += windows_of_side
    return Comparison(measured["A"], measured["B"])


def render(comparison: Comparison, method: str) -> str:
    """The comparison's lines."""
    ratios = comparison.ratios()
    median = statistics.median(ratios)
    spread = statistics.stdev(ratios) if len(ratios) > 1 else math.nan
    error = spread / math.sqrt(len(ratios)) if len(ratios) > 1 else math.nan
    seconds = len(comparison.a)
    rate_a = sum(w.calls for w in comparison.a) / seconds
    rate_b = sum(w.calls for w in comparison.b) / seconds
    return "\n".join(
        [
            f"{'GetOrderStatus' if method == 'get' else 'BatchGetOrderStatus(10)'}, "
            f"{seconds} windows of 1 s",
            f"CPU per call, B / A: median {median:.3f} of the windows' ratios "
            f"(standard error {error:.3f}, a window's spread {spread:.3f}); "
            f"over all windows {comparison.pooled():.3f}",
            f"A: {_per_call_ms(comparison.a):.3f} ms per call, {rate_a:,.0f} calls/s",
            f"B: {_per_call_ms(comparison.b):.3f} ms per call, {rate_b:,.0f} calls/s",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.side_by_side",
        description="Two API servers loaded at once: B's CPU per status read against A's.",
    )
    parser.add_argument("a", help="the service's source: a checkout or its server folder")
    parser.add_argument("b", help=f"another source, or '{BARE}' for the baseline server")
    parser.add_argument("--method", choices=("get", "batch"), default="get")
    parser.add_argument("--windows", type=int, default=60, help="one-second windows (60)")
    parser.add_argument("--callers", type=int, default=16, help="calls in flight per server")
    parser.add_argument("--orders", type=int, default=1000, help="orders created and read")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one comparison and prints it."""
    args = build_parser().parse_args(argv)
    if args.windows < 2 or args.callers < 1 or args.orders < _BATCH_SIZE:
        raise SystemExit("need --windows ≥ 2, --callers ≥ 1, --orders ≥ 10")
    started = time.monotonic()
    comparison = asyncio.run(
        compare(
            args.a,
            args.b,
            method=args.method,
            windows=args.windows,
            callers=args.callers,
            orders=args.orders,
        )
    )
    print(render(comparison, args.method))
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
