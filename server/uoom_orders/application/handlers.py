"""Command handlers: each runs one command in one transaction, outbox row included."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from uoom_orders.application.ports import (
    A,
    DuplicateRequest,
    LoggedRequest,
    TraceContext,
    UnitOfWorkFactory,
)
from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.errors import FieldViolation, OrderNotFound, RequestIdReused
from uoom_orders.domain.events import OrderEvent, OrderEventType
from uoom_orders.domain.lifecycle import change_status, place_order
from uoom_orders.domain.order import Order

_TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone


def utc_now() -> datetime:
    """Now, to the microsecond PostgreSQL keeps, so stored and returned times are equal."""
    return datetime.now(UTC)


def new_tracking_code() -> str:
    return "TRK" + "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(10))


def _replay(logged: LoggedRequest[A], method: str, fingerprint: bytes, request_id: UUID) -> A:
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
    return logged.answer


async def create_order(
    command: CreateOrder,
    new_uow: UnitOfWorkFactory[A],
    *,
    clock: Callable[[], datetime] = utc_now,
    trace_context: TraceContext = dict,
) -> A:
    """Places the order and answers it, encoded by the unit of work; a repeated request_id
    answers what the first request got and writes nothing."""
    now = clock()
    order = place_order(command, order_id=uuid.uuid4(), tracking_code=new_tracking_code(), now=now)
    uow = new_uow()
    answer = uow.encode(order)
    try:
        # One atomic write, the request logged first: a retry writes nothing, and a concurrent
        # duplicate waits for the first one's outcome.
        await uow.create(
            command.request_id,
            LoggedRequest("CreateOrder", command.fingerprint, answer),
            order,
            OrderEvent(uuid.uuid4(), OrderEventType.CREATED, now, order, None),
            trace_context,
        )
        return answer
    except DuplicateRequest:
        pass  # the first answer is replayed below
    async with new_uow() as uow:
        # The duplicate's transaction committed (a rolled-back one would not have conflicted).
        logged = await uow.requests.find(command.request_id)
    if logged is None:  # pragma: no cover - excluded by the unique index's semantics
        raise RuntimeError(f"request_id {command.request_id} conflicted but is not logged")
    return _replay(logged, "CreateOrder", command.fingerprint, command.request_id)


OPTIMISTIC_ATTEMPTS = 4
"""Reads and conditional writes of one status change before it takes the order's row lock."""


def _status_change(
    command: UpdateOrderStatus, current: Order | None, clock: Callable[[], datetime]
) -> tuple[Order, OrderEvent]:
    """The order after the command and the event saying so, decided from `current`; raises
    OrderNotFound, VersionConflict or IllegalTransition."""
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
    event = OrderEvent(uuid.uuid4(), OrderEventType.STATUS_CHANGED, now, changed, current.status)
    return changed, event


async def update_order_status(
    command: UpdateOrderStatus,
    new_uow: UnitOfWorkFactory[A],
    *,
    clock: Callable[[], datetime] = utc_now,
    trace_context: TraceContext = dict,
) -> A:
    """Moves the order along its lifecycle; answers the changed order, encoded by the unit of
    work. No concurrent update is lost: the change is written only over the version it was
    decided from (one read, one statement), and decided again when another change won. After
    OPTIMISTIC_ATTEMPTS such losses it waits for the order's row lock instead, so a caller of
    a busy order is not turned away."""
    method, fingerprint = "UpdateOrderStatus", command.fingerprint
    for _ in range(OPTIMISTIC_ATTEMPTS):
        uow = new_uow()
        current, logged = await uow.read_for_change(command.order_id, command.request_id)
        if logged is not None:
            return _replay(logged, method, fingerprint, command.request_id)
        changed, event = _status_change(command, current, clock)
        answer = uow.encode(changed)
        try:
            request = LoggedRequest(method, fingerprint, answer)
            if await uow.change(command.request_id, request, changed, event, trace_context):
                return answer
        except DuplicateRequest:
            pass  # logged by a concurrent duplicate: the next read replays its answer
    return await _update_under_lock(command, new_uow, clock=clock, trace_context=trace_context)


async def _update_under_lock(
    command: UpdateOrderStatus,
    new_uow: UnitOfWorkFactory[A],
    *,
    clock: Callable[[], datetime],
    trace_context: TraceContext,
) -> A:
    """The status change in a transaction holding the order's row lock: it waits its turn."""
    method, fingerprint = "UpdateOrderStatus", command.fingerprint
    for _ in range(2):
        async with new_uow() as uow:
            # Lock first: a concurrent duplicate holding the lock has logged its answer by
            # the time we get it, and replaying it beats judging the move from the new state.
            current = await uow.orders.get_for_update(command.order_id)
            logged = await uow.requests.find(command.request_id)
            if logged is not None:
                return _replay(logged, method, fingerprint, command.request_id)
            changed, event = _status_change(command, current, clock)
            answer = uow.encode(changed)
            await uow.orders.save_status_change(changed)
            await uow.outbox.append(event, answer, trace_context())
            try:
                await uow.requests.record(command.request_id, method, fingerprint, answer)
            except DuplicateRequest:
                continue
            await uow.commit()
            return answer
    raise RuntimeError("request_id logged concurrently but not readable")  # pragma: no cover
