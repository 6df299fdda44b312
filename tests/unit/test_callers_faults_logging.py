"""What a caller provokes at will is counted and logged at most once per interval, without a
traceback: the rate limiter, grpc's "client gone" errors and asyncpg's cancel-request noise."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import REGISTRY

from uoom_orders.api.caller_fault_logs import CancelRequestNoise, ClientGoneFilter
from uoom_orders.observability.rate_limited_log import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_per_interval_then_a_count_of_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    log = RateLimitedLog(logging.getLogger("test.limited"), interval=10, clock=clock)
    assert log.warning("a", "first %s", "a")
    assert not log.warning("a", "again")
    assert not log.warning("a", "again")
    assert log.warning("b", "other kind")
    clock.now = 10.0
    assert log.warning("a", "later %s", "a")
    assert [r.getMessage() for r in caplog.records] == [
        "first a",
        "other kind",
        "later a (and 2 more like it since the last such line)",
    ]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)


def _record(message: str, *args: object) -> logging.LogRecord:
    try:
        raise RuntimeError("ExecuteBatchError")
    except RuntimeError as error:
        exc_info = (type(error), error, error.__traceback__)
    return logging.LogRecord(
        "grpc._cython.cygrpc", logging.ERROR, __file__, 1, message, args, exc_info
    )


def test_grpcs_client_gone_error_becomes_a_count_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    gone = ClientGoneFilter(frozenset({"CreateOrder"}))
    before = REGISTRY.get_sample_value("grpc_server_cancelled_total", {"method": "CreateOrder"})
    for _ in range(5):
        record = _record(
            "ExecuteBatchError raised in core by servicer method [%s]",
            "/uoom.orders.v1.OrderService/CreateOrder",
        )
        assert gone.filter(record) is False  # dropped, traceback and all
    after = REGISTRY.get_sample_value("grpc_server_cancelled_total", {"method": "CreateOrder"})
    assert (after or 0) - (before or 0) == 5
    assert [r.getMessage() for r in caplog.records] == [
        "CreateOrder: the caller left before its answer was sent"
    ]
    assert gone.filter(_record("Unexpected [ValueError] raised by servicer method")) is True


async def test_asyncpgs_cancel_request_noise_is_one_warning_and_the_rest_passes_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    seen: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: seen.append(context))
    noise = CancelRequestNoise(RateLimitedLog(logging.getLogger("test.noise")))
    noise.install()
    try:
        for _ in range(3):
            loop.call_exception_handler(
                {
                    "message": "Future exception was never retrieved",
                    "exception": ConnectionError("unexpected connection_lost() call"),
                }
            )
        other = {"message": "something else", "exception": ConnectionError("refused")}
        loop.call_exception_handler(other)
    finally:
        noise.uninstall()
        handler = loop.get_exception_handler()
        loop.set_exception_handler(previous)
    assert handler is not None  # the one before ours is back
    assert seen == [other]
    assert len(caplog.records) == 1
    assert "asyncpg issue 1310" in caplog.records[0].getMessage()
