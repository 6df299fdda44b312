"""Typed exceptions for failed OrderService calls, decoded from google.rpc.Status details."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
import grpc.aio
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field, from a google.rpc.BadRequest detail."""

    field: str
    description: str


class OrderServiceError(Exception):
    """A failed OrderService call; the base of every error the client raises for a status.

    ``reason`` and ``metadata`` come from the google.rpc.ErrorInfo detail,
    ``field_violations`` from the google.rpc.BadRequest detail, and ``retry_delay`` (seconds)
    from the google.rpc.RetryInfo detail, when the server sent them.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_delay: float | None = None,
    ) -> None:
        self.code = code
        self.retry_delay = retry_delay
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: list[FieldViolation] = list(field_violations)
        text = f"{code.name}: {message}"
        if reason:
            text += f" (reason={reason})"
        super().__init__(text)


class InvalidArgumentError(OrderServiceError):
    """INVALID_ARGUMENT: the request is malformed; see ``field_violations``."""


class NotFoundError(OrderServiceError):
    """NOT_FOUND: the order does not exist."""


class FailedPreconditionError(OrderServiceError):
    """FAILED_PRECONDITION: the lifecycle forbids the move, or min_version was never reached."""


class AbortedError(OrderServiceError):
    """ABORTED: expected_version is not the order's current version."""


class AlreadyExistsError(OrderServiceError):
    """ALREADY_EXISTS: the resource exists already."""


class UnavailableError(OrderServiceError):
    """UNAVAILABLE: the service could not be reached, after the channel's retries."""


class DeadlineExceededError(OrderServiceError):
    """DEADLINE_EXCEEDED: the call did not finish within its timeout."""


class PermissionDeniedError(OrderServiceError):
    """PERMISSION_DENIED: the caller may not do this."""


class UnauthenticatedError(OrderServiceError):
    """UNAUTHENTICATED: the caller's credentials are missing or invalid."""


class ResourceExhaustedError(OrderServiceError):
    """RESOURCE_EXHAUSTED: a quota or rate limit was hit."""


class InternalError(OrderServiceError):
    """INTERNAL: the server failed."""


# The one place that decides which exception a status code becomes; any other code
# raises a plain OrderServiceError.
_ERROR_TYPES: Mapping[grpc.StatusCode, type[OrderServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.INTERNAL: InternalError,
}


def error_from_rpc_error(error: grpc.aio.AioRpcError) -> OrderServiceError:
    """The typed exception for a failed call, with its ErrorInfo and BadRequest details."""
    code = error.code()
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    for detail in _status_details(error):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = str(info.reason) or None
            metadata = {str(key): str(value) for key, value in info.metadata.items()}
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(
                FieldViolation(field=str(v.field), description=str(v.description))
                for v in bad_request.field_violations
            )
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(retry_info)
            retry_delay = retry_info.retry_delay.ToNanoseconds() / 1e9
    error_type = _ERROR_TYPES.get(code, OrderServiceError)
    return error_type(
        code,
        error.details() or "",
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        retry_delay=retry_delay,
    )


def _status_details(error: grpc.aio.AioRpcError) -> list[Any]:
    """The google.protobuf.Any details of the call's google.rpc.Status, if it sent one."""
    try:
        # AioRpcError has the synchronous code(), details() and trailing_metadata() that
        # from_call reads; the stubs type from_call for grpc.Call only.
        status = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:
        # The Status proto disagrees with the call's code or message: trust the call.
        return []
    if status is None:
        return []
    return list(status.details)
