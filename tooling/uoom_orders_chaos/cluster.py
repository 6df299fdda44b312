"""The service as an operator runs it: the local stack, and each role as OS processes of its own
(two API replicas, two relays, two projectors), each of which can be killed and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from uoom_orders.admin import prepare_stores
from uoom_orders.config import Settings
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.dynamodb.tables import TableNames, create_tables
from uoom_orders.relay import DEAD_LETTER_TOPIC_PARTITIONS, EVENT_TOPIC_PARTITIONS
from uoom_orders_chaos import cpu_census
from uoom_orders_devstack import LocalStack
from uoom_orders_devstack.ports import LOOPBACK, free_port
from uoom_orders_devstack.processes import ServerProcess, log_tail

TABLE_PREFIX = "uoom-chaos-"
READY_TIMEOUT_S = 60.0

# What each role logs once it runs (the relay and the projector have no port to probe).
_STARTED_LINE = {"relay": "outbox relay started", "projector": "projector started"}

# Two of each role, as separate processes.
LAYOUT = (
    ("api-0", "api"),
    ("api-1", "api"),
    ("relay-0", "relay"),
    ("relay-1", "relay"),
    ("projector-0", "projector"),
    ("projector-1", "projector"),
)


class RoleStartError(RuntimeError):
    """A role process did not become ready; the message ends with its log's tail."""


