"""What an operator relies on, tested on the service as a process: a SIGTERM with calls in
flight, the metrics endpoint scraped over HTTP while the read path and the pipeline work, and
the fast failure on an unreachable DAX endpoint that the README promises."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from functools import partial

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import create_request, update_request
from tests.e2e.conftest import StartService, free_port, service_env
from tests.e2e.full_service import start_full_service
from tests.integration.projector_support import eventually
from uoom_orders_client import (
    OrderServiceClient,
    OrderServiceError,
    UnavailableError,
    order_pb2,
    order_service_pb2,
)
from uoom_orders_devstack import StackEndpoints

SERVICE = "uoom.orders.v1.OrderService"
GRACE_SECONDS = 5  # SHUTDOWN_GRACE_SECONDS of the e2e services
_PROJECTED = "projector_events_applied_total projector_stale_events_total"


async def _waiting_on_a_lock(db: asyncpg.Connection) -> bool:
    waiting = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return bool(waiting)


async def test_sigterm_drains_calls_in_flight_refuses_new_ones_and_exits_zero(
    start_service: StartService, database_url: str
) -> None:
    service = await start_service()
    async with OrderServiceClient(service.target, default_timeout=30, max_attempts=1) as client:
        order = (await client.create_order(create_request())).order

        # An update held inside its transaction by a row lock the test holds.
        db = await asyncpg.connect(database_url)
        blocker = db.transaction()
        await blocker.start()
        await db.execute(
            "SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE", uuid.UUID(order.order_id)
        )
        in_flight = asyncio.create_task(
            client.update_order_status(
                update_request(order.order_id, order_pb2.ORDER_STATUS_CONFIRMED)
            )
        )
        try:
            await eventually(lambda: _waiting_on_a_lock(db), "the update to wait on the lock")

            async with grpc.aio.insecure_channel(service.target) as watch_channel:
                watch = health_pb2_grpc.HealthStub(watch_channel).Watch(
                    health_pb2.HealthCheckRequest(service=SERVICE), timeout=30
                )
                first = await watch.read()
                assert first.status == health_pb2.HealthCheckResponse.SERVING

                service.process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                changed = await asyncio.wait_for(watch.read(), timeout=GRACE_SECONDS)
                assert changed.status == health_pb2.HealthCheckResponse.NOT_SERVING

                # New calls are refused while the one in flight is still running (health says
                # NOT_SERVING a moment before the server stops taking calls: a call in that
                # moment is still answered, so the probe is repeated until refused). A call
                # that reaches the server as it stops taking calls is cancelled by gRPC itself
                # (seen in a full test run); one after that finds the port closed: UNAVAILABLE.
                async def refused() -> bool:
                    try:
                        await client.get_order_status(
                            order_service_pb2.GetOrderStatusRequest(order_id=order.order_id)
                        )
                    except UnavailableError:
                        return True
                    except OrderServiceError as error:
                        if error.code != grpc.StatusCode.CANCELLED:
                            raise
                        return True
                    return False

                await eventually(refused, "new calls to be refused", 5, 0.05)
                assert not in_flight.done()
        finally:
            await blocker.rollback()  # the update may go on
            await db.close()

        updated = (await asyncio.wait_for(in_flight, timeout=GRACE_SECONDS)).order
        assert updated.version == 2
        assert updated.status == order_pb2.ORDER_STATUS_CONFIRMED
        assert time.monotonic() - signalled < GRACE_SECONDS

    assert await asyncio.to_thread(service.process.wait, GRACE_SECONDS + 10) == 0, service.log()
    assert "Traceback" not in service.log()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of the endpoint, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


async def test_the_metrics_endpoint_shows_the_read_path_and_the_pipeline_moving(
    start_service: StartService, local_stack: StackEndpoints, database_url: str
) -> None:
    port = free_port()
    service = await start_full_service(
        start_service, local_stack, database_url, {"METRICS_PORT": str(port)}
    )
    before = await asyncio.to_thread(scrape, port)
    async with OrderServiceClient(service.target, default_timeout=10) as client:
        created = [(await client.create_order(create_request())).order for _ in range(3)]
        moved = await client.update_order_status(
            update_request(created[0].order_id, order_pb2.ORDER_STATUS_CONFIRMED)
        )
        for order in created:
            await client.get_order_status(
                order_service_pb2.GetOrderStatusRequest(order_id=order.order_id)
            )
        await client.batch_get_order_status(
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=[o.order_id for o in created])
        )
    assert moved.order.version == 2

    def grew(names: str, by: float, **labels: str) -> Callable[[], bool]:
        """True once the sum of the space-separated counters `names` rose by `by`."""

        def check() -> bool:
            now = scrape(port)
            risen = (total(now, n, **labels) - total(before, n, **labels) for n in names.split())
            return sum(risen) >= by

        return check

    # The RPCs, the read path, the relay and the projector, each seen moving over HTTP.
    expectations: list[tuple[str, float, dict[str, str]]] = [
        ("grpc_server_handled_total", 3, {"method": "CreateOrder", "code": "OK"}),
        ("grpc_server_handled_total", 1, {"method": "BatchGetOrderStatus", "code": "OK"}),
        ("grpc_server_handling_seconds_count", 1, {"method": "GetOrderStatus"}),
        ("order_reads_served_total", 4, {}),
        ("dynamodb_read_latency_seconds_count", 1, {}),
        ("outbox_published_total", 4, {}),
        # One write per order at least: a batch keeps only the newest version of each order.
        # Applied or stale: the reads' write-back after a PostgreSQL fallback can put a
        # version before the projector does, which then finds it there.
        (_PROJECTED, 3, {"table": "order-status"}),
        (_PROJECTED, 3, {"table": "order-details"}),
        ("projector_end_to_end_lag_seconds_count", 1, {}),
    ]
    for name, by, labels in expectations:
        await eventually(
            partial(asyncio.to_thread, grew(name, by, **labels)), f"{name} {labels} +{by}"
        )
    after = await asyncio.to_thread(scrape, port)
    assert total(after, "outbox_oldest_unpublished_age_seconds") >= 0
    assert total(after, "order_service_component_up", component="postgres") == 1


def test_an_unreachable_dax_endpoint_degrades_the_start_with_a_warning_naming_it(
    local_stack: StackEndpoints, database_url: str
) -> None:
    """With the real amazon-dax-client: a closed port on loopback. The replica starts and
    serves (reads go to the next tier), and says why in one warning, with no error logged."""
    port = free_port()
    env = service_env(local_stack, database_url, port) | {
        "DAX_ENDPOINT": f"dax://127.0.0.1:{free_port()}",
        "READ_TIERS": "dax,dynamodb",
    }
    with subprocess.Popen(
        [sys.executable, "-m", "uoom_orders", "serve", "--roles", "api"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert _wait_serving(port, 30), "the service did not start"
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "DAX" in line and "WARNING" in line]
    assert len(warnings) == 1, stderr
    assert "cannot be reached" in warnings[0]
    for line in stderr.splitlines():
        entry = json.loads(line) if line.startswith("{") else {"level": "TEXT", "logger": ""}
        assert entry["level"] not in ("ERROR", "CRITICAL"), line
        assert entry["logger"].startswith("amazondax") or "Traceback" not in line, line


def _wait_serving(port: int, within: float) -> bool:
    """Polls the gRPC health service until SERVING or the deadline."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return True
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    return False
