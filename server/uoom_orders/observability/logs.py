"""Log lines: JSON for collectors (one object per line) or text for people, both carrying the
current trace and span ids, so a log line leads to its trace and back.

`LOG_FORMAT=json|text` chooses; the default depends on the command (json for `serve`, text
for the local stack's `python -m uoom_orders_devstack`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "TextFormatter",
    "TraceContextFilter",
    "configure_logging",
    "log_handler",
]

LOG_FORMATS = ("json", "text")

# What every LogRecord has; anything else on a record came from `extra=` and is logged as a
# field of its own. (`taskName` is a record attribute from Python 3.12 on.)
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "trace_id",
    "span_id",
}
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class TraceContextFilter(logging.Filter):
    """Stamps each record with the current span's `trace_id` and `span_id` (hex, as W3C and
    every tracing UI show them) when there is a valid span.

    A filter, not the formatter, because it runs in the thread and task that logged: a handler
    that formats later or elsewhere (a queue) would see another context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, trace_id and
    span_id inside a span, the `extra` fields, and the exception or stack when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "span_id", None)
        extra = {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and key not in entry
        }
        entry.update(extra)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            # An extra value json cannot take even as text (a cycle, a non-text key): the line
            # must still be written, so those values go as their repr.
            entry.update({key: repr(value) for key, value in extra.items()})
            return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain `time level logger message` line, with the trace and span ids when present."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:
            return line
        ids = f" trace_id={trace_id} span_id={getattr(record, 'span_id', '')}"
        first, newline, rest = line.partition("\n")  # a traceback stays below the ids
        return f"{first}{ids}{newline}{rest}"


def log_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing `log_format` lines with trace ids."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(TraceContextFilter())
    return handler


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Root logging at `level` through one `log_handler`; like `logging.basicConfig`, does
    nothing when the root logger already has handlers."""
    logging.basicConfig(level=level, handlers=[log_handler(log_format, stream)])
