"""A DAX-protocol endpoint: `python -m uoom_orders_dax` as a subprocess, in front of the
stack's DynamoDB endpoint (moto_server, or one given from outside)."""

from __future__ import annotations

import sys
from pathlib import Path

from uoom_orders_devstack.ports import LOOPBACK, port_accepts
from uoom_orders_devstack.processes import ServerProcess, SingleProcessServer

# The item and query cache TTLs of the deployment's DAX parameter group (the defaults of
# DaxItemTtlMillis and DaxQueryTtlMillis in deploy/cloudformation.yaml; a unit test keeps them
# equal), so that `dev` is as stale as production. DAX's own default is 5 minutes for both.
DEPLOYED_ITEM_TTL_SECONDS = 5.0
DEPLOYED_QUERY_TTL_SECONDS = 1.0


class DaxEndpointServer(SingleProcessServer):
    """The DAX-protocol endpoint on 127.0.0.1:`port`, forwarding to `dynamodb_endpoint`.

    Its caches live in memory: a restart comes back with both empty (as a replaced DAX node).
    """

    name = "dax (uoom_orders_dax)"

    def __init__(
        self,
        port: int,
        log_path: Path,
        dynamodb_endpoint: str,
        *,
        item_ttl_seconds: float = DEPLOYED_ITEM_TTL_SECONDS,
        query_ttl_seconds: float = DEPLOYED_QUERY_TTL_SECONDS,
        region: str = "us-east-1",
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.dynamodb_endpoint = dynamodb_endpoint
        self.item_ttl_seconds = item_ttl_seconds
        self.query_ttl_seconds = query_ttl_seconds
        self.region = region
        self.start_timeout = start_timeout
        self._process: ServerProcess | None = None

    @property
    def endpoint(self) -> str:
        """The DAX_ENDPOINT of the service: dax://127.0.0.1:port (discovery answers itself)."""
        return f"dax://{LOOPBACK}:{self.port}"

    def start(self, timeout: float | None = None) -> None:
        """Starts the endpoint and waits until it accepts connections (it listens only once
        its DynamoDB client is ready)."""
        if self.is_running:
            return
        self._process = ServerProcess(
            self.name,
            [
                sys.executable, "-m", "uoom_orders_dax",
                "--dynamodb-endpoint", self.dynamodb_endpoint,
                "--host", LOOPBACK,
                "--port", str(self.port),
                "--item-ttl-seconds", str(self.item_ttl_seconds),
                "--query-ttl-seconds", str(self.query_ttl_seconds),
                "--region", self.region,
            ],
            self.log_path,
            cwd=self.log_path.parent,
        )  # fmt: skip
        self._process.spawn()
        self._process.wait_ready(lambda: port_accepts(self.port), timeout or self.start_timeout)
