"""Command handlers: each runs one command in one transaction, outbox row included."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.application.ports import UnitOfWork
from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.errors import FieldViolation, OrderNotFound, RequestIdReused
from uoom_orders.domain.events import OrderEvent, OrderEventType
from uoom_orders.domain.lifecycle import change_status, place_order
from uoom_orders.domain.order import Order
from uoom_orders.write.request_log import DuplicateRequest, LoggedRequest

UnitOfWorkFactory = Callable[[], UnitOfWork]
TraceContext = Callable[[], dict[str, str]]

_TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone


def utc_now() -> datetime:
    """Now, to the microsecond PostgreSQL keeps, so stored and returned times are equal."""
    return datetime.now(UTC)


def new_tracking_code() -> str:
    return "TRK" + "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(10))


def _replay(logged: LoggedRequest, method: str, fingerprint: bytes, request_id: UUID) -> Order:
    if logged.method != method or logged.fingerprint != fingerprint:
        raise RequestIdReused(
            f"request_id {request_id} was already used for a different request; "
            "use a new request_id for a new request",
            metadata={"request_id": str(request_id)},
            violations=(
                FieldViolation(
                    "request_id",
                    f"already used for a different {logged.method} request; a retry must "
                    "repeat the first request exactly, a new request needs a new request_id",
                ),
            ),
        )
    return wire.order_from_proto(order_pb2.Order.FromString(logged.response))


async def create_order(
    command: CreateOrder,
    new_uow: UnitOfWorkFactory,
    *,
    clock: Callable[[], datetime] = utc_now,
    trace_context: TraceContext = dict,
) -> Order:
    """Places the order; a repeated request_id returns the first result and writes nothing."""
    now = clock()
    order = place_order(command, order_id=uuid.uuid4(), tracking_code=new_tracking_code(), now=now)
    response = wire.order_to_proto(order).SerializeToString()
    async with new_uow() as uow:
        try:
            # The request is logged first: a retry is caught by its first statement, before
            # anything else is written (a concurrent duplicate waits here for the first one).
            await uow.requests.record(
                command.request_id, "CreateOrder", command.fingerprint, response
            )
        except DuplicateRequest:
            pass  # leaving the block rolls back; the first response is replayed below
        else:
            await uow.orders.add(order)
            await uow.outbox.append(
                OrderEvent(uuid.uuid4(), OrderEventType.CREATED, now, order, None),
                trace_context(),
            )
            await uow.commit()
            return order
    async with new_uow() as uow:
        # The duplicate's transaction committed (a rolled-back one would not have conflicted).
        logged = await uow.requests.find(command.request_id)
    if logged is None:  # pragma: no cover - excluded by the unique index's semantics
        raise RuntimeError(f"request_id {command.request_id} conflicted but is not logged")
    return _replay(logged, "CreateOrder", command.fingerprint, command.request_id)


async def update_order_status(
    command: UpdateOrderStatus,
    new_uow: UnitOfWorkFactory,
    *,
    clock: Callable[[], datetime] = utc_now,
    trace_context: TraceContext = dict,
) -> Order:
    """Moves the order along its lifecycle under a row lock, so no concurrent update is lost."""
    for _ in range(2):
        async with new_uow() as uow:
            # Lock first: a concurrent duplicate holding the lock has logged its response by
            # the time we get it, and replaying it beats judging the move from the new state.
            current = await uow.orders.get_for_update(command.order_id)
            logged = await uow.requests.find(command.request_id)
            if logged is not None:
                return _replay(logged, "UpdateOrderStatus", command.fingerprint, command.request_id)
            if current is None:
                raise OrderNotFound(
                    f"order {command.order_id} does not exist",
                    metadata={"order_id": str(command.order_id)},
                )
            now = clock()
            changed = change_status(
                current,
                command.status,
                now=now,
                expected_version=command.expected_version,
                estimated_delivery_time=command.estimated_delivery_time,
            )
            await uow.orders.save_status_change(changed)
            await uow.outbox.append(
                OrderEvent(
                    uuid.uuid4(), OrderEventType.STATUS_CHANGED, now, changed, current.status
                ),
                trace_context(),
            )
            try:
                await uow.requests.record(
                    command.request_id,
                    "UpdateOrderStatus",
                    command.fingerprint,
                    wire.order_to_proto(changed).SerializeToString(),
                )
            except DuplicateRequest:
                continue
            await uow.commit()
            return changed
    raise RuntimeError("request_id logged concurrently but not readable")  # pragma: no cover
