"""Holding writes inside PostgreSQL, for tests of what cuts them off there.

Another session locks the outbox, whose row every write's one statement writes last: a create
or a status change then waits inside PostgreSQL, its other rows written, until the lock is
released or something ends the statement (a deadline, a statement timeout, the session's end).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg


@contextlib.asynccontextmanager
async def outbox_locked(db: asyncpg.Connection) -> AsyncIterator[None]:
    """Writes wait inside PostgreSQL until the block ends (`db`'s transaction is rolled back)."""
    holding = db.transaction()
    await holding.start()
    try:
        await db.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        await holding.rollback()
