"""Log records about what callers do, turned into counts and rate-limited warnings.

grpc and asyncpg report some consequences of a caller's own doing (a caller that left before its
answer, a cancel request after a deadline) as errors with tracebacks; a client could fill the
logs with them. Each is counted and logged at most once per interval instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uoom_orders.observability import metrics
from uoom_orders.observability.rate_limited_log import RateLimitedLog

# The logger grpc's asyncio server logs its handler failures to.
GRPC_CORE_LOGGER = "grpc._cython.cygrpc"

_log = logging.getLogger(__name__)


class ClientGoneFilter(logging.Filter):
    """grpc logs an ERROR with a traceback when it cannot send an answer because the caller has
    gone (its deadline passed or it cancelled between our return and the send): the caller's
    doing, not a fault of the service. This turns each such record into a count and a
    rate-limited one-line warning."""

    _PREFIX = "ExecuteBatchError raised in core by servicer method"

    def __init__(self, methods: frozenset[str]) -> None:
        super().__init__()
        self._methods = methods
        self._log = RateLimitedLog(_log)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(self._PREFIX):
            return True
        method = message.rpartition("/")[2].rstrip("]")
        if method not in self._methods:  # a label from our own list only, never from a message
            method = "other"
        metrics.RPC_CANCELLED.labels(method=method).inc()
        self._log.warning("gone", "%s: the caller left before its answer was sent", method)
        return False


class CancelRequestNoise:
    """A loop exception handler for one known failure of asyncpg's cancel requests.

    When a call's deadline cuts off a PostgreSQL statement, asyncpg sends PostgreSQL a cancel
    request on a new connection; when that connection's TLS negotiation is cut short, asyncpg
    (0.30 to 0.32) leaves a future's ConnectionError("unexpected connection_lost() call")
    unretrieved, which asyncio logs as an ERROR with a traceback
    (https://github.com/MagicStack/asyncpg/issues/1310). asyncpg then replaces the connection;
    nothing is lost. That one case becomes a rate-limited warning; everything else goes to the
    handler that was there before."""

    _MESSAGE = "unexpected connection_lost() call"

    def __init__(self, log: RateLimitedLog) -> None:
        self._log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._previous = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self._handle)

    def uninstall(self) -> None:
        if self._loop is not None and self._loop.get_exception_handler() == self._handle:
            self._loop.set_exception_handler(self._previous)
        self._loop = None

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if type(error) is ConnectionError and str(error) == self._MESSAGE:
            self._log.warning(
                "cancel-request",
                "a cancel request to PostgreSQL for a cut-off call failed (asyncpg issue "
                "1310); the connection is replaced",
            )
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
