"""The reference's cost table, from capacity measured here: `python -m uoom_orders_bench.cost`.

The reference estimates $76.50 a month for 10 M orders: 30 M read requests ($7.50), 10 M write
requests ($12.50), 10 GB ($2.50) and one dax.t3.small node ($54), at its prices (on-demand
$0.25 per million reads, $1.25 per million writes, $0.25 per GB-month, $0.074 per node-hour).

This command measures what an order costs this service instead. It starts the local stack, the
relay and projector in a process of their own and one API process (the default read tiers:
near cache, DynamoDB, PostgreSQL), each serving its metrics, and drives `--orders` order
lifecycles: CreateOrder, then the five status changes to DELIVERED, with `--reads-per-order`
GetOrderStatus (3: the reference's 30 M reads for 10 M orders) at random points of the
lifecycle, `--step-pause` apart (a real order spends minutes per step; what matters here is
that its events have reached the near cache, as they would have). Once the read model holds
every final version it reads, from both processes' metrics, the capacity units DynamoDB
reported for the service's calls (`dynamodb_consumed_capacity_units_total`) and the refused
conditional writes (`dynamodb_conditional_check_failed_total`), per operation and table, then
runs one reconciliation pass (dry run: it reads what a pass reads) and counts its units too.

Two columns of ours:
- as the endpoint reported: on the local stack that is moto, which reports fixed units (PutItem
  1, GetItem 0.5, one per BatchGetItem key, one per Query or Scan page) whatever the item's size,
  and no index writes. Against real DynamoDB (`--dynamodb`) this column is the bill.
- by DynamoDB's rules: the same calls priced as DynamoDB bills them, from the sizes of the items
  as written (item_size.py): a write is one unit per KB, and each of a table's two global
  secondary indexes (both project ALL) is written too — once for a new item, twice (delete and
  put) when the index's sort key `updatedAt` changes, which every status change does; a refused
  conditional write is charged the item's units. Reads are taken as reported (moto's read units
  equal DynamoDB's for items under 4 KB, except eventually consistent BatchGetItem and Query,
  which moto overstates).

Storage counts both tables and both indexes of each (ALL projection), 100 bytes of overhead per
entry, for the orders the TTL keeps (ORDER_CACHE_TTL_HOURS of them). Reconciliation is priced
apart: a pass every RECONCILE_INTERVAL_SECONDS reads the orders changed within the TTL (the
ones the tables keep) and scans both tables.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders_bench.item_size import item_size, read_units, write_units
from uoom_orders_bench.pipeline import ReadModelTable, watching
from uoom_orders_bench.process_metrics import Samples, parse, with_metrics_port
from uoom_orders_bench.runner import _read_model_table, prepare_stores
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
from uoom_orders_bench.workload import (
    CALL_TIMEOUT_S,
    LIFECYCLE,
    NEXT_STATUS,
    SERVED_BY,
    create_request,
)
from uoom_orders_devstack import LocalStack

HOURS_PER_MONTH = 730
INDEXES_PER_TABLE = 2  # CustomerStatusIndex and RestaurantStatusIndex, both projecting ALL
TABLES = ("order-status", "order-details")
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan")
WRITE_OPERATIONS = ("PutItem", "DeleteItem")
_CONSUMED = "dynamodb_consumed_capacity_units_total"
_REFUSED = "dynamodb_conditional_check_failed_total"


@dataclass(frozen=True)
class Prices:
    """On-demand prices (the reference's by default)."""

    read_per_million: float = 0.25
    write_per_million: float = 1.25
    storage_gb_month: float = 0.25
    dax_node_hour: float = 0.074

    @property
    def dax_month(self) -> float:
        """One DAX node for a month."""
        return self.dax_node_hour * HOURS_PER_MONTH


@dataclass(frozen=True)
class Reference:
    """The reference's monthly estimate for 10 M orders."""

    orders: float = 10e6
    reads: float = 30e6
    writes: float = 10e6
    storage_gb: float = 10.0
    dax: float = 54.00
    total: float = 76.50


@dataclass
class Measured:
    """What the run measured, per operation and table, in both service processes."""

    orders: int = 0
    consumed: dict[tuple[str, str], float] = field(default_factory=dict)
    refused: dict[tuple[str, str], float] = field(default_factory=dict)
    served_by: Counter[str] = field(default_factory=Counter)
    sizes: dict[str, int] = field(default_factory=dict)
    reconcile_consumed: dict[tuple[str, str], float] = field(default_factory=dict)
    reconcile_checked: int = 0
    reconcile_scanned: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def units(self, operations: Sequence[str], source: str = "lifecycle") -> float:
        """Units reported for `operations`, all tables (lifecycle or reconciliation)."""
        table = self.consumed if source == "lifecycle" else self.reconcile_consumed
        return sum(v for (operation, _), v in table.items() if operation in operations)


def _by_operation_and_table(samples: Samples, name: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            as_dict = dict(labels)
            key = (as_dict.get("operation", ""), as_dict.get("table", ""))
            out[key] = out.get(key, 0.0) + value
    return out


def _minus(
    after: Mapping[tuple[str, str], float], before: Mapping[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def _add(into: dict[tuple[str, str], float], more: Mapping[tuple[str, str], float]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + value


async def _lifecycle(
    stub: Any,
    rng: random.Random,
    reads: int,
    pause_s: float,
    measured: Measured,
) -> tuple[str, int] | None:
    """One order from CreateOrder to DELIVERED with `reads` GetOrderStatus at random steps;
    returns (order id, final version), or None when a call failed."""
    import grpc

    read_after = Counter(rng.choices(range(len(LIFECYCLE)), k=reads))
    try:
        order = (await stub.CreateOrder(create_request(), timeout=CALL_TIMEOUT_S)).order
        for step in range(len(LIFECYCLE)):
            if step:
                order = (
                    await stub.UpdateOrderStatus(
                        order_service_pb2.UpdateOrderStatusRequest(
                            request_id=str(uuid.uuid4()),
                            order_id=order.order_id,
                            status=NEXT_STATUS[order.status],
                            expected_version=order.version,
                        ),
                        timeout=CALL_TIMEOUT_S,
                    )
                ).order
            await asyncio.sleep(pause_s)
            for _ in range(read_after[step]):
                call = stub.GetOrderStatus(
                    order_service_pb2.GetOrderStatusRequest(order_id=order.order_id),
                    timeout=CALL_TIMEOUT_S,
                )
                await call
                metadata = await call.trailing_metadata()
                tier = next((str(v) for k, v in (metadata or ()) if k == SERVED_BY), "unknown")
                measured.served_by[tier] += 1
    except grpc.aio.AioRpcError as error:
        code = error.code()
        measured.errors[code.name if code is not None else "UNKNOWN"] += 1
        return None
    assert order.status == order_pb2.ORDER_STATUS_DELIVERED
    return order.order_id, order.version


async def _drive(
    address: str, orders: int, reads: int, pause_s: float, concurrency: int, measured: Measured
) -> list[tuple[str, int]]:
    rng = random.Random(7)
    remaining = iter(range(orders))
    finals: list[tuple[str, int]] = []
    async with order_stub(address) as stub:

        async def worker() -> None:
            for _ in remaining:
                final = await _lifecycle(stub, rng, reads, pause_s, measured)
                if final is not None:
                    finals.append(final)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, orders)))))
    return finals


