"""Errors as the client receives them: the code from the one table, AIP-193 details, and a size
that fits a default gRPC client whatever the request was."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.error_size import DEFAULT_SOFT_LIMIT, percent_encoded, trailers_size
from uoom_orders.api import status_mapping
from uoom_orders.api.status_mapping import (
    ERROR_BUDGET_BYTES,
    MAX_DESCRIPTION_CHARS,
    MAX_FIELD_VIOLATIONS,
    MAX_MESSAGE_CHARS,
    domain_status,
)
from uoom_orders.domain import errors
from uoom_orders.domain.errors import FieldViolation, InvalidInput


def decoded(status: grpc.Status) -> tuple[status_pb2.Status, dict[str, object]]:
    """The google.rpc.Status in the trailers and its details by type name."""
    (key, value), *_ = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    rich = status_pb2.Status.FromString(value)
    details: dict[str, object] = {}
    for packed in rich.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                details[kind.DESCRIPTOR.name] = message
    return rich, details


def size_of(status: grpc.Status) -> int:
    return trailers_size(status.code.value[0], status.details, status.trailing_metadata)


def test_every_invalid_input_names_at_least_one_field() -> None:
    with pytest.raises(ValueError, match="field violation"):
        InvalidInput("bad")


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (errors.WatchInterrupted("feed down", retry_delay=1.0), "UNAVAILABLE", "FEED_NOT_LIVE"),
        (
            errors.WatchInterrupted("bye", reason="SHUTTING_DOWN", retry_delay=0.25),
            "UNAVAILABLE",
            "SHUTTING_DOWN",
        ),
        (errors.TooManyWatches("full", retry_delay=1.0), "RESOURCE_EXHAUSTED", "TOO_MANY_WATCHES"),
    ],
)
def test_watch_errors_carry_a_retry_hint(
    error: errors.OrderServiceError, code: str, reason: str
) -> None:
    status = domain_status(error)
    assert status.code.name == code
    _, details = decoded(status)
    assert details["ErrorInfo"].reason == reason  # type: ignore[attr-defined]
    delay = details["RetryInfo"].retry_delay  # type: ignore[attr-defined]
    assert delay.ToNanoseconds() == int(error.retry_delay * 1e9)  # type: ignore[operator]


def test_errors_without_a_retry_delay_carry_no_retry_info() -> None:
    _, details = decoded(domain_status(errors.StoreUnavailable("down")))
    assert "RetryInfo" not in details


def test_request_id_reused_is_invalid_argument_with_a_violation_on_request_id() -> None:
    error = errors.RequestIdReused(
        "request_id reused",
        metadata={"request_id": "550e8400-e29b-41d4-a716-446655440000"},
        violations=(FieldViolation("request_id", "already used"),),
    )
    status = domain_status(error)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    _, details = decoded(status)
    assert details["ErrorInfo"].reason == "REQUEST_ID_REUSED"  # type: ignore[attr-defined]
    violations = details["BadRequest"].field_violations  # type: ignore[attr-defined]
    assert [v.field for v in violations] == ["request_id"]


def test_many_violations_are_cut_to_the_first_ones_with_a_count_of_the_rest() -> None:
    # The case: 100 items with quantity 0.
    violations = tuple(
        FieldViolation(f"items[{n}].quantity", "must be between 1 and 1000, got 0")
        for n in range(100)
    )
    status = domain_status(InvalidInput("invalid request", violations=violations))
    _, details = decoded(status)
    shown = details["BadRequest"].field_violations  # type: ignore[attr-defined]
    assert [v.field for v in shown] == [f"items[{n}].quantity" for n in range(10)]
    assert dict(details["ErrorInfo"].metadata) == {  # type: ignore[attr-defined]
        "field_violations": "100",
        "field_violations_omitted": "90",
    }
    assert size_of(status) < 2 * 1024


def test_few_violations_are_all_shown_without_counts() -> None:
    violations = (FieldViolation("customer_id", "required"),)
    _, details = decoded(domain_status(InvalidInput("bad", violations=violations)))
    assert len(details["BadRequest"].field_violations) == 1  # type: ignore[attr-defined]
    assert dict(details["ErrorInfo"].metadata) == {}  # type: ignore[attr-defined]


def test_the_worst_case_fits_the_budget() -> None:
    """Every part at its limit, in the characters that cost most on the wire."""
    worst = "%" * 10_000 + "\U0001f600" * 10_000
    error = InvalidInput(
        worst,
        reason=worst,
        metadata={f"{n}{worst}": worst for n in range(50)},
        violations=tuple(FieldViolation(worst + str(n), worst) for n in range(500)),
    )
    status = domain_status(error)
    assert size_of(status) <= ERROR_BUDGET_BYTES < DEFAULT_SOFT_LIMIT
    assert len(percent_encoded(status.details)) <= 3 * MAX_MESSAGE_CHARS


def test_texts_are_cut_and_escaped_to_printable_ascii() -> None:
    assert status_mapping.bounded("plain", 10) == "plain"
    assert status_mapping.bounded("x" * 20, 10) == "x" * 7 + "..."
    assert status_mapping.bounded("caf\u00e9\n", 20) == "caf\\xe9\\n"
    long = status_mapping.bounded("\u00e9" * 1000, MAX_DESCRIPTION_CHARS)
    assert len(long) == MAX_DESCRIPTION_CHARS
    assert long.isascii()
    assert long.isprintable()


@settings(max_examples=200, deadline=None)
@given(
    message=st.text(),
    reason=st.text(),
    metadata=st.dictionaries(st.text(), st.text(), max_size=20),
    violations=st.lists(st.builds(FieldViolation, st.text(), st.text()), min_size=1, max_size=150),
)
def test_any_invalid_input_fits_the_budget_and_keeps_its_violations(
    message: str, reason: str, metadata: dict[str, str], violations: list[FieldViolation]
) -> None:
    status = domain_status(
        InvalidInput(message, reason=reason, metadata=metadata, violations=tuple(violations))
    )
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert size_of(status) <= ERROR_BUDGET_BYTES
    rich, details = decoded(status)
    assert rich.message == status.details
    shown = details["BadRequest"].field_violations  # type: ignore[attr-defined]
    assert len(shown) == min(len(violations), MAX_FIELD_VIOLATIONS)
    info = dict(details["ErrorInfo"].metadata)  # type: ignore[attr-defined]
    if len(violations) > MAX_FIELD_VIOLATIONS:
        assert info["field_violations"] == str(len(violations))
        assert info["field_violations_omitted"] == str(len(violations) - MAX_FIELD_VIOLATIONS)


def test_unexpected_errors_are_internal_without_their_text() -> None:
    status = status_mapping.status_for(RuntimeError("secret detail"), "GetOrderStatus")
    assert status.code is grpc.StatusCode.INTERNAL
    assert status.details == "internal error"
    rich, _ = decoded(status)
    assert "secret" not in str(rich)
    assert isinstance(rich.details[0], any_pb2.Any)


@pytest.mark.parametrize(
    "error",
    [
        # The session was ended by the server: a fast shutdown or pg_terminate_backend (57P01),
        # another backend's crash (57P02), a statement timeout (57014), recovery (57P03).
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CrashShutdownError("crash of another server process"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        # Out of resources (53): connections, disk.
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.DiskFullError("could not extend file"),
        # Rolled back to resolve a conflict (40): nothing was written.
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        # A read-only server: after a failover, until the address moves to the new primary.
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"),
        # The connection is gone or refused.
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_postgresql_outages_are_unavailable_and_retryable(error: Exception) -> None:
    status = status_mapping.status_for(error, "CreateOrder")
    assert status.code is grpc.StatusCode.UNAVAILABLE
    _, details = decoded(status)
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "STORE_UNAVAILABLE"
