"""The read model's times: ISO-8601 UTC strings with a fixed six-digit fraction
("2024-01-15T13:00:00.000000Z"). Fixed width makes string order equal time order, which the
GSIs' `updatedAt` range key needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1)  # naive UTC: isoformat() then never appends an offset
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(ts: Timestamp) -> str:
    """ "2024-01-15T13:00:00.000000Z": fixed width, so string order is time order.

    Nanoseconds below the microsecond are truncated (never rounded: rounding up could move a
    time past a later one); the service's times come from PostgreSQL and have none.
    """
    moment = _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
    return moment.isoformat(timespec="microseconds") + "Z"


def format_datetime(value: datetime) -> str:
    """The same format for an aware datetime, e.g. a GSI range-key bound on `updatedAt`."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; give it a time zone")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> Timestamp:
    """Inverse of `format_timestamp`; raises ValueError for any other shape."""
    try:
        moment = datetime.strptime(text, _TIME_FORMAT)
    except (TypeError, ValueError):
        moment = None
    # strptime also takes unpadded fields; only the exact fixed-width form sorts correctly.
    if moment is None or moment.isoformat(timespec="microseconds") + "Z" != text:
        raise ValueError(f"not a {_TIME_FORMAT} time: {text!r}")
    delta = moment - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)
