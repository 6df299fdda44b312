"""Structured logs: one JSON object per line, trace ids inside a span, LOG_FORMAT."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from uoom_orders.config import ConfigError, read_setting
from uoom_orders.observability.logs import log_handler


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own that does not propagate to the root (nor to pytest's capture)."""
    log = logging.getLogger("tests.unit.test_logs")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()
    log.propagate = True


def _lines(logger: logging.Logger, log_format: str, emit: Any) -> list[str]:
    stream = io.StringIO()
    handler = log_handler(log_format, stream)
    logger.addHandler(handler)
    try:
        emit()
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_json_line_has_time_level_logger_message_and_extra_fields(
    logger: logging.Logger,
) -> None:
    [line] = _lines(
        logger,
        "json",
        lambda: logger.warning("order %s moved", "o-1", extra={"order_id": "o-1", "version": 3}),
    )
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "tests.unit.test_logs"
    assert entry["message"] == "order o-1 moved"
    assert entry["order_id"] == "o-1"
    assert entry["version"] == 3
    assert entry["time"].endswith("Z")
    assert "trace_id" not in entry  # not inside a span
    assert "span_id" not in entry
    # Nothing of the LogRecord's own bookkeeping leaks in as a field.
    assert set(entry) == {"time", "level", "logger", "message", "order_id", "version"}


def test_json_line_inside_a_span_carries_its_trace_and_span_ids(logger: logging.Logger) -> None:
    provider = TracerProvider()  # not global: only its spans' ids are needed
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        [line] = _lines(logger, "json", lambda: logger.info("inside"))
    context = span.get_span_context()
    entry = json.loads(line)
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
    provider.shutdown()


def test_an_exception_stays_on_one_json_line(logger: logging.Logger) -> None:
    def emit() -> None:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")

    [line] = _lines(logger, "json", emit)
    entry = json.loads(line)
    assert entry["message"] == "failed"
    assert "RuntimeError: boom" in entry["exception"]
    assert "Traceback" in entry["exception"]


def test_extra_values_json_cannot_take_are_written_as_text(logger: logging.Logger) -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    [line] = _lines(
        logger, "json", lambda: logger.info("odd", extra={"when": object, "cycle": cyclic})
    )
    entry = json.loads(line)
    assert entry["when"] == "<class 'object'>"
    assert entry["cycle"] == "[[...]]"


def test_text_lines_are_plain_and_add_trace_ids_inside_a_span(logger: logging.Logger) -> None:
    [outside] = _lines(logger, "text", lambda: logger.info("hello"))
    assert outside.endswith(" INFO tests.unit.test_logs hello")
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("work") as span:
        [inside] = _lines(logger, "text", lambda: logger.info("hello"))
    assert f"hello trace_id={format(span.get_span_context().trace_id, '032x')}" in inside
    provider.shutdown()


@pytest.mark.parametrize(
    ("env", "default", "expected"),
    [
        ({}, "json", "json"),
        ({}, "text", "text"),
        ({"LOG_FORMAT": "text"}, "json", "text"),
        ({"LOG_FORMAT": " JSON "}, "text", "json"),
        ({"LOG_FORMAT": ""}, "text", "text"),
    ],
)
def test_log_format_comes_from_log_format_or_the_commands_default(
    env: dict[str, str], default: str, expected: str
) -> None:
    assert (read_setting("log_format", env) or default) == expected


def test_a_bad_log_format_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        read_setting("log_format", {"LOG_FORMAT": "xml"})