async def _projected(table: ReadModelTable, finals: Sequence[tuple[str, int]]) -> int:
    """Waits until the read model holds every final version; returns how many did not arrive."""
    async with watching(table, 120.0, 0.2) as watcher:
        since = time.perf_counter_ns()
        seen = await asyncio.gather(*(watcher.expect(i, v, since) for i, v in finals))
    return sum(1 for s in seen if s is None)


async def _item_sizes(
    table: ReadModelTable, prefix: str, order_ids: Sequence[str]
) -> dict[str, int]:
    """The median size (DynamoDB's rules) of the final items of some orders, per table."""
    sizes: dict[str, list[int]] = {name: [] for name in TABLES}
    async with table.client() as client:
        for order_id in order_ids[:20]:
            for name in TABLES:
                reply = await client.get_item(
                    TableName=f"{prefix}{name}", Key={"orderId": {"S": order_id}}
                )
                if "Item" in reply:
                    sizes[name].append(item_size(reply["Item"]))
    return {name: int(statistics.median(values)) for name, values in sizes.items() if values}


async def _reconcile_pass(env: Mapping[str, str], measured: Measured) -> None:
    """One reconciliation pass (dry run: every read, no write), in this process, counted."""
    import aioboto3
    import asyncpg

    from uoom_orders.config import Settings
    from uoom_orders.dynamodb.client import dynamodb_client
    from uoom_orders.projector import Reconciler

    settings = Settings.from_env(env)
    session = aioboto3.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=settings.aws_region,
    )
    before = _by_operation_and_table(parse(generate_latest(REGISTRY).decode()), _CONSUMED)
    async with (
        dynamodb_client(
            region=settings.aws_region, endpoint=settings.dynamodb_endpoint, session=session
        ) as ddb,
        asyncpg.create_pool(settings.database_url, min_size=1, max_size=4) as pool,
    ):
        reconciler = Reconciler(
            pool, ddb, settings.dynamodb_table_prefix, ttl_hours=settings.order_cache_ttl_hours
        )
        report = await reconciler.run(dry_run=True)
    after = _by_operation_and_table(parse(generate_latest(REGISTRY).decode()), _CONSUMED)
    measured.reconcile_consumed = _minus(after, before)
    measured.reconcile_checked = report.checked
    measured.reconcile_scanned = report.scanned


