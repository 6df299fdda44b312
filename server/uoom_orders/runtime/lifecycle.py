"""The one lifecycle of every long-running part: `async with part:` starts it and stops it."""

from __future__ import annotations

from typing import Self


class LongRunning:
    """Entering means running (`start` returned: connected, its loops started); exiting means
    drained (`stop` returned: work in flight finished or abandoned safely, connections closed).
    `stop` is safe to call twice, and after a failed start."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
