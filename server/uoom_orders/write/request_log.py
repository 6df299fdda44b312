"""AIP-155: the first response to each request_id, kept for the request's retries."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    fingerprint: bytes
    response: bytes


class DuplicateRequest(Exception):
    """Another transaction recorded the same request_id first."""


class PostgresRequestLog:
    _FIND = "SELECT method, request_hash, response FROM request_log WHERE request_id = $1"
    _RECORD = """
        INSERT INTO request_log (request_id, method, request_hash, response)
        VALUES ($1, $2, $3, $4)
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._conn = connection

    async def find(self, request_id: UUID) -> LoggedRequest | None:
        row = await self._conn.fetchrow(self._FIND, request_id)
        if row is None:
            return None
        return LoggedRequest(row["method"], bytes(row["request_hash"]), bytes(row["response"]))

    async def record(
        self, request_id: UUID, method: str, fingerprint: bytes, response: bytes
    ) -> None:
        """Raises DuplicateRequest when a concurrent transaction holds the same request_id."""
        try:
            await self._conn.execute(self._RECORD, request_id, method, fingerprint, response)
        except asyncpg.UniqueViolationError as error:
            raise DuplicateRequest(str(request_id)) from error
