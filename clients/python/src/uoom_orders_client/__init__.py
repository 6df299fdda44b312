"""A typed async client for uoom.orders.v1.OrderService, and its generated messages."""

from __future__ import annotations

from uoom.orders.v1 import order_events_pb2, order_pb2, order_service_pb2
from uoom.orders.v1.order_pb2 import OrderStatus

from uoom_orders_client._client import CallInfo, OrderServiceClient
from uoom_orders_client._errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OrderServiceError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = [
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
