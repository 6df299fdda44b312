"""The cost of the DAX tier's thread-pool hop, measured in this process without gRPC.

amazon-dax-client is synchronous, so the service runs its calls in a thread pool
(`AsyncDaxClient`): each read goes from the event loop to a worker thread and back. Here the
same GetItem through the same real client is timed both ways, one call in flight: made
directly on a thread (what a synchronous caller pays) and awaited through `AsyncDaxClient`
from the event loop (what the service pays). The difference of the two is the hop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from uoom_orders.read.dax_client import AsyncDaxClient, connect_dax
from uoom_orders_bench.stats import latency_figures

WARM_UP_CALLS = 100


class DaxHop:
    """One real client to `endpoint`, reading `table`'s items by `order_ids`; an async context
    manager (the client connects on enter and is closed on exit)."""

    def __init__(self, endpoint: str, region: str, table: str, order_ids: Sequence[str]) -> None:
        self._endpoint = endpoint
        self._region = region
        self._table = table
        self._keys = [{"orderId": {"S": order_id}} for order_id in order_ids]
        self._adapter: AsyncDaxClient | None = None
        self._client: Any = None

    async def __aenter__(self) -> DaxHop:
        self._client = await asyncio.to_thread(connect_dax, self._endpoint, self._region)
        self._adapter = AsyncDaxClient(self._client)
        await asyncio.to_thread(self._direct, WARM_UP_CALLS)
        await self._through_adapter(WARM_UP_CALLS)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._adapter is not None:
            self._adapter.close()  # closes the client too
            self._adapter = None

    def _request(self, index: int) -> dict[str, Any]:
        return {"TableName": self._table, "Key": self._keys[index % len(self._keys)]}

    def _direct(self, calls: int) -> list[int]:
        latencies = []
        for index in range(calls):
            started = time.perf_counter_ns()
            self._client.get_item(**self._request(index))
            latencies.append(time.perf_counter_ns() - started)
        return latencies

    async def _through_adapter(self, calls: int) -> list[int]:
        assert self._adapter is not None
        latencies = []
        for index in range(calls):
            started = time.perf_counter_ns()
            await self._adapter.get_item(**self._request(index))
            latencies.append(time.perf_counter_ns() - started)
        return latencies

    async def measure(self, calls: int, *, adapter_first: bool) -> dict[str, dict[str, float]]:
        """Latency figures of `calls` GetItems each way ("direct", "async"), in the given order."""
        figures: dict[str, dict[str, float]] = {}
        for way in ("async", "direct") if adapter_first else ("direct", "async"):
            if way == "direct":
                latencies = await asyncio.to_thread(self._direct, calls)
            else:
                latencies = await self._through_adapter(calls)
            figures[way] = latency_figures(latencies)
        return figures
