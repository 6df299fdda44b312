"""AIP-155: the first answer to each request_id, kept for the request's retries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders.application.ports import DuplicateRequest, LoggedRequest

INSERT_REQUEST_COLUMNS = "INSERT INTO request_log (request_id, method, request_hash, response)"
"""The head of a request's INSERT; its values: request_id, method, fingerprint, encoded answer."""


@contextlib.contextmanager
def duplicate_request_refused(request_id: UUID) -> Iterator[None]:
    """A statement logging `request_id`: its unique violation on the request log is raised as
    DuplicateRequest (any other, say an order's id, as itself)."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        if error.table_name == "request_log":
            raise DuplicateRequest(str(request_id)) from error
        raise


def logged_request(
    method: str, request_hash: bytes, response: bytes
) -> LoggedRequest[order_pb2.Order]:
    """A request_log row's entry: its method, fingerprint and encoded answer."""
    return LoggedRequest(method, bytes(request_hash), order_pb2.Order.FromString(bytes(response)))


class PostgresRequestLog:
    """The request log of a unit of work; answers are kept as encoded `Order` messages."""

    _FIND = "SELECT method, request_hash, response FROM request_log WHERE request_id = $1"
    _RECORD = f"{INSERT_REQUEST_COLUMNS} VALUES ($1, $2, $3, $4)"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._conn = connection

    async def find(self, request_id: UUID) -> LoggedRequest[order_pb2.Order] | None:
        row = await self._conn.fetchrow(self._FIND, request_id)
        if row is None:
            return None
        return logged_request(row["method"], row["request_hash"], row["response"])

    async def record(
        self, request_id: UUID, method: str, fingerprint: bytes, answer: order_pb2.Order
    ) -> None:
        """Raises DuplicateRequest when a concurrent transaction holds the same request_id."""
        with duplicate_request_refused(request_id):
            await self._conn.execute(
                self._RECORD, request_id, method, fingerprint, answer.SerializeToString()
            )
