"""Pins the public surface of uoom_orders_client: a change here is a change of API."""

from __future__ import annotations

import uoom_orders_client


def test_all_is_pinned() -> None:
    assert sorted(uoom_orders_client.__all__) == [
        "AbortedError",
        "AlreadyExistsError",
        "CallInfo",
        "DeadlineExceededError",
        "FailedPreconditionError",
        "FieldViolation",
        "InternalError",
        "InvalidArgumentError",
        "NotFoundError",
        "OrderServiceClient",
        "OrderServiceError",
        "OrderStatus",
        "PermissionDeniedError",
        "ResourceExhaustedError",
        "UnauthenticatedError",
        "UnavailableError",
        "order_events_pb2",
        "order_pb2",
        "order_service_pb2",
    ]


def test_every_name_in_all_exists() -> None:
    for name in uoom_orders_client.__all__:
        assert hasattr(uoom_orders_client, name), name


def test_every_error_is_an_order_service_error() -> None:
    errors = [
        getattr(uoom_orders_client, name)
        for name in uoom_orders_client.__all__
        if name.endswith("Error")
    ]
    assert len(errors) == 12
    for error in errors:
        assert issubclass(error, uoom_orders_client.OrderServiceError)