async def measure(
    orders: int, reads: int, pause_s: float, concurrency: int, dynamodb: str | None
) -> tuple[Measured, dict[str, str]]:
    """Runs the lifecycles on a fresh local stack; returns what was measured and the env."""
    measured = Measured()
    async with AsyncExitStack() as resources:
        log_dir = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="uoom-cost-")))
        stack = LocalStack(dynamodb_endpoint=dynamodb)
        resources.callback(stack.stop)
        endpoints = await asyncio.to_thread(stack.start)
        # Reconciliation is measured apart, once; the tier timeout is above moto's tails.
        env = service_environment(
            endpoints.env(), {"READ_TIER_TIMEOUT_MS": "1000", "RECONCILE_INTERVAL_SECONDS": "0"}
        )
        await prepare_stores(env)
        pipeline_env, pipeline_metrics = with_metrics_port(replica_environment(env), "pipeline")
        background = pipeline_process(pipeline_env, log_dir)
        await start_logged(resources, background, PIPELINE_STARTED)
        api_env, api_metrics = with_metrics_port(env, "api")
        api, address = service_process(api_env, log_dir, roles=("api",), name="api")
        await start_serving(resources, api, address)
        endpoints_ = (pipeline_metrics, api_metrics)
        before = [await e.scrape() for e in endpoints_]
        _say(f"{orders} order lifecycles, {reads} reads each, {concurrency} at a time")
        started = time.monotonic()
        finals = await _drive(address, orders, reads, pause_s, concurrency, measured)
        read_model = _read_model_table(env)
        assert read_model is not None
        missing = await _projected(read_model, finals)
        _say(
            f"done in {time.monotonic() - started:.1f} s; {len(finals)} orders delivered, "
            f"{missing} final versions not in the read model"
        )
        # The write-backs and projector writes still in flight have settled with the read model.
        await asyncio.sleep(1.0)
        after = [await e.scrape() for e in endpoints_]
        measured.orders = len(finals)
        for earlier, later in zip(before, after, strict=True):
            _add(
                measured.consumed,
                _minus(
                    _by_operation_and_table(later, _CONSUMED),
                    _by_operation_and_table(earlier, _CONSUMED),
                ),
            )
            _add(
                measured.refused,
                _minus(
                    _by_operation_and_table(later, _REFUSED),
                    _by_operation_and_table(earlier, _REFUSED),
                ),
            )
        prefix = read_model.table.removesuffix(TABLES[0])
        measured.sizes = await _item_sizes(read_model, prefix, [i for i, _ in finals])
        await _reconcile_pass(env, measured)
        return measured, dict(env)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- pricing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerOrder:
    """Request units per order lifecycle."""

    reads: float
    writes: float


def as_reported(measured: Measured) -> PerOrder:
    """Units per order as the endpoint reported them (refused writes report none)."""
    orders = max(measured.orders, 1)
    return PerOrder(
        measured.units(READ_OPERATIONS) / orders, measured.units(WRITE_OPERATIONS) / orders
    )


def by_rules(measured: Measured) -> PerOrder:
    """Units per order priced by DynamoDB's rules from the item sizes.

    Puts per table are the reported PutItem units (moto reports 1 per put). Each order's first
    put inserts into both indexes; every later put changes `updatedAt`, the indexes' sort key:
    a delete and an insert in each. A refused conditional write costs the item's units.
    """
    orders = max(measured.orders, 1)
    writes = 0.0
    for table in TABLES:
        units = write_units(measured.sizes.get(table, 0))
        puts = measured.consumed.get(("PutItem", table), 0.0)
        inserts = min(puts, float(measured.orders))
        index_writes = INDEXES_PER_TABLE * (inserts + 2 * (puts - inserts))
        writes += puts * units + index_writes * units
        writes += sum(v for (_, t), v in measured.refused.items() if t == table) * units
        writes += measured.consumed.get(("DeleteItem", table), 0.0) * units
    return PerOrder(measured.units(READ_OPERATIONS) / orders, writes / orders)


