"""A DynamoDB-protocol endpoint: moto's DynamoDB backend as a subprocess (moto_dynamodb.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from uoom_orders_devstack.ports import LOOPBACK, http_status, port_accepts
from uoom_orders_devstack.processes import ServerProcess, SingleProcessServer, descendants


def moto_server_argv(port: int, host: str = LOOPBACK) -> list[str]:
    """The command that starts moto's DynamoDB on host:port (with UOOM_MOTO_STATS=1, it logs
    calls and CPU per operation when stopped)."""
    command = [sys.executable, "-m", "uoom_orders_devstack.moto_dynamodb", "-H", host]
    stats = ["--stats"] if os.environ.get("UOOM_MOTO_STATS") == "1" else []
    return [*command, "-p", str(port), *stats]


def dynamodb_answers(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """True when a DynamoDB ListTables call on host:port returns 200 (moto ignores signatures)."""
    status = http_status(
        port,
        "POST",
        body=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/dynamodb/aws4_request,"
                " SignedHeaders=host, Signature=0"
            ),
        },
        host=host,
        timeout=timeout,
    )
    return status == 200


class MotoDynamoDBServer(SingleProcessServer):
    """moto's server on 127.0.0.1:`port`; state lives in memory, so a restart comes back empty."""

    name = "dynamodb (moto)"

    def __init__(self, port: int, log_path: Path, *, start_timeout: float = 60.0) -> None:
        self.port = port
        self.log_path = log_path
        self.start_timeout = start_timeout
        self._process: ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The process that serves (granian's worker, once it has started), for its CPU time;
        the process started, above it, only supervises it."""
        if self._process is None or self._process.pid is None:
            return None
        worker = descendants(self._process.pid)
        return worker[0] if worker else self._process.pid

    @property
    def endpoint(self) -> str:
        """The endpoint URL for DynamoDB clients."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float | None = None) -> None:
        """Starts the server and waits until ListTables answers."""
        if self.is_running:
            return
        self._process = ServerProcess(
            self.name, moto_server_argv(self.port), self.log_path, cwd=self.log_path.parent
        )
        self._process.spawn()
        self._process.wait_ready(
            lambda: port_accepts(self.port) and dynamodb_answers(self.port),
            timeout or self.start_timeout,
            0.05,
        )
