"""asyncpg's pool logs its failed reconnections: a PostgreSQL outage as one line, anything else
with its traceback."""

from __future__ import annotations

import logging
import sys

import asyncpg
import pytest

from uoom_orders.observability.logs import JsonFormatter
from uoom_orders.postgres_pools import PoolOutageLines


def _record(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    # As asyncpg 0.32's Pool._maintain_min_size logs it.
    return logging.LogRecord(
        "asyncpg.pool",
        logging.WARNING,
        "pool.py",
        571,
        "Failed to restore the pool connection floor; retrying",
        None,
        exc_info,
    )


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        TimeoutError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_outage_is_one_line_with_its_error(error: BaseException) -> None:
    record = _record(error)
    assert PoolOutageLines().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == (
        f"Failed to restore the pool connection floor; retrying: {error!r}"
    )
    assert "exception" not in JsonFormatter().format(record)


def test_anything_else_keeps_its_traceback() -> None:
    record = _record(RuntimeError("a bug"))
    assert PoolOutageLines().filter(record)
    assert record.exc_info is not None
    assert "Traceback" in JsonFormatter().format(record)
