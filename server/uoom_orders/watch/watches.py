"""What the API calls to run a watch: the hub, the reads and the tokens it needs, and the count
of how each stream ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol
from uuid import UUID

from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.domain.errors import OrderServiceError
from uoom_orders.observability import metrics
from uoom_orders.read.ports import ListQuery
from uoom_orders.watch.board_stream import BoardReads, ResumeTokens, stream_board
from uoom_orders.watch.hub import ORDER, RESTAURANT, WatchHub
from uoom_orders.watch.order_stream import StatusReads, stream_order_status


class WatchReads(StatusReads, BoardReads, Protocol):
    """The read path as watches use it (read/tiers.py's ReadPath)."""


async def _counted(kind: str, stream: Coroutine[Any, Any, None]) -> None:
    """Runs a stream, counting its end by reason: COMPLETED, CANCELLED (the caller left, or
    the server's grace ran out), an error's reason, or ERROR."""
    try:
        await stream
    except asyncio.CancelledError:
        metrics.WATCH_ENDED.labels(kind=kind, reason="CANCELLED").inc()
        raise
    except OrderServiceError as error:
        metrics.WATCH_ENDED.labels(kind=kind, reason=error.reason).inc()
        raise
    except Exception:
        metrics.WATCH_ENDED.labels(kind=kind, reason="ERROR").inc()
        raise
    metrics.WATCH_ENDED.labels(kind=kind, reason="COMPLETED").inc()


class Watches:
    def __init__(self, hub: WatchHub, reads: WatchReads, tokens: ResumeTokens) -> None:
        self.hub = hub
        self._reads = reads
        self._tokens = tokens

    async def order_status(
        self,
        order_id: UUID,
        after_version: int,
        send: Callable[[pb.WatchOrderStatusResponse], Awaitable[None]],
    ) -> None:
        await _counted(
            ORDER,
            stream_order_status(
                order_id, after_version, hub=self.hub, reads=self._reads, send=send
            ),
        )

    async def restaurant_orders(
        self,
        query: ListQuery,
        resume_token: str,
        send: Callable[[pb.WatchRestaurantOrdersResponse], Awaitable[None]],
    ) -> None:
        await _counted(
            RESTAURANT,
            stream_board(
                query,
                resume_token,
                hub=self.hub,
                reads=self._reads,
                tokens=self._tokens,
                send=send,
            ),
        )
