"""For the DAX tests: a DynamoDB endpoint (moto_server, or TEST_DYNAMODB_ENDPOINT), the real
amazon-dax-client pointed at a DaxEndpoint with dummy credentials, and a counter around it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
from amazondax import AmazonDaxClient
from botocore.config import Config

from uoom_orders.read.dax_client import SyncItemClient
from uoom_orders_dax import DaxEndpoint
from uoom_orders_devstack.dynamodb_endpoint import moto_server_argv

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
_START_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dynamodb_client(endpoint: str) -> Any:
    """A plain boto3 DynamoDB client: the writes that go straight to DynamoDB."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=10),
    )


@contextlib.contextmanager
def moto_dynamodb() -> Iterator[str]:
    """The URL of a DynamoDB endpoint: TEST_DYNAMODB_ENDPOINT, else a moto of our own."""
    outside = os.environ.get("TEST_DYNAMODB_ENDPOINT")
    if outside:
        yield outside
        return
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(moto_server_argv(port), stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            client = dynamodb_client(url)
            deadline = time.monotonic() + _START_SECONDS
            while True:
                try:
                    client.list_tables()
                    break
                except Exception:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"moto_server did not start: {log.read()!r}") from None
                    time.sleep(0.1)
            client.close()
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def dax_client(endpoint: str) -> Any:
    """amazon-dax-client as the service builds it (read/dax_client.py), credentials dummy."""
    return AmazonDaxClient(
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def dax_endpoint(dynamodb_url: str, **settings: Any) -> DaxEndpoint:
    """A DaxEndpoint (not started) in front of `dynamodb_url`, with the dummy credentials."""
    return DaxEndpoint(
        dynamodb_url,
        region=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        **settings,
    )


class CountingDaxClient:
    """The real client, counting the calls that reach it and the threads they ran on."""

    def __init__(self, client: SyncItemClient) -> None:
        self._client = client
        self.calls = 0
        self.threads: set[str] = set()

    def _count(self) -> None:
        self.calls += 1
        self.threads.add(threading.current_thread().name)

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self._count()
        return self._client.get_item(**kwargs)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self._count()
        return self._client.batch_get_item(**kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self._count()
        return self._client.query(**kwargs)

    def close(self) -> None:
        self._client.close()