class RoleProcess:
    """`python -m uoom_orders serve --roles ROLE` with its own environment and log file.

    `incarnation` counts its starts, so that answers of a restarted API replica are told apart
    from those of the process that was killed.
    """

    def __init__(self, name: str, role: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.role = role
        self.env = dict(env)
        self.incarnation = 0
        self.log_path = log_dir / f"{name}.log"
        self._process = ServerProcess(
            name,
            [sys.executable, "-m", "uoom_orders", "serve", "--roles", role],
            self.log_path,
            env=self.env,
        )

    @property
    def address(self) -> str:
        """host:port of an API replica."""
        return f"{self.env['GRPC_HOST']}:{self.env['GRPC_PORT']}"

    @property
    def is_running(self) -> bool:
        return self._process.is_running

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def log_offset(self) -> int:
        """Where the log ends now: `wait_logged` from here sees only what comes later."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    async def wait_logged(self, text: str, offset: int, timeout_s: float) -> None:
        """Waits until the log has `text` after `offset`; raises if the process ends first."""
        await self._wait_logged(text, offset, timeout_s)

    async def start(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Starts the process and waits until it is ready; returns the seconds that took."""
        started = time.monotonic()
        offset = self.log_offset()
        self._process.spawn()
        self.incarnation += 1
        if self.role == "api":
            await self._wait_serving(timeout_s)
        else:
            await self._wait_logged(_STARTED_LINE[self.role], offset, timeout_s)
        return time.monotonic() - started

    async def kill(self) -> None:
        """SIGKILL: the process vanishes mid-work, as in a crash."""
        await asyncio.to_thread(self._process.kill)

    async def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (a graceful stop), SIGKILL after `timeout_s`."""
        await asyncio.to_thread(self._process.terminate, timeout_s)

    def _failed(self, what: str) -> RoleStartError:
        return RoleStartError(
            f"{self.name}: {what}; tail of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    async def _wait_serving(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if not self._process.is_running:
                    raise self._failed(f"exited with {self._process.returncode} while starting")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                if time.monotonic() >= deadline:
                    raise self._failed(f"not serving after {timeout_s:.0f} s")
                await asyncio.sleep(0.05)

    async def _wait_logged(self, line: str, offset: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if not self._process.is_running:
                raise self._failed(f"exited with {self._process.returncode} while waiting")
            with contextlib.suppress(OSError), self.log_path.open("rb") as log:
                log.seek(offset)
                if line.encode() in log.read():
                    return
            if time.monotonic() >= deadline:
                raise self._failed(f"did not log {line!r} within {timeout_s:.0f} s")
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class ReadModelAccess:
    """How the tool itself reaches the DynamoDB endpoint and the read model's tables."""

    endpoint: str
    region: str
    prefix: str

    @property
    def tables(self) -> TableNames:
        return TableNames.for_prefix(self.prefix)

    def client(self, max_retries: int = 1, timeout_ms: int = 2000) -> Any:
        """An async context manager yielding a low-level aioboto3 DynamoDB client."""
        return dynamodb_client(
            region=self.region,
            endpoint=self.endpoint,
            max_retries=max_retries,
            timeout_ms=timeout_ms,
        )


class ChaosCluster:
    """The local stack plus every role as processes; an async context manager.

    On enter: the stack's servers, the migrations (after checking `synchronous_commit` is on,
    see `_require_synchronous_commit`), the read-model tables and the
    topics, then the six role processes. On exit: the roles stopped, then the stack.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        service_env: Mapping[str, str] | None = None,
        keep_stack: bool = False,
    ) -> None:
        self.log_dir = log_dir
        self._service_env = dict(service_env or {})
        defaults = Settings(database_url="postgresql://unused")
        # No DAX-protocol endpoint: a fault passes only if every replica agrees with PostgreSQL
        # within 5 s of the lift, and a DAX item cache, which the projector's writes bypass,
        # answers an older version for up to its TTL by design; nor are DAX faults injected.
        self.stack = LocalStack(
            log_dir / "stack",
            kafka_topics={
                defaults.kafka_topic: EVENT_TOPIC_PARTITIONS,
                defaults.dead_letter_topic: DEAD_LETTER_TOPIC_PARTITIONS,
            },
            dax=False,
            keep_base_dir=keep_stack,
        )
        self.roles: dict[str, RoleProcess] = {}
        self.env: dict[str, str] = {}
        self.settings: Settings | None = None

    @property
    def replicas(self) -> list[RoleProcess]:
        """The API replicas, in a fixed order."""
        return [process for process in self.roles.values() if process.role == "api"]

    @property
    def database_url(self) -> str:
        return self.stack.endpoints.database_url

    @property
    def topic(self) -> str:
        assert self.settings is not None
        return self.settings.kafka_topic

    @property
    def read_model(self) -> ReadModelAccess:
        assert self.settings is not None
        return ReadModelAccess(
            endpoint=self.stack.endpoints.dynamodb_endpoint,
            region=self.settings.aws_region,
            prefix=self.settings.dynamodb_table_prefix,
        )

    def pids(self) -> dict[str, int | None]:
        """The process id of every role and of the broker and DynamoDB endpoint, by name."""
        stack = self.stack
        found = {name: process.pid for name, process in self.roles.items()}
        found["dynamodb"] = None if stack.dynamodb is None else stack.dynamodb.pid
        found["kafka"] = None if stack.kafka is None else stack.kafka.pid
        return found

    def cpu_census(self) -> cpu_census.Census:
        """The CPU time every process of the run has spent so far (see `cpu_census`); read the
        process ids afresh each time, as restarts change them."""
        postgres = self.stack.postgres
        return cpu_census.take(self.pids(), None if postgres is None else postgres.pid)

    def roles_of(self, role: str) -> list[RoleProcess]:
        return [process for process in self.roles.values() if process.role == role]

    async def __aenter__(self) -> ChaosCluster:
        try:
            await self._start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _start(self) -> None:
        endpoints = await asyncio.to_thread(self.stack.start)
        # The tool's own gRPC setting (see __main__.py) is not the service's.
        inherited = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
        self.env = (
            inherited
            | endpoints.env()
            | {
                "DYNAMODB_TABLE_PREFIX": TABLE_PREFIX,
                "PAGE_TOKEN_SECRET": secrets.token_hex(24),
                "METRICS_PORT": "0",
                # As python -m uoom_orders_devstack does: moto answers in milliseconds, with tails
                # near 100 ms.
                "READ_TIER_TIMEOUT_MS": "500",
                "SHUTDOWN_GRACE_SECONDS": "5",
            }
            | self._service_env
        )
        # The roles are given on each command line; an inherited SERVICE_ROLES must not matter.
        self.env.pop("SERVICE_ROLES", None)
        self.settings = Settings.from_env(self.env)
        # The tool's own DynamoDB clients read the (dummy, local) credentials from here.
        os.environ.update({k: v for k, v in endpoints.env().items() if k.startswith("AWS_")})
        await prepare_stores(self.settings)
        await _require_synchronous_commit(endpoints.database_url)
        for name, role in LAYOUT:
            env = dict(self.env)
            if role == "api":
                env |= {"GRPC_HOST": LOOPBACK, "GRPC_PORT": str(free_port())}
            self.roles[name] = RoleProcess(name, role, env, self.log_dir)
        await asyncio.gather(*(process.start() for process in self.roles.values()))

    async def create_tables(self) -> None:
        """The read model's tables (idempotent), as `uoom-orders create-tables` makes them."""
        access = self.read_model
        async with access.client(max_retries=3, timeout_ms=10_000) as client:
            await create_tables(client, access.prefix)

    async def aclose(self) -> None:
        """Stops every role (gracefully, then by force), then the stack. Safe to call twice."""
        await asyncio.gather(
            *(process.stop() for process in self.roles.values()), return_exceptions=True
        )
        await asyncio.to_thread(self.stack.stop)


async def _require_synchronous_commit(database_url: str) -> None:
    """Refuses to measure a write model that may lose acknowledged commits in a crash.

    The service assumes `synchronous_commit` on (it warns at start otherwise); the local
    stack's cluster runs with it on. With it off, the postgres-crash fault would measure the
    configuration, not the service.
    """
    connection = await asyncpg.connect(database_url)
    try:
        value = await connection.fetchval("SHOW synchronous_commit")
    finally:
        await connection.close()
    if value == "off":
        raise RuntimeError("synchronous_commit is off for the service's database: turn it on")
