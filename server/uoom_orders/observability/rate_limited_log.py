"""Log lines a caller can provoke at will (garbage requests, cancelled calls), rate-limited so a
misbehaving client cannot flood the logs: at most one line per kind per interval, and the next
line says how many were left out. The metrics count every occurrence."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    last: float
    suppressed: int = 0


class RateLimitedLog:
    """`log.warning(kind, message, *args)` writes at most one line per `kind` per `interval`
    seconds, never with a traceback."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def warning(self, kind: str, message: str, *args: object) -> bool:
        """Logs unless a line of this kind was logged within the interval; True when logged."""
        return self._log(logging.WARNING, kind, message, args)

    def _log(self, level: int, kind: str, message: str, args: tuple[object, ...]) -> bool:
        now = self._clock()
        window = self._windows.get(kind)
        if window is not None and now - window.last < self._interval:
            window.suppressed += 1
            return False
        suppressed = 0 if window is None else window.suppressed
        self._windows[kind] = _Window(last=now)
        if suppressed:
            message += " (and %d more like it since the last such line)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args)
        return True
