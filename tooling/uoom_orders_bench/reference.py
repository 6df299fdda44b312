"""The reference write-up's performance table, reproduced in one run, plus latency per tier.

`python -m uoom_orders_bench.reference` starts the local stack, the relay and projector in
a process of their own, and four API processes that differ only in READ_TIERS:

- "postgres"   READ_TIERS=none: the reference's "before" path, every read from PostgreSQL;
- "dynamodb"   READ_TIERS=dynamodb: the DynamoDB read model (moto here), then PostgreSQL;
- "dax"        READ_TIERS=dax: the real amazon-dax-client against the local DAX-protocol
               endpoint (its item cache, an hour here so that every read is a cache hit),
               then PostgreSQL;
- "near-cache" the default tiers: near cache, then DynamoDB, then PostgreSQL.

It seeds orders, waits until each process's tier holds them, then in each round measures
GetOrderStatus and BatchGetOrderStatus(10) at one call in flight on every process
(interleaved, so noise hits all alike), checking from `x-served-by` which tier answered, and
the DAX client's thread-pool hop in this process (dax_hop.py). Finally a steady mixed workload
on the near-cache process gives the hit rate. Figures are medians over rounds. The reference's
figures are printed beside ours for comparison; they come from another system (TypeScript,
real DynamoDB + DAX, unknown hardware). A local DAX emulator says nothing of a real cluster's
latency: the "dax" row is this client and this endpoint on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders.config import Settings
from uoom_orders.dynamodb.tables import TableNames
from uoom_orders_bench import load
from uoom_orders_bench.dax_hop import DaxHop
from uoom_orders_bench.runner import prepare_stores
from uoom_orders_bench.targets import (
    PIPELINE_STARTED,
    order_stub,
    pipeline_process,
    replica_environment,
    service_environment,
    service_process,
    start_logged,
    start_serving,
)
from uoom_orders_bench.workload import CALL_TIMEOUT_S, create_request, seed_orders
from uoom_orders_devstack import LocalStack

# In this order: DAX reads through to DynamoDB, so the "dynamodb" process is seen to answer
# every order before the "dax" one is asked (an absence DAX read would stay cached).
TIERS = {
    "postgres": "none",
    "dynamodb": "dynamodb",
    "dax": "dax",
    "near-cache": "near-cache,dynamodb",
}
# Longer than a run: the "dax" row measures item-cache hits, not moto behind them.
DAX_ITEM_TTL_SECONDS = 3600.0
# The reference's table: (operation, before, after).
REFERENCE = [
    ("Order Status Query (P95)", "85 ms", "2.1 ms"),
    ("Order Status Query (P99)", "120 ms", "4.2 ms"),
    ("Batch Status Query (10 orders)", "180 ms", "8 ms"),
    ("Cache Hit Rate", "N/A", "94.2 %"),
]
_NEXT = {
    order_pb2.ORDER_STATUS_PENDING: order_pb2.ORDER_STATUS_CONFIRMED,
    order_pb2.ORDER_STATUS_CONFIRMED: order_pb2.ORDER_STATUS_PREPARING,
    order_pb2.ORDER_STATUS_PREPARING: order_pb2.ORDER_STATUS_READY_FOR_PICKUP,
    order_pb2.ORDER_STATUS_READY_FOR_PICKUP: order_pb2.ORDER_STATUS_OUT_FOR_DELIVERY,
    order_pb2.ORDER_STATUS_OUT_FOR_DELIVERY: order_pb2.ORDER_STATUS_DELIVERED,
}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _served_by(address: str, order_ids: Sequence[str]) -> Counter[str]:
    tiers: Counter[str] = Counter()
    async with order_stub(address) as stub:
        for order_id in order_ids:
            call = stub.GetOrderStatus(
                order_service_pb2.GetOrderStatusRequest(order_id=order_id), timeout=CALL_TIMEOUT_S
            )
            await call
            metadata = dict(await call.trailing_metadata() or ())
            tiers[str(metadata.get("x-served-by"))] += 1
    return tiers


async def _wait_tier(address: str, tier: str, order_ids: Sequence[str], within: float) -> None:
    """Until every order is answered by `tier` (projection and near-cache fill are eventual)."""
    deadline = time.monotonic() + within
    pending = list(order_ids)
    while pending:
        tiers = await _served_by(address, pending)
        if tiers == Counter({tier: len(pending)}):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address}: after {within:.0f}s, still served by {dict(tiers)}")
        await asyncio.sleep(0.2)


async def _closed(address: str, requests: Sequence[object], method: str) -> dict[str, float]:
    async with order_stub(address) as stub:
        call = getattr(stub, method)

        async def operation(index: int) -> str:
            await call(requests[index % len(requests)], timeout=CALL_TIMEOUT_S)
            return "call"

        await load.warm_up(operation, 100)
        result = await load.closed_loop(operation, len(requests))
    return result.figures()


async def _hit_rate(
    address: str, order_ids: list[str], seconds: float, write_rate: float
) -> dict[str, float]:
    """Reads of random orders (four callers) while orders are created and moved along at
    `write_rate`; the share of reads not answered by PostgreSQL."""
    tiers: Counter[str] = Counter()
    status = dict.fromkeys(order_ids, order_pb2.ORDER_STATUS_PENDING)
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    async with order_stub(address) as stub:

        async def reader() -> None:
            while time.monotonic() < deadline:
                order_id = rng.choice(order_ids)
                call = stub.GetOrderStatus(
                    order_service_pb2.GetOrderStatusRequest(order_id=order_id),
                    timeout=CALL_TIMEOUT_S,
                )
                await call
                tiers[str(dict(await call.trailing_metadata() or ()).get("x-served-by"))] += 1

        async def writer() -> None:
            while time.monotonic() < deadline:
                if rng.random() < 0.2:
                    created = await stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)
                    order_ids.append(created.order.order_id)
                    status[created.order.order_id] = created.order.status
                else:
                    order_id = rng.choice(order_ids)
                    following = _NEXT.get(status[order_id])
                    if following is not None:
                        await stub.UpdateOrderStatus(
                            order_service_pb2.UpdateOrderStatusRequest(
                                request_id=str(uuid.uuid4()),
                                order_id=order_id,
                                status=following,
                            ),
                            timeout=CALL_TIMEOUT_S,
                        )
                        status[order_id] = following
                await asyncio.sleep(1 / write_rate)

        await asyncio.gather(writer(), *(reader() for _ in range(4)))
    reads = sum(tiers.values())
    return {
        "reads": reads,
        "hit_rate_pct": 100 * (reads - tiers["postgres"]) / reads if reads else float("nan"),
        **{f"served_by_{tier}_pct": 100 * n / reads for tier, n in tiers.items()},
    }


def _median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


async def run(rounds: int, orders: int, calls: int, mixed_seconds: float) -> None:
    async with AsyncExitStack() as resources:
        log_dir = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="uoom-ref-")))
        stack = LocalStack(dax_item_ttl_seconds=DAX_ITEM_TTL_SECONDS)
        resources.callback(stack.stop)
        endpoints = await asyncio.to_thread(stack.start)
        env = service_environment(endpoints.env(), {"READ_TIER_TIMEOUT_MS": "1000"})
        # amazon-dax-client (here for the hop) signs with the (dummy) credentials it finds here.
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        await prepare_stores(env)
        background = pipeline_process(replica_environment(env), log_dir)
        await start_logged(resources, background, PIPELINE_STARTED)
        addresses: dict[str, str] = {}
        for name, tiers in TIERS.items():
            tier_env = replica_environment(env) | {"READ_TIERS": tiers}
            process, address = service_process(tier_env, log_dir, roles=("api",), name=name)
            await start_serving(resources, process, address)
            addresses[name] = address
        _say(f"stack, pipeline and {len(addresses)} API processes up: {addresses}")

        async with order_stub(addresses["postgres"]) as stub:
            seeded = [s.order_id for s in await seed_orders(stub, orders)]
        for name, address in addresses.items():
            await _wait_tier(address, name, seeded, within=120)
        _say(f"seeded {len(seeded)} orders; each process answers them from its own tier")

        rng = random.Random(1)
        gets = [
            order_service_pb2.GetOrderStatusRequest(order_id=rng.choice(seeded))
            for _ in range(calls)
        ]
        batches = [
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=rng.sample(seeded, 10))
            for _ in range(calls // 2)
        ]
        figures: dict[str, dict[str, list[dict[str, float]]]] = {
            name: {"get": [], "batch": []} for name in addresses
        }
        hop: dict[str, list[dict[str, float]]] = {"direct": [], "async": []}
        status_table = TableNames.for_prefix(Settings.from_env(env).dynamodb_table_prefix).status
        assert endpoints.dax_endpoint is not None
        dax = await resources.enter_async_context(
            DaxHop(endpoints.dax_endpoint, endpoints.aws_region, status_table, seeded)
        )
        for number in range(rounds):
            shift = number % len(addresses)
            order = list(addresses)[shift:] + list(addresses)[:shift]
            for name in order:
                figures[name]["get"].append(await _closed(addresses[name], gets, "GetOrderStatus"))
                figures[name]["batch"].append(
                    await _closed(addresses[name], batches, "BatchGetOrderStatus")
                )
            ways = await dax.measure(calls, adapter_first=number % 2 == 1)
            for way, way_figures in ways.items():
                hop[way].append(way_figures)
            _say(f"round {number + 1}/{rounds} done")
        mixed = await _hit_rate(addresses["near-cache"], list(seeded), mixed_seconds, 25.0)

    print(f"\ncommand: python -m uoom_orders_bench.reference {' '.join(sys.argv[1:])}")
    print(f"medians of {rounds} rounds of {calls} calls, one in flight, gRPC on loopback\n")
    print(
        f"{'tier':<12} {'GetOrderStatus p50/p95/p99 ms':<34} BatchGetOrderStatus(10) p50/p95/p99 ms"
    )
    for name in addresses:
        print(f"{name:<12} {_triple(figures[name]['get']):<34} {_triple(figures[name]['batch'])}")
    before_get, after_get = figures["postgres"]["get"], figures["near-cache"]["get"]
    before_batch, after_batch = figures["postgres"]["batch"], figures["near-cache"]["batch"]
    measured = [
        (_median(before_get, "p95_ms"), _median(after_get, "p95_ms")),
        (_median(before_get, "p99_ms"), _median(after_get, "p99_ms")),
        (_median(before_batch, "p95_ms"), _median(after_batch, "p95_ms")),
    ]
    print("\nThe reference's table: its figures, and ours in the same run (before = PostgreSQL")
    print("only, after = near cache → DynamoDB → PostgreSQL; the batch row is p95):\n")
    header = ("operation", "ref. before", "ref. after", "before", "after", "reduction")
    print(f"{header[0]:<32}" + "".join(f"{h:>12}" for h in header[1:]))
    for (operation, ref_before, ref_after), (before, after) in zip(
        REFERENCE, measured, strict=False
    ):
        cells = (ref_before, ref_after, f"{before:.3f} ms", f"{after:.3f} ms")
        reduction = f"{100 * (1 - after / before):.1f} %"
        print(f"{operation:<32}" + "".join(f"{c:>12}" for c in (*cells, reduction)))
    hit = f"{mixed['hit_rate_pct']:.2f} %"
    print(f"{'Cache Hit Rate':<32}" + "".join(f"{c:>12}" for c in ("N/A", "94.2 %", "N/A", hit)))
    shares = ", ".join(
        f"{key.removeprefix('served_by_').removesuffix('_pct')} {value:.2f} %"
        for key, value in mixed.items()
        if key.startswith("served_by_")
    )
    print(
        f"\nhit rate: {int(mixed['reads'])} reads by 4 callers while 25 writes/s create and move"
        f" orders; served by {shares}"
    )
    _print_hop(hop, calls)


def _print_hop(hop: dict[str, list[dict[str, float]]], calls: int) -> None:
    print(
        f"\nThe DAX client's thread-pool hop: {calls} GetItems per round through the real client"
        "\n(item-cache hits on the local endpoint), one in flight, in this process, no gRPC:\n"
    )
    print(f"{'way':<44} GetItem p50/p95/p99 ms")
    print(f"{'directly on a thread (synchronous caller)':<44} {_triple(hop['direct'])}")
    print(f"{'through AsyncDaxClient (the service)':<44} {_triple(hop['async'])}")
    costs = " / ".join(
        f"{_median(hop['async'], key) - _median(hop['direct'], key):+.3f}"
        for key in ("p50_ms", "p95_ms", "p99_ms")
    )
    print(f"{'the hop (difference)':<44} {costs}")
    print(
        "\nA local emulator says nothing of a real DAX cluster's latency: the dax row is this"
        "\nclient and this endpoint (Python, asyncio) on loopback, with every read a cache hit."
    )


def _triple(rounds: list[dict[str, float]]) -> str:
    return " / ".join(f"{_median(rounds, key):.3f}" for key in ("p50_ms", "p95_ms", "p99_ms"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--calls", type=int, default=1000, help="calls per measurement")
    parser.add_argument("--mixed-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    asyncio.run(run(args.rounds, args.orders, args.calls, args.mixed_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
