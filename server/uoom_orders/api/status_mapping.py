"""The one table that decides which gRPC status an error becomes (AIP-193 rich details)."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from uoom_orders.domain import errors
from uoom_orders.postgres_outages import POSTGRES_UNAVAILABLE

ERROR_DOMAIN = "orders.uoom"

_log = logging.getLogger(__name__)

# An error travels in trailing metadata (grpc-message, percent-encoded, and
# grpc-status-details-bin, base64), which gRPC clients cap by default at 8 KiB (soft: above it
# some calls fail) and 16 KiB (hard) for all metadata together; a client over the limit gets
# RESOURCE_EXHAUSTED instead of the error. So every part of an error has a fixed bound, and the
# whole stays under ERROR_BUDGET_BYTES on the wire, whatever the request was.
MAX_FIELD_VIOLATIONS = 10
MAX_FIELD_CHARS = 64
MAX_DESCRIPTION_CHARS = 160
MAX_MESSAGE_CHARS = 240
MAX_REASON_CHARS = 64
MAX_METADATA_ENTRIES = 6  # of the error's own; the violation counts come on top
MAX_METADATA_KEY_CHARS = 32
MAX_METADATA_VALUE_CHARS = 64
ERROR_BUDGET_BYTES = 6 * 1024

_DOMAIN_CODES: dict[type[errors.OrderServiceError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.RequestIdReused: grpc.StatusCode.INVALID_ARGUMENT,
    errors.OrderNotFound: grpc.StatusCode.NOT_FOUND,
    errors.IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionNotReached: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionConflict: grpc.StatusCode.ABORTED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.WatchInterrupted: grpc.StatusCode.UNAVAILABLE,
    errors.TooManyWatches: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.WatchesOff: grpc.StatusCode.UNIMPLEMENTED,
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def bounded(text: str, limit: int) -> str:
    """`text` as printable ASCII (other characters escaped as in Python literals), cut to at
    most `limit` characters. gRPC percent-encodes every other byte of a status message (one
    non-ASCII character could take 12 bytes), so escaping also keeps the size predictable."""
    if not (text.isascii() and text.isprintable()):
        # Escapes only lengthen the text, so its first `limit` characters are enough.
        text = "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in text[:limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_info(error: errors.OrderServiceError, omitted: int, total: int) -> any_pb2.Any:
    metadata = {
        bounded(key, MAX_METADATA_KEY_CHARS): bounded(value, MAX_METADATA_VALUE_CHARS)
        for key, value in list(error.metadata.items())[:MAX_METADATA_ENTRIES]
    }
    if omitted:
        metadata["field_violations"] = str(total)
        metadata["field_violations_omitted"] = str(omitted)
    return _pack(
        error_details_pb2.ErrorInfo(
            reason=bounded(error.reason, MAX_REASON_CHARS), domain=ERROR_DOMAIN, metadata=metadata
        )
    )


def domain_status(error: errors.OrderServiceError) -> grpc.Status:
    """The status of a domain error, bounded whatever the request was: at most
    MAX_FIELD_VIOLATIONS violations (ErrorInfo counts the rest), every text cut to its limit;
    a RetryInfo when the error says when to retry."""
    code = _DOMAIN_CODES.get(type(error), grpc.StatusCode.FAILED_PRECONDITION)
    violations = error.violations if isinstance(error, errors.InvalidInput) else ()
    shown = violations[:MAX_FIELD_VIOLATIONS]
    details = [_error_info(error, len(violations) - len(shown), len(violations))]
    if error.retry_delay is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(0.0, error.retry_delay) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if shown:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=bounded(v.field, MAX_FIELD_CHARS),
                            description=bounded(v.description, MAX_DESCRIPTION_CHARS),
                        )
                        for v in shown
                    ]
                )
            )
        )
    return rpc_status.to_status(
        status_pb2.Status(
            code=code.value[0],
            message=bounded(error.message, MAX_MESSAGE_CHARS),
            details=details,
        )
    )


def status_for(error: BaseException, method: str) -> grpc.Status:
    """The status to answer `error` with; unexpected errors are logged, never shown."""
    if isinstance(error, errors.OrderServiceError):
        return domain_status(error)
    # Failures of the infrastructure, not of the request: the caller may retry.
    if isinstance(error, POSTGRES_UNAVAILABLE):
        _log.warning("%s: store unavailable: %r", method, error)
        return domain_status(
            errors.StoreUnavailable("a store the service needs is unavailable; retry later")
        )
    _log.exception("%s failed unexpectedly", method, exc_info=error)
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message="internal error",
            details=[_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))],
        )
    )
