"""The one table that decides which gRPC status an error becomes (AIP-193 rich details)."""

from __future__ import annotations

import logging

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from uoom_orders.domain import errors

ERROR_DOMAIN = "orders.uoom"

_log = logging.getLogger(__name__)

_DOMAIN_CODES: dict[type[errors.OrderServiceError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.RequestIdReused: grpc.StatusCode.INVALID_ARGUMENT,
    errors.OrderNotFound: grpc.StatusCode.NOT_FOUND,
    errors.IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionNotReached: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionConflict: grpc.StatusCode.ABORTED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}

# Failures of the infrastructure, not of the request: the caller may retry.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def domain_status(error: errors.OrderServiceError) -> grpc.Status:
    code = _DOMAIN_CODES.get(type(error), grpc.StatusCode.FAILED_PRECONDITION)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
            )
        )
    ]
    if isinstance(error, errors.InvalidInput) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=error.message, details=details)
    )


def status_for(error: BaseException, method: str) -> grpc.Status:
    """The status to answer `error` with; unexpected errors are logged, never shown."""
    if isinstance(error, errors.OrderServiceError):
        return domain_status(error)
    if isinstance(error, _UNAVAILABLE):
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
