"""Errors the domain and the application raise; api/status_mapping.py maps each to a gRPC code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field; `field` is the request field's path, e.g. `items[2].quantity`."""

    field: str
    description: str


@dataclass
class OrderServiceError(Exception):
    """Base of the errors a caller can cause; `reason` is an UPPER_SNAKE ErrorInfo reason."""

    message: str
    reason: str = "ORDER_SERVICE_ERROR"
    metadata: dict[str, str] = field(default_factory=dict)
    # When set, the caller may retry after this many seconds (a google.rpc.RetryInfo).
    retry_delay: float | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class InvalidInput(OrderServiceError):
    """Bad input. AIP-193: it always names the bad fields, so `violations` is never empty."""

    reason: str = "INVALID_ARGUMENT"
    violations: Sequence[FieldViolation] = ()

    def __post_init__(self) -> None:
        if not self.violations:
            raise ValueError("InvalidInput needs at least one field violation")


@dataclass
class OrderNotFound(OrderServiceError):
    reason: str = "ORDER_NOT_FOUND"


@dataclass
class IllegalTransition(OrderServiceError):
    reason: str = "ILLEGAL_STATUS_TRANSITION"


@dataclass
class VersionConflict(OrderServiceError):
    reason: str = "VERSION_MISMATCH"


@dataclass
class VersionNotReached(OrderServiceError):
    """The caller asked for a version the order has not reached (min_version)."""

    reason: str = "VERSION_NOT_REACHED"


@dataclass
class RequestIdReused(InvalidInput):
    """A request_id came back with a different request than the first time."""

    reason: str = "REQUEST_ID_REUSED"


@dataclass
class StoreUnavailable(OrderServiceError):
    """A store the request needs cannot be reached; the caller may retry."""

    reason: str = "STORE_UNAVAILABLE"


@dataclass
class WatchInterrupted(OrderServiceError):
    """A watch cannot go on here: this replica's event feed is not live (FEED_NOT_LIVE), the
    replica shuts down (SHUTTING_DOWN), or the caller fell too far behind (WATCH_TOO_SLOW).
    The caller resumes, on any replica, from the last version or resume token it received."""

    reason: str = "FEED_NOT_LIVE"


@dataclass
class TooManyWatches(OrderServiceError):
    """This replica holds as many watches as it may (WATCH_MAX_STREAMS)."""

    reason: str = "TOO_MANY_WATCHES"


@dataclass
class WatchesOff(OrderServiceError):
    """This replica does not follow the event topic (no near cache), so it cannot watch."""

    reason: str = "WATCHES_OFF"
