"""The `rebuild` scenario: how fast a reconciliation pass fills an empty read model, and checks
a full one, on this run's PostgreSQL and DynamoDB endpoint.

Each round creates a fresh pair of tables under a prefix of its own (the service's tables are
left alone), runs the service's own `Reconciler` over every order PostgreSQL holds into them
(the walk: every item missing, written with the condition the repair always uses), then a
second pass over the now full tables (walk and scan: nothing to write), and deletes them. It
reports orders per second for both, and the CPU per order of this process (the pass's client
side) and, when the endpoint is the run's own moto, of the endpoint. The local endpoint is the
bound here, as it is for the projector.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from uoom_orders_bench.cpu import CpuWindow
from uoom_orders_bench.scenarios import Metric, Scenario


def rebuild_scenario(env: Mapping[str, str], endpoint_pid: int | None) -> Scenario:
    """The scenario against the stores `env` names (service only); `endpoint_pid`: the DynamoDB
    endpoint's process, when this run started it."""

    async def measure(address: str, round_number: int) -> dict[str, float]:
        return await _measure(env, endpoint_pid, round_number)

    def row(key: str, label: str, digits: int = 2) -> Metric:
        return Metric(key, label, ratio=False, digits=digits)

    return Scenario(
        "rebuild",
        "a reconciliation pass of every order into a fresh pair of empty tables (the walk), "
        "then one over the full tables (walk and scan); the service's own Reconciler",
        (
            row("orders", "orders in PostgreSQL", 0),
            row("fill_orders_per_s", "fill: orders/s", 0),
            row("fill_s", "fill: seconds"),
            row("fill_items_written", "fill: items written", 0),
            row("fill_client_cpu_ms_per_order", "fill: pass CPU ms/order (client side)"),
            row("fill_endpoint_cpu_ms_per_order", "fill: endpoint CPU ms/order"),
            row("check_orders_per_s", "check of full tables: orders/s", 0),
            row("check_s", "check: seconds"),
            row("check_endpoint_cpu_ms_per_order", "check: endpoint CPU ms/order"),
        ),
        measure,
        with_baseline=False,
        writes=True,
        progress=lambda f: (
            f"{f['orders']:.0f} orders: fill {f['fill_orders_per_s']:.0f} orders/s "
            f"({f['fill_s']:.2f} s), check {f['check_orders_per_s']:.0f} orders/s "
            f"({f['check_s']:.2f} s)"
        ),
    )


async def _measure(
    env: Mapping[str, str], endpoint_pid: int | None, round_number: int
) -> dict[str, float]:
    import aioboto3
    import asyncpg

    from uoom_orders.config import Settings
    from uoom_orders.dynamodb.client import dynamodb_client
    from uoom_orders.dynamodb.tables import TableNames, create_tables
    from uoom_orders.projector import Reconciler

    settings = Settings.from_env(env)
    prefix = f"{settings.dynamodb_table_prefix}rebuild-{round_number}-{int(time.time())}-"
    session = aioboto3.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=settings.aws_region,
    )
    figures: dict[str, float] = {}
    async with (
        dynamodb_client(
            region=settings.aws_region,
            endpoint=settings.dynamodb_endpoint,
            session=session,
            timeout_ms=30_000,
        ) as client,
        asyncpg.create_pool(settings.database_url, min_size=1, max_size=8) as pool,
    ):
        await create_tables(client, prefix)
        try:
            reconciler = Reconciler(pool, client, prefix, ttl_hours=settings.order_cache_ttl_hours)
            fill = await _timed(lambda: reconciler.run(scan=False), endpoint_pid)
            check = await _timed(reconciler.run, endpoint_pid)
        finally:
            names = TableNames.for_prefix(prefix)
            for name in (names.status, names.details):
                await client.delete_table(TableName=name)
    fill_report, fill_s, fill_client, fill_endpoint = fill
    check_report, check_s, _, check_endpoint = check
    orders = max(fill_report.checked, 1)
    figures["orders"] = fill_report.checked
    figures["fill_s"] = fill_s
    figures["fill_orders_per_s"] = fill_report.checked / fill_s if fill_s > 0 else 0.0
    figures["fill_items_written"] = fill_report.repaired
    figures["fill_client_cpu_ms_per_order"] = 1000 * fill_client / orders
    figures["check_s"] = check_s
    figures["check_orders_per_s"] = check_report.checked / check_s if check_s > 0 else 0.0
    figures["errors"] = len(fill_report.rejected) + len(check_report.differences)
    if fill_endpoint is not None and check_endpoint is not None:
        figures["fill_endpoint_cpu_ms_per_order"] = 1000 * fill_endpoint / orders
        figures["check_endpoint_cpu_ms_per_order"] = 1000 * check_endpoint / orders
    return figures


async def _timed(run: Any, endpoint_pid: int | None) -> tuple[Any, float, float, float | None]:
    """The pass's report, wall seconds, this process's CPU seconds and the endpoint's."""
    endpoint = CpuWindow(endpoint_pid)
    endpoint.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    report = await run()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    endpoint.stop()
    endpoint_cpu, _ = endpoint.spent()
    return report, wall, cpu, endpoint_cpu
