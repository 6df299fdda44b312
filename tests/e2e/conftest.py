"""The service as real processes, configured only through the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from uoom_orders_devstack import StackEndpoints


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def service_env(endpoints: StackEndpoints, database_url: str, port: int) -> dict[str, str]:
    return (
        os.environ
        | endpoints.env()
        | {
            "DATABASE_URL": database_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(port),
            "PAGE_TOKEN_SECRET": "e2e-test-page-token-secret-key",
            "SHUTDOWN_GRACE_SECONDS": "5",
            # Tests that need the relay or the projector start them with --roles.
            "SERVICE_ROLES": "api",
        }
    )


async def wait_serving(target: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"service exited with {process.returncode}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"service at {target} not serving after {timeout}s")


class StartService(Protocol):
    async def __call__(
        self, *args: str, extra_env: dict[str, str] | None = None, wait_for_health: bool = True
    ) -> ServiceProcess: ...


async def wait_started(service: ServiceProcess, timeout: float) -> None:
    """Until the process logs that its roles started (or dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"exited with {service.process.returncode}:\n{service.log()}")
        log = service.log()
        if "outbox relay started" in log or "projector started" in log:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not started after {timeout}s:\n{service.log()}")


@pytest.fixture
def start_service(
    local_stack: StackEndpoints, database_url: str, tmp_path: Path
) -> Iterator[StartService]:
    """A factory: `await start_service(*args)` runs `python -m uoom_orders serve *args`."""
    started: list[ServiceProcess] = []

    async def start(
        *args: str, extra_env: dict[str, str] | None = None, wait_for_health: bool = True
    ) -> ServiceProcess:
        port = free_port()
        log_path = tmp_path / f"service-{len(started)}.log"
        env = service_env(local_stack, database_url, port) | (extra_env or {})
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "uoom_orders", "serve", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        service = ServiceProcess(process, f"127.0.0.1:{port}", log_path)
        started.append(service)
        if not wait_for_health:  # a role without a gRPC port: running is all we can see
            await wait_started(service, timeout=30)
            return service
        try:
            await wait_serving(service.target, process, timeout=30)
        except BaseException:
            print(service.log())
            raise
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGKILL)
            service.process.wait(10)


@pytest.fixture
async def service(start_service: StartService) -> ServiceProcess:
    return await start_service()
