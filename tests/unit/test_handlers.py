"""The command handlers over the fake unit of work: idempotency (AIP-155), the lifecycle's
errors, one encoding per command, commit only on success, and a status change decided again
when a concurrent one wins."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from tests.support.fake_unit_of_work import FakeUnitOfWork, FakeWriteModel
from tests.support.write_commands import create_command, update_command
from uoom_orders.application.handlers import (
    OPTIMISTIC_ATTEMPTS,
    create_order,
    update_order_status,
)
from uoom_orders.application.ports import LoggedRequest, TraceContext
from uoom_orders.domain.errors import (
    IllegalTransition,
    OrderNotFound,
    RequestIdReused,
    VersionConflict,
)
from uoom_orders.domain.events import OrderEvent, OrderEventType
from uoom_orders.domain.order import Order, OrderStatus


def written(model: FakeWriteModel) -> tuple[int, int, int]:
    """Orders, events and logged requests committed so far."""
    return len(model.orders), len(model.events), len(model.requests)


async def placed(model: FakeWriteModel) -> Order:
    return await create_order(create_command(), model.unit_of_work)


async def test_create_writes_the_order_its_event_and_its_answer_in_one_commit() -> None:
    model = FakeWriteModel()
    command = create_command()
    answer = await create_order(command, model.unit_of_work, trace_context=lambda: {"t": "1"})
    assert (answer.status, answer.version, answer.total_minor) == (OrderStatus.PENDING, 1, 3397)
    assert model.orders == {answer.order_id: answer}
    [logged_event] = model.events
    assert logged_event.event.event_type is OrderEventType.CREATED
    assert (logged_event.order, logged_event.trace_context) == (answer, {"t": "1"})
    assert model.requests[command.request_id].answer == answer
    assert (model.commits, model.rollbacks) == (1, 0)


async def test_each_command_encodes_its_order_once() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    assert model.encoded == 1
    await update_order_status(
        update_command(order.order_id, OrderStatus.CONFIRMED), model.unit_of_work
    )
    assert model.encoded == 2
    # The answer, the logged answer and the event's order are that one encoding.
    assert model.events[-1].order is next(reversed(model.requests.values())).answer


async def test_a_retried_create_answers_the_same_and_writes_nothing() -> None:
    model = FakeWriteModel()
    command = create_command()
    first = await create_order(command, model.unit_of_work)
    again = await create_order(command, model.unit_of_work)
    assert again == first
    assert written(model) == (1, 1, 1)
    assert model.commits == 1  # the retry rolled back


async def test_a_request_id_reused_for_another_create_is_refused() -> None:
    model = FakeWriteModel()
    command = create_command()
    await create_order(command, model.unit_of_work)
    other = create_command(request_id=command.request_id, fingerprint=b"other")
    with pytest.raises(RequestIdReused) as raised:
        await create_order(other, model.unit_of_work)
    assert raised.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in raised.value.violations] == ["request_id"]
    assert written(model) == (1, 1, 1)
    assert model.commits == 1


async def test_a_request_id_reused_for_another_method_is_refused() -> None:
    model = FakeWriteModel()
    command = create_command()
    order = await create_order(command, model.unit_of_work)
    update = update_command(
        order.order_id, OrderStatus.CONFIRMED, request_id=command.request_id, fingerprint=b"c1"
    )
    with pytest.raises(RequestIdReused):
        await update_order_status(update, model.unit_of_work)
    assert model.orders[order.order_id].status is OrderStatus.PENDING
    assert (model.commits, model.rollbacks) == (1, 0)  # refused on reading the log


async def test_an_update_moves_the_order_one_version_on() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    changed = await update_order_status(
        update_command(order.order_id, OrderStatus.CONFIRMED, expected_version=1),
        model.unit_of_work,
    )
    assert (changed.status, changed.version) == (OrderStatus.CONFIRMED, 2)
    assert model.orders[order.order_id] == changed
    assert model.events[-1].event.event_type is OrderEventType.STATUS_CHANGED
    assert model.events[-1].event.previous_status is OrderStatus.PENDING
    assert (model.commits, model.rollbacks) == (2, 0)


async def test_a_retried_update_answers_the_same_and_writes_nothing() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    command = update_command(order.order_id, OrderStatus.CONFIRMED)
    first = await update_order_status(command, model.unit_of_work)
    # Later moves do not change the retry's answer.
    await update_order_status(
        update_command(order.order_id, OrderStatus.PREPARING), model.unit_of_work
    )
    again = await update_order_status(command, model.unit_of_work)
    assert again == first
    assert again.version == 2
    assert written(model) == (1, 3, 3)
    assert (model.commits, model.rollbacks) == (3, 0)  # the retry only read


async def test_a_request_id_reused_for_another_update_is_refused() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    command = update_command(order.order_id, OrderStatus.CONFIRMED)
    await update_order_status(command, model.unit_of_work)
    other = update_command(
        order.order_id, OrderStatus.CANCELLED, request_id=command.request_id, fingerprint=b"u2"
    )
    with pytest.raises(RequestIdReused):
        await update_order_status(other, model.unit_of_work)
    assert model.orders[order.order_id].status is OrderStatus.CONFIRMED
    assert written(model) == (1, 2, 2)


async def test_a_stale_expected_version_is_a_conflict_and_writes_nothing() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    await update_order_status(
        update_command(order.order_id, OrderStatus.CONFIRMED), model.unit_of_work
    )
    stale = update_command(order.order_id, OrderStatus.PREPARING, expected_version=1)
    with pytest.raises(VersionConflict) as raised:
        await update_order_status(stale, model.unit_of_work)
    assert raised.value.metadata == {"current_version": "2"}
    assert model.orders[order.order_id].version == 2
    assert written(model) == (1, 2, 2)
    assert (model.commits, model.rollbacks, model.conflicts) == (2, 0, 0)


async def test_an_illegal_transition_is_refused_and_writes_nothing() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    with pytest.raises(IllegalTransition):
        await update_order_status(
            update_command(order.order_id, OrderStatus.DELIVERED), model.unit_of_work
        )
    assert model.orders[order.order_id] == order
    assert written(model) == (1, 1, 1)
    assert (model.commits, model.rollbacks) == (1, 0)


async def test_updating_a_missing_order_is_not_found_and_writes_nothing() -> None:
    model = FakeWriteModel()
    with pytest.raises(OrderNotFound):
        await update_order_status(
            update_command(uuid.uuid4(), OrderStatus.CONFIRMED), model.unit_of_work
        )
    assert written(model) == (0, 0, 0)
    assert (model.commits, model.rollbacks) == (0, 0)


async def test_a_failure_while_creating_writes_nothing() -> None:
    model = FakeWriteModel()

    def failing_trace() -> dict[str, str]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await create_order(create_command(), model.unit_of_work, trace_context=failing_trace)
    assert written(model) == (0, 0, 0)
    assert model.commits == 0


class _Racing(FakeUnitOfWork):
    """A unit of work whose status change meets a concurrent one: `race` runs between its read
    and its write (once), as another caller's whole command would."""

    def __init__(self, model: FakeWriteModel, race: list[Callable[[], Awaitable[object]]]) -> None:
        super().__init__(model)
        self._race = race

    async def read_for_change(
        self, order_id: uuid.UUID, request_id: uuid.UUID
    ) -> tuple[Order | None, LoggedRequest[Order] | None]:
        read = await super().read_for_change(order_id, request_id)
        if self._race:
            await self._race.pop()()
        return read


