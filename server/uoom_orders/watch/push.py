"""Writes a watch's messages to its stream, counting them and their lag from the commit."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from google.protobuf.message import Message

from uoom_orders.observability import metrics

M = TypeVar("M", bound=Message)


class Pusher(Generic[M]):
    """`await push(message, committed_at)`: waits until the stream takes the message (as
    slowly as its caller reads), then counts it; `committed_at` (Unix seconds) is the commit
    of the change it carries, None for a state read from the read tiers."""

    def __init__(self, kind: str, send: Callable[[M], Awaitable[None]]) -> None:
        self._send = send
        self._pushed = metrics.WATCH_PUSHED.labels(kind=kind)
        self._lag = metrics.WATCH_PUSH_LAG

    async def __call__(self, message: M, committed_at: float | None) -> None:
        await self._send(message)
        self._pushed.inc()
        if committed_at is not None:
            self._lag.observe(max(0.0, time.time() - committed_at))
