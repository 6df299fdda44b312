"""The one way to run background work: tasks owned by an async context manager, cancelled and
awaited on exit (aio-libs' rule: nothing outlives the thing that started it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancels the tasks and waits until each has finished; their outcomes are dropped (a task
    that failed has already reported its error, or is being stopped because of it)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    # Only the caller's own cancellation is propagated, not the tasks'.
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError


class BackgroundTasks:
    """Tasks that live exactly as long as this context: `spawn` starts one, exit cancels and
    awaits every one still running. Exit is safe to call twice."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self._tasks.append(task)
        return task

    @property
    def tasks(self) -> tuple[asyncio.Task[Any], ...]:
        return tuple(self._tasks)

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)

    async def __aenter__(self) -> BackgroundTasks:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
