"""A failed call's AIP-193 details, read as any client reads them (no help from our client)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.rpc import error_details_pb2, status_pb2

from tests.support.error_size import trailers_size


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[tuple[str, str]] = field(default_factory=list)
    # Seconds, from a google.rpc.RetryInfo; None without one.
    retry_delay: float | None = None
    size: int = 0  # bytes of trailing metadata, as the client's limit counts them


class FailedCall(Protocol):
    """What a failed call offers, sync (grpc.RpcError) or asyncio (grpc.aio.AioRpcError)."""

    def code(self) -> grpc.StatusCode: ...
    def details(self) -> str | None: ...
    def trailing_metadata(self) -> Any: ...


def rich_error(error: FailedCall) -> RichError:
    trailers = [(key, value) for key, value in (error.trailing_metadata() or ())]
    found = RichError(
        error.code(),
        error.details() or "",
        size=trailers_size(error.code().value[0], error.details() or "", trailers),
    )
    for key, value in trailers:
        if key != "grpc-status-details-bin":
            continue
        assert isinstance(value, bytes)
        for packed in status_pb2.Status.FromString(value).details:
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                found.reason, found.metadata = info.reason, dict(info.metadata)
            elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                packed.Unpack(bad)
                found.violations = [(v.field, v.description) for v in bad.field_violations]
            elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                packed.Unpack(retry)
                found.retry_delay = retry.retry_delay.ToNanoseconds() / 1e9
    return found
