"""The relay's wake-up call: a LISTEN connection that turns every NOTIFY into a wake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from uoom_orders.runtime.retry import Backoff
from uoom_orders.write.outbox import OUTBOX_CHANNEL

_log = logging.getLogger(__name__)

# The LISTEN connection is checked this often: a connection that died without a FIN (a network
# partition) would otherwise look alive and stop delivering notifications.
_CHECK_SECONDS = 10.0
_CHECK_TIMEOUT = 5.0


class NotifyListener:
    """Keeps a LISTEN connection up until `stopping` is set, reconnecting by the retry policy;
    calls `wake` on every NOTIFY and whenever the connection is (re)made, since rows committed
    while nobody listened sent their NOTIFY into the void."""

    def __init__(
        self,
        database_url: str,
        application_name: str,
        wake: Callable[[], None],
        stopping: asyncio.Event,
        backoff_max: float,
    ) -> None:
        self._database_url = database_url
        self._application_name = application_name
        self._wake = wake
        self._stopping = stopping
        self._backoff = Backoff(min(0.1, backoff_max), backoff_max)
        self.listening = False

    async def run(self) -> None:
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._database_url,
                    server_settings={"application_name": f"{self._application_name}-listen"},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(OUTBOX_CHANNEL, self._on_notify)
                self.listening = True
                if self._backoff.failures:
                    _log.info("outbox relay: LISTEN %s restored", OUTBOX_CHANNEL)
                self._backoff.reset()
                self._wake()
                await self._watch(conn, lost)
                if not self._stopping.is_set():
                    _log.warning("outbox relay: LISTEN connection lost; polling until it is back")
            except Exception as error:
                _log.warning("outbox relay: LISTEN %s failed: %s", OUTBOX_CHANNEL, error)
            finally:
                self.listening = False
                if conn is not None:
                    await close_quietly(conn)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._backoff.next_delay())

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection is lost, fails a liveness check, or the relay stops."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), _CHECK_SECONDS)
            if lost.is_set() or conn.is_closed() or self._stopping.is_set():
                return
            await conn.fetchval("SELECT 1", timeout=_CHECK_TIMEOUT)

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._wake()


async def close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), _CHECK_TIMEOUT)
    except Exception:
        conn.terminate()