def storage_gb(measured: Measured, orders_kept: float) -> float:
    """GB held for `orders_kept` orders: both tables and their indexes, with overhead."""
    per_order = sum(
        (measured.sizes.get(table, 0) + 100) * (1 + INDEXES_PER_TABLE) for table in TABLES
    )
    return orders_kept * per_order / 1024**3


def reconcile_units_per_order(measured: Measured, rules: bool, scan_every: int = 1) -> float:
    """Read units a pass spends on average per order PostgreSQL holds: the walk every pass,
    the scan every `scan_every`-th (RECONCILE_SCAN_EVERY_PASSES)."""
    checked = max(measured.reconcile_checked, 1)
    if not rules:
        walk = measured.units([op for op in READ_OPERATIONS if op != "Scan"], "reconcile")
        scan = measured.units(["Scan"], "reconcile")
        return (walk + scan / scan_every) / checked
    # Eventually consistent BatchGetItem: half a unit per item under 4 KB, each table; the scan
    # reads whole items (a projection does not lower the cost), eventually consistent too.
    keys = sum(read_units(measured.sizes.get(t, 0), consistent=False) for t in TABLES)
    scanned = sum(measured.sizes.get(t, 0) for t in TABLES) / 4096 / 2
    return keys + scanned / scan_every


def _money(value: float) -> str:
    return f"${value:,.2f}" if math.isfinite(value) else "n/a"


