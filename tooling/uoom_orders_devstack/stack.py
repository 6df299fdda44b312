"""The local stack: PostgreSQL, a Kafka-protocol broker, a DynamoDB endpoint and a DAX-protocol
endpoint in front of it, on loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from uoom_orders_devstack.dax_endpoint import DEPLOYED_ITEM_TTL_SECONDS, DaxEndpointServer
from uoom_orders_devstack.dynamodb_endpoint import MotoDynamoDBServer
from uoom_orders_devstack.kafka_broker import TansuBroker
from uoom_orders_devstack.ports import free_port
from uoom_orders_devstack.postgres import PostgresServer
from uoom_orders_devstack.processes import LocalServer, StackStartError

# moto accepts any credentials; clients still need some, and a region.
DUMMY_AWS_REGION = "us-east-1"
DUMMY_AWS_ACCESS_KEY_ID = "testing"
DUMMY_AWS_SECRET_ACCESS_KEY = "testing"

_S = TypeVar("_S", bound=LocalServer)


@dataclass(frozen=True)
class StackEndpoints:
    """Where the stack's servers listen, and the environment a service needs to reach them."""

    database_url: str
    admin_database_url: str
    kafka_bootstrap_servers: str
    dynamodb_endpoint: str
    aws_region: str = DUMMY_AWS_REGION
    aws_access_key_id: str = DUMMY_AWS_ACCESS_KEY_ID
    aws_secret_access_key: str = DUMMY_AWS_SECRET_ACCESS_KEY
    # The broker is the launcher's tansu: its quirks need two settings (see env()).
    local_broker: bool = False
    # The DAX-protocol endpoint in front of `dynamodb_endpoint`; None when the stack has none.
    dax_endpoint: str | None = None

    def env(self) -> dict[str, str]:
        """The service's environment variables for these endpoints."""
        tansu = {
            # tansu rejects aiokafka's idempotent producer (InitProducerId v0).
            "KAFKA_IDEMPOTENT_PRODUCER": "false",
            # tansu holds a fetch for its whole max wait when nothing comes, so an idle
            # consumer polls it 1000/wait times a second; records take longer to arrive as the
            # wait grows. Measured, 20 ms against 10: an idle API process 5.7 -> 3.6 % of a
            # core, the near cache lag at 50 writes/s p50 10.6 -> 10.9 ms, p99 20.7 -> 25.7 ms
            # (target 50); at 50 ms, p50 21 and p99 37 ms.
            "KAFKA_FETCH_MAX_WAIT_MS": "20",
            # A group join on tansu takes about half the session timeout: a projector that
            # died or restarted costs about a second of projection instead of several.
            "PROJECTOR_SESSION_TIMEOUT_MS": "2000",
            # After a pause of tansu, members that leave the group (LeaveGroup, sent by a
            # graceful stop) leave it stalled: the next members join a generation whose leader
            # is none of them and never get partitions (see projector/membership.py).
            "PROJECTOR_LEAVE_GROUP_ON_STOP": "false",
        }
        dax = {} if self.dax_endpoint is None else {"DAX_ENDPOINT": self.dax_endpoint}
        return (
            (tansu if self.local_broker else {})
            | {
                "DATABASE_URL": self.database_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
                "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
                "AWS_REGION": self.aws_region,
                "AWS_DEFAULT_REGION": self.aws_region,
                "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            }
            | dax
        )


def admin_url_for(database_url: str) -> str:
    """The same server's `postgres` database, for CREATE DATABASE and DROP DATABASE."""
    return urlsplit(database_url)._replace(path="/postgres").geturl()


class LocalStack:
    """Starts the servers not given from outside, on free loopback ports, under one base folder.

    A context manager; `stop()` is safe to call twice and also runs at interpreter exit. The
    servers are reachable as `postgres`, `kafka`, `dynamodb` and `dax` (None when given from
    outside, or for `dax`, when `dax=False`) to stop, kill and restart them on the same port.
    The DAX-protocol endpoint (`dax`, on by default) fronts whichever DynamoDB endpoint the stack
    uses, with an item cache of `dax_item_ttl_seconds` (the deployment's parameter group's);
    `dax=False` leaves it out, and env() then has no DAX_ENDPOINT. The base folder is removed
    on stop when the launcher created it, unless `keep_base_dir`. `kafka_topics` (name →
    partitions) are created on the local broker at start and again after each restart, because
    the broker keeps nothing across a restart (see TansuBroker).
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        database_url: str | None = None,
        admin_database_url: str | None = None,
        kafka_bootstrap_servers: str | None = None,
        dynamodb_endpoint: str | None = None,
        kafka_topics: Mapping[str, int] | None = None,
        dax: bool = True,
        dax_item_ttl_seconds: float = DEPLOYED_ITEM_TTL_SECONDS,
        keep_base_dir: bool = False,
        start_timeout: float = 60.0,
    ) -> None:
        """`start_timeout` bounds each server's start; the endpoint arguments replace servers."""
        self._given_base_dir = base_dir
        self._base_dir: Path | None = None
        self._created_base_dir = False
        self._database_url = database_url
        self._admin_database_url = admin_database_url
        self._kafka_bootstrap_servers = kafka_bootstrap_servers
        self._dynamodb_endpoint = dynamodb_endpoint
        self._kafka_topics = dict(kafka_topics or {})
        self._dax = dax
        self._dax_item_ttl_seconds = dax_item_ttl_seconds
        self._keep_base_dir = keep_base_dir
        self._start_timeout = start_timeout
        self._endpoints: StackEndpoints | None = None
        self._lock = threading.Lock()
        self.postgres: PostgresServer | None = None
        self.kafka: TansuBroker | None = None
        self.dynamodb: MotoDynamoDBServer | None = None
        self.dax: DaxEndpointServer | None = None
        self.start_seconds: dict[str, float] = {}
        """How long each server took to start, by server name."""

    @property
    def base_dir(self) -> Path:
        """The folder holding the servers' data and logs."""
        if self._base_dir is None:
            raise RuntimeError("the local stack is not started")
        return self._base_dir

    @property
    def endpoints(self) -> StackEndpoints:
        """The endpoints of the started stack."""
        if self._endpoints is None:
            raise RuntimeError("the local stack is not started")
        return self._endpoints

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> StackEndpoints:
        """Starts the servers concurrently; on any failure stops those started and raises."""
        with self._lock:
            if self._endpoints is not None:
                return self._endpoints
            base = self._make_base_dir()
            timeout = self._start_timeout
            _track(self)
            jobs: dict[str, Callable[[], LocalServer]] = {}
            if self._database_url is None:
                jobs["postgres"] = lambda: self._start_server(
                    lambda port: PostgresServer(base / "postgres", port, start_timeout=timeout)
                )
            if self._kafka_bootstrap_servers is None:
                jobs["kafka"] = lambda: self._start_server(
                    lambda port: TansuBroker(
                        port, base / "kafka.log", topics=self._kafka_topics, start_timeout=timeout
                    )
                )
            if self._dynamodb_endpoint is None:
                jobs["dynamodb"] = lambda: self._start_server(
                    lambda port: MotoDynamoDBServer(
                        port, base / "dynamodb.log", start_timeout=timeout
                    )
                )
            try:
                self._run_jobs(jobs)
                if self._dax:
                    # After DynamoDB: the endpoint is told where it listens.
                    self.dax = self._start_server(lambda port: self._dax_server(port, base))
                self._endpoints = self._collect_endpoints()
            except BaseException:
                self._stop_locked()
                raise
            return self._endpoints

    def stop(self) -> None:
        """Stops every server the launcher started and removes the base folder it created."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        for server in (self.dax, self.dynamodb, self.kafka, self.postgres):
            if server is not None:
                server.stop()
        self.postgres = self.kafka = self.dynamodb = self.dax = None
        self._endpoints = None
        if self._base_dir is not None and self._created_base_dir and not self._keep_base_dir:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None
        _untrack(self)

    def _make_base_dir(self) -> Path:
        if self._base_dir is not None:
            return self._base_dir
        if self._given_base_dir is None:
            base = Path(tempfile.mkdtemp(prefix="uoom-stack-"))
            self._created_base_dir = True
        else:
            base = self._given_base_dir.resolve()
            self._created_base_dir = not base.exists()
            base.mkdir(parents=True, exist_ok=True)
        if self._created_base_dir and os.geteuid() == 0:
            # The postgres user must be able to enter the base folder to reach its own subfolder.
            base.chmod(0o711)
        self._base_dir = base
        return base

    def _dax_server(self, port: int, base: Path) -> DaxEndpointServer:
        dynamodb_endpoint = (
            self.dynamodb.endpoint if self.dynamodb is not None else self._dynamodb_endpoint
        )
        assert dynamodb_endpoint is not None
        return DaxEndpointServer(
            port,
            base / "dax.log",
            dynamodb_endpoint,
            item_ttl_seconds=self._dax_item_ttl_seconds,
            start_timeout=self._start_timeout,
        )

    def _run_jobs(self, jobs: dict[str, Callable[[], LocalServer]]) -> None:
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="stack-start") as pool:
            futures: dict[str, Future[LocalServer]] = {
                name: pool.submit(job) for name, job in jobs.items()
            }
        errors: list[BaseException] = []
        for name, future in futures.items():
            error = future.exception()
            if error is not None:
                errors.append(error)
                continue
            server = future.result()
            if isinstance(server, PostgresServer):
                self.postgres = server
            elif isinstance(server, TansuBroker):
                self.kafka = server
            elif isinstance(server, MotoDynamoDBServer):
                self.dynamodb = server
            else:  # pragma: no cover - the jobs above build only these
                raise TypeError(f"unexpected server for {name}: {server!r}")
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise StackStartError("\n\n".join(str(e) for e in errors)) from errors[0]

    def _start_server(self, make: Callable[[int], _S]) -> _S:
        """Starts a server on a free port; once more on another port if the first was taken."""
        server = make(free_port())
        started = time.monotonic()
        try:
            server.start()
        except StackStartError as first:
            server.stop()
            if not _port_was_taken(first):
                raise
            server = make(free_port())
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
        except BaseException:
            server.stop()
            raise
        self.start_seconds[server.name] = time.monotonic() - started
        return server

    def _collect_endpoints(self) -> StackEndpoints:
        if self.postgres is not None:
            database_url = self.postgres.dsn("orders")
            admin_database_url = self.postgres.dsn("postgres")
        else:
            assert self._database_url is not None
            database_url = self._database_url
            admin_database_url = self._admin_database_url or admin_url_for(database_url)
        if self.kafka is not None:
            bootstrap = self.kafka.bootstrap_servers
        else:
            assert self._kafka_bootstrap_servers is not None
            bootstrap = self._kafka_bootstrap_servers
        aws = {"aws_region": DUMMY_AWS_REGION}
        if self.dynamodb is not None:
            dynamodb_endpoint = self.dynamodb.endpoint
        else:
            assert self._dynamodb_endpoint is not None
            dynamodb_endpoint = self._dynamodb_endpoint
            # An endpoint from outside may check credentials: take the caller's when it has some.
            aws["aws_region"] = os.environ.get("AWS_REGION", DUMMY_AWS_REGION)
            if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
                aws["aws_access_key_id"] = os.environ["AWS_ACCESS_KEY_ID"]
                aws["aws_secret_access_key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
        return StackEndpoints(
            database_url=database_url,
            admin_database_url=admin_database_url,
            kafka_bootstrap_servers=bootstrap,
            dynamodb_endpoint=dynamodb_endpoint,
            local_broker=self.kafka is not None,
            dax_endpoint=None if self.dax is None else self.dax.endpoint,
            **aws,
        )


def _port_was_taken(error: StackStartError) -> bool:
    # PostgreSQL and moto log "Address already in use", tansu "AddrInUse ... Address in use",
    # the DAX endpoint "address already in use".
    message = str(error).lower()
    return "in use" in message or "addrinuse" in message


# Stacks still running at interpreter exit are stopped, so a crashed test run leaves no servers.
_running: set[LocalStack] = set()
_running_lock = threading.Lock()
_atexit_registered = False


def _track(stack: LocalStack) -> None:
    global _atexit_registered
    with _running_lock:
        _running.add(stack)
        if not _atexit_registered:
            atexit.register(_stop_all)
            _atexit_registered = True


def _untrack(stack: LocalStack) -> None:
    with _running_lock:
        _running.discard(stack)


def _stop_all() -> None:
    with _running_lock:
        stacks = list(_running)
    for stack in stacks:
        stack.stop()