def _racing(
    model: FakeWriteModel, race: Callable[[], Awaitable[object]]
) -> Callable[[], FakeUnitOfWork]:
    pending = [race]
    return lambda: _Racing(model, pending)


async def test_a_change_that_loses_a_race_is_decided_again_on_the_winners_version() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    confirm = update_command(order.order_id, OrderStatus.CONFIRMED)
    cancel = update_command(order.order_id, OrderStatus.CANCELLED)
    cancelled = await update_order_status(
        cancel,
        _racing(model, lambda: update_order_status(confirm, model.unit_of_work)),
    )
    # Decided from PENDING first; written over CONFIRMED, the version that won.
    assert (cancelled.status, cancelled.version) == (OrderStatus.CANCELLED, 3)
    assert model.conflicts == 1
    assert [e.event.previous_status for e in model.events[1:]] == [
        OrderStatus.PENDING,
        OrderStatus.CONFIRMED,
    ]
    assert written(model) == (1, 3, 3)


async def test_a_duplicate_that_wins_the_race_is_replayed() -> None:
    model = FakeWriteModel()
    order = await placed(model)
    confirm = update_command(order.order_id, OrderStatus.CONFIRMED)
    first: list[Order] = []

    async def duplicate() -> None:
        first.append(await update_order_status(confirm, model.unit_of_work))

    again = await update_order_status(confirm, _racing(model, duplicate))
    assert again == first[0]
    assert model.conflicts == 1
    assert written(model) == (1, 2, 2)  # one change, logged once


async def test_a_request_id_logged_meanwhile_for_another_change_is_refused() -> None:
    model = FakeWriteModel()
    order, other = await placed(model), await placed(model)
    mine = update_command(order.order_id, OrderStatus.CONFIRMED)
    theirs = update_command(
        other.order_id, OrderStatus.CONFIRMED, request_id=mine.request_id, fingerprint=b"theirs"
    )
    with pytest.raises(RequestIdReused):
        await update_order_status(
            mine, _racing(model, lambda: update_order_status(theirs, model.unit_of_work))
        )
    assert model.orders[order.order_id] == order
    assert model.rollbacks == 1  # the write that met the logged request_id


class _AlwaysLosing(FakeUnitOfWork):
    """A unit of work whose conditional write always finds another version stored."""

    async def change(
        self,
        request_id: uuid.UUID,
        request: LoggedRequest[Order],
        changed: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> bool:
        self._model.conflicts += 1
        return False


async def test_after_losing_every_attempt_the_change_waits_for_the_row_lock() -> None:
    model = FakeWriteModel()
    order = await placed(model)

    def losing() -> FakeUnitOfWork:
        return _AlwaysLosing(model)

    changed = await update_order_status(
        update_command(order.order_id, OrderStatus.CONFIRMED), losing
    )
    assert (changed.status, changed.version) == (OrderStatus.CONFIRMED, 2)
    assert model.conflicts == OPTIMISTIC_ATTEMPTS
    assert model.orders[order.order_id] == changed
    assert written(model) == (1, 2, 2)
