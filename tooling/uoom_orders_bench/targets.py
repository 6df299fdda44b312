"""The two servers under load: the service and the bare baseline, each its own process."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from uoom.orders.v1 import order_service_pb2_grpc

from uoom_orders_bench.cpu import cpu_seconds
from uoom_orders_devstack.ports import LOOPBACK, free_port
from uoom_orders_devstack.processes import ServerProcess, log_tail

if TYPE_CHECKING:
    from uoom.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class TargetStartError(RuntimeError):
    """A server under test did not become ready; the message ends with its log's tail."""


def service_environment(
    base_env: Mapping[str, str], extra_env: Mapping[str, str]
) -> dict[str, str]:
    """The service's environment, listening on a free loopback port.

    The caller's environment, then `base_env` (the stack's endpoints and defaults), then
    `extra_env` (``--service-env``): the last word is the command line's.
    """
    return (
        dict(os.environ)
        | {"PAGE_TOKEN_SECRET": secrets.token_hex(24)}
        | dict(base_env)
        | {"GRPC_HOST": LOOPBACK, "GRPC_PORT": str(free_port())}
        | dict(extra_env)
    )


# Every role: the API, the outbox relay and the projector, so that the pipeline runs.
ALL_ROLES = ("api", "relay", "projector")


def service_process(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    roles: tuple[str, ...] = ALL_ROLES,
    name: str = "service",
) -> tuple[ServerProcess, str]:
    """`python -m uoom_orders serve --roles ...` with `env` (not started); and its address.

    The roles are always given on the command line: a SERVICE_ROLES variable inherited from the
    caller's environment must not quietly leave out the relay or the projector.
    """
    process = ServerProcess(
        name,
        [sys.executable, "-m", "uoom_orders", "serve", "--roles", ",".join(roles)],
        log_dir / f"{name}.log",
        env=env,
    )
    return process, f"{env.get('GRPC_HOST', LOOPBACK)}:{env['GRPC_PORT']}"


def pipeline_process(env: Mapping[str, str], log_dir: Path) -> ServerProcess:
    """`serve --roles relay,projector`: no gRPC port; ready when both roles say so in the log."""
    process, _ = service_process(env, log_dir, roles=("relay", "projector"), name="pipeline")
    return process


PIPELINE_STARTED = ("outbox relay started", "projector started")
"""What `pipeline_process` logs once both its roles run."""


async def start_serving(resources: AsyncExitStack, process: ServerProcess, address: str) -> None:
    """Starts `process`, stopped when `resources` unwinds, and waits until `address` serves."""
    resources.callback(process.terminate, STOP_TIMEOUT_S)
    process.spawn()
    await wait_serving(address, process)


async def start_logged(
    resources: AsyncExitStack, process: ServerProcess, lines: tuple[str, ...]
) -> None:
    """Starts `process` (a role without a port), stopped when `resources` unwinds, and waits
    until its log says each of `lines`."""
    resources.callback(process.terminate, STOP_TIMEOUT_S)
    process.spawn()
    await wait_logged(process, lines)


async def wait_logged(
    process: ServerProcess, lines: tuple[str, ...], timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Waits until each of `lines` appears in the process's log (for roles without a port)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.is_running:
            raise TargetStartError(f"{process.name} exited; see {process.log_path}")
        text = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
        if all(line in text for line in lines):
            return
        await asyncio.sleep(0.05)
    raise TargetStartError(
        f"{process.name} not ready after {timeout_s:.0f} s; see {process.log_path}"
    )


def replica_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment of another API replica of the same service: its own gRPC port, and no
    metrics port of its own (it would clash with the first process's)."""
    replica = dict(env) | {"GRPC_PORT": str(free_port())}
    if "METRICS_PORT" in replica:
        replica["METRICS_PORT"] = "0"
    return replica


def bare_server_process(orders_file: Path, log_dir: Path) -> tuple[ServerProcess, str]:
    """The baseline on a free loopback port (not started), serving `orders_file`; its address."""
    port = free_port()
    process = ServerProcess(
        "bare-server",
        [
            sys.executable,
            "-m",
            "uoom_orders_bench.bare_server",
            "--port",
            str(port),
            "--orders-file",
            str(orders_file),
        ],
        log_dir / "bare-server.log",
    )
    return process, f"{LOOPBACK}:{port}"


async def wait_serving(
    address: str, process: ServerProcess | None = None, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Waits until the gRPC health check at `address` says SERVING.

    Raises TargetStartError when `process` exits first or time runs out.
    """
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if process is not None and process.returncode is not None:
                raise _start_error(f"{process.name} exited with {process.returncode}", process)
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() >= deadline:
                raise _start_error(f"{address} not serving after {timeout_s:.0f} s", process)
            await asyncio.sleep(0.05)


async def wait_quiet(
    pid: int, busy_share: float = 0.1, window_s: float = 0.5, timeout_s: float = 30.0
) -> float:
    """Waits until the process uses under `busy_share` of a core over `window_s`; returns the
    seconds waited (at most about `timeout_s`). Background work a scenario started (outbox
    relay, projection, cache feed) then does not spill into the next measurement."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while before is not None and time.monotonic() - started < timeout_s:
        await asyncio.sleep(window_s)
        after = cpu_seconds(pid)
        if after is None or after - before < busy_share * window_s:
            break
        before = after
    return time.monotonic() - started


def _start_error(what: str, process: ServerProcess | None) -> TargetStartError:
    if process is None:
        return TargetStartError(what)
    return TargetStartError(f"{what}; tail of {process.log_path}:\n{log_tail(process.log_path)}")


@asynccontextmanager
async def order_stub(address: str) -> AsyncIterator[OrderServiceAsyncStub]:
    """A raw generated stub over a channel of its own (its own connection), closed on exit.

    A local subchannel pool keeps the connection from being shared with other channels to the
    same address, which grpc does by default.
    """
    channel = grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout=10.0)
        yield order_service_pb2_grpc.OrderServiceStub(channel)
    finally:
        await channel.close()