def render(
    measured: Measured,
    *,
    prices: Prices,
    orders_per_month: float,
    reads_per_order: int,
    ttl_hours: float,
    reconcile_interval_s: float,
    reconcile_scan_every: int = 1,
) -> str:
    """The table: the reference's figures beside ours, with and without a DAX node."""
    ref = Reference()
    reported, rules = as_reported(measured), by_rules(measured)
    kept = orders_per_month * min(1.0, ttl_hours / HOURS_PER_MONTH)
    month = orders_per_month / 1e6

    def dollars(per_order: PerOrder) -> tuple[float, float, float]:
        return (
            month * per_order.reads * prices.read_per_million,
            month * per_order.writes * prices.write_per_million,
            storage_gb(measured, kept) * prices.storage_gb_month,
        )

    ref_reads = ref.reads / 1e6 * prices.read_per_million
    ref_writes = ref.writes / 1e6 * prices.write_per_million
    ref_storage = ref.storage_gb * prices.storage_gb_month
    ours = {"reported": dollars(reported), "rules": dollars(rules)}
    refused = sum(measured.refused.values()) / max(measured.orders, 1)
    gb = storage_gb(measured, kept)
    passes = HOURS_PER_MONTH * 3600 / reconcile_interval_s if reconcile_interval_s > 0 else 0.0
    reconcile = {
        name: reconcile_units_per_order(measured, name == "rules", reconcile_scan_every)
        for name in ("reported", "rules")
    }
    # A pass walks the orders changed within the TTL (those the tables keep); every Nth scans.
    reconcile_cost = {
        name: passes * kept / 1e6 * units * prices.read_per_million
        for name, units in reconcile.items()
    }
    rows: list[tuple[str, str, str, str]] = [
        (
            "read request units per order",
            f"{ref.reads / ref.orders:.2f}",
            f"{reported.reads:.3f}",
            f"{rules.reads:.3f}",
        ),
        (
            "write request units per order",
            f"{ref.writes / ref.orders:.2f}",
            f"{reported.writes:.2f}",
            f"{rules.writes:.2f}",
        ),
        (
            "  of which refused conditional writes",
            "-",
            f"({refused:.2f}, not reported)",
            f"{refused:.2f}",
        ),
        (
            f"DynamoDB reads (${prices.read_per_million:g}/M)",
            _money(ref_reads),
            _money(ours["reported"][0]),
            _money(ours["rules"][0]),
        ),
        (
            f"DynamoDB writes (${prices.write_per_million:g}/M)",
            _money(ref_writes),
            _money(ours["reported"][1]),
            _money(ours["rules"][1]),
        ),
        (
            f"storage (${prices.storage_gb_month:g}/GB-month)",
            f"{_money(ref_storage)} ({ref.storage_gb:g} GB)",
            f"{_money(ours['reported'][2])} ({gb:.2f} GB)",
            f"{_money(ours['rules'][2])} ({gb:.2f} GB)",
        ),
        (
            f"one DAX node (${prices.dax_node_hour:g}/h)",
            _money(ref.dax),
            _money(prices.dax_month),
            _money(prices.dax_month),
        ),
        (
            "total with one DAX node",
            _money(ref.total),
            _money(sum(ours["reported"]) + prices.dax_month),
            _money(sum(ours["rules"]) + prices.dax_month),
        ),
        ("total without DAX", "-", _money(sum(ours["reported"])), _money(sum(ours["rules"]))),
        (
            f"reconciliation: read units per order, per pass (scan every {reconcile_scan_every})",
            "-",
            f"{reconcile['reported']:.2f}",
            f"{reconcile['rules']:.2f}",
        ),
        (
            f"reconciliation every {reconcile_interval_s:g} s over the {kept / 1e6:.2f} M orders "
            "the TTL keeps",
            "-",
            _money(reconcile_cost["reported"]),
            _money(reconcile_cost["rules"]),
        ),
    ]
    header = ("per month, 10 M orders", "reference", "ours: as reported", "ours: DynamoDB rules")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    reads = sum(measured.served_by.values())
    shares = ", ".join(
        f"{tier} {100 * n / reads:.1f} %" for tier, n in measured.served_by.most_common()
    )
    sizes = ", ".join(f"{t} {s} B" for t, s in measured.sizes.items())
    per_op = ", ".join(
        f"{op} {table} {v / max(measured.orders, 1):.2f}"
        for (op, table), v in sorted(measured.consumed.items())
    )
    notes = [
        "",
        f"measured: {measured.orders} lifecycles (create + 5 status changes), {reads_per_order} "
        f"GetOrderStatus each; reads served by {shares or 'none'}; errors {dict(measured.errors)}",
        f"units reported per order, by operation and table: {per_op or 'none'}",
        f"item sizes (DynamoDB's rules, median of final items): {sizes or 'n/a'}; storage for "
        f"{kept / 1e6:.2f} M orders kept by a {ttl_hours:g} h TTL",
        f"reconciliation pass (dry run): {measured.reconcile_checked} orders checked, "
        f"{measured.reconcile_scanned} items scanned; units "
        + ", ".join(
            f"{op} {t} {v:.0f}" for (op, t), v in sorted(measured.reconcile_consumed.items())
        ),
        "the reference's writes are one request per order; each order here is 6 events, each "
        "written to two tables with two indexes each.",
        "DAX can only lower the read line (its hits consume no read units); reads that reach "
        "DynamoDB are the near cache's misses.",
        "reconciliation reads, at every pass, the orders changed within the TTL (older orders' "
        "items have expired, as they should: a pass does not write them again) and scans both "
        "tables; a longer RECONCILE_INTERVAL_SECONDS divides its cost.",
    ]
    return "\n".join(lines + notes)


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.cost",
        description="The reference's monthly cost table, from DynamoDB capacity measured here.",
    )
    add = parser.add_argument
    add("--orders", type=int, default=200, help="order lifecycles to measure (200)")
    add("--reads-per-order", type=int, default=3, help="GetOrderStatus per order (3)")
    add("--step-pause", type=float, default=0.2, help="seconds between an order's steps (0.2)")
    add("--concurrency", type=int, default=16, help="orders in flight (16)")
    add("--orders-per-month", type=float, default=10e6, help="the reference's 10 M")
    add("--read-price", type=float, default=Prices.read_per_million, help="$ per M reads")
    add("--write-price", type=float, default=Prices.write_per_million, help="$ per M writes")
    add("--storage-price", type=float, default=Prices.storage_gb_month, help="$ per GB-month")
    add("--dax-hourly", type=float, default=Prices.dax_node_hour, help="$ per DAX node-hour")
    add("--dynamodb", help="a DynamoDB endpoint to use instead of a local moto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Measures, then prints the table."""
    from uoom_orders.config import Settings

    args = build_parser().parse_args(argv)
    measured, env = asyncio.run(
        measure(args.orders, args.reads_per_order, args.step_pause, args.concurrency, args.dynamodb)
    )
    settings = Settings.from_env(env)
    prices = Prices(args.read_price, args.write_price, args.storage_price, args.dax_hourly)
    print(f"command: python -m uoom_orders_bench.cost {' '.join(sys.argv[1:])}")
    print(
        render(
            measured,
            prices=prices,
            orders_per_month=args.orders_per_month,
            reads_per_order=args.reads_per_order,
            ttl_hours=settings.order_cache_ttl_hours,
            # What a deployment runs (this run turned it off, to measure one pass apart).
            reconcile_interval_s=float(Settings.reconcile_interval_seconds),
            reconcile_scan_every=Settings.reconcile_scan_every_passes,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
