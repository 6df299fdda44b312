"""A stand-in for amazon-dax-client's AmazonDaxClient, for tests only.

No DAX server or emulator exists outside AWS, so the DAX tier is tested against this: the same
synchronous method names, the same low-level response shapes (it forwards to a real
DynamoDB-protocol endpoint through boto3, which DAX's API mirrors), and amazon-dax-client's own
error classes when told to fail. What it cannot show: DAX's item and query caches, its cluster
discovery, its wire protocol and its latency.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from amazondax.DaxError import DaxClientError, DaxErrorCode


class DaxStandIn:
    def __init__(self, endpoint: str, region: str, access_key: str, secret_key: str) -> None:
        self._client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        self.fail_with: Exception | None = None
        self.calls = 0
        self.threads: set[str] = set()
        self.closed = False

    @staticmethod
    def unreachable() -> DaxClientError:
        """What the real client raises when no cluster node answers."""
        return DaxClientError(
            "Failed to configure cluster endpoints", DaxErrorCode.NoRoute, retryable=True
        )

    def _call(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.closed:
            raise DaxClientError("client is closed", DaxErrorCode.Validation)
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_with is not None:
            raise self.fail_with
        result: dict[str, Any] = getattr(self._client, name)(**kwargs)
        result.pop("ResponseMetadata", None)  # DAX answers carry none
        return result

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_item", kwargs)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("batch_get_item", kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("query", kwargs)

    def close(self) -> None:
        self.closed = True
        self._client.close()
