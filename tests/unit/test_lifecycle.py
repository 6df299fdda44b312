"""The order lifecycle: which moves are allowed, versions, totals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from uoom_orders.domain.commands import CreateOrder
from uoom_orders.domain.errors import IllegalTransition, VersionConflict
from uoom_orders.domain.lifecycle import TERMINAL, allowed_next, change_status, place_order
from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem, OrderStatus

NOW = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
S = OrderStatus


def new_order(items: tuple[OrderItem, ...] = (OrderItem("pizza", "Pizza", 2, 1599),)) -> Order:
    command = CreateOrder(
        request_id=uuid.uuid4(),
        fingerprint=b"f",
        customer_id=uuid.uuid4(),
        restaurant_id=uuid.uuid4(),
        channel_id="default-channel",
        currency_code="USD",
        items=items,
        delivery_location=DeliveryLocation(40.7128, -74.006, "123 Main St", "New York", "10001"),
        estimated_delivery_time=None,
    )
    return place_order(command, order_id=uuid.uuid4(), tracking_code="TRKX", now=NOW)


def test_a_new_order_is_pending_at_version_one() -> None:
    order = new_order()
    assert order.status is S.PENDING
    assert order.version == 1
    assert order.created_at == order.updated_at == NOW


def test_total_is_the_sum_of_quantity_times_unit_price() -> None:
    order = new_order((OrderItem("a", "A", 2, 1599), OrderItem("b", "B", 3, 250)))
    assert order.items[0].total_minor == 3198
    assert order.total_minor == 3198 + 750


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (S.PENDING, {S.CONFIRMED, S.CANCELLED}),
        (S.CONFIRMED, {S.PREPARING, S.CANCELLED}),
        (S.PREPARING, {S.READY_FOR_PICKUP, S.CANCELLED}),
        (S.READY_FOR_PICKUP, {S.OUT_FOR_DELIVERY, S.CANCELLED}),
        (S.OUT_FOR_DELIVERY, {S.DELIVERED, S.CANCELLED}),
        (S.DELIVERED, set()),
        (S.CANCELLED, set()),
    ],
)
def test_allowed_moves(current: OrderStatus, expected: set[OrderStatus]) -> None:
    assert allowed_next(current) == expected


def test_the_whole_happy_path_bumps_the_version_each_step() -> None:
    order = new_order()
    path = [S.CONFIRMED, S.PREPARING, S.READY_FOR_PICKUP, S.OUT_FOR_DELIVERY, S.DELIVERED]
    for step, status in enumerate(path, start=2):
        order = change_status(order, status, now=NOW + timedelta(minutes=step))
        assert order.status is status
        assert order.version == step
    assert order.status in TERMINAL


@pytest.mark.parametrize("target", list(OrderStatus))
def test_every_move_out_of_a_terminal_state_is_refused(target: OrderStatus) -> None:
    cancelled = change_status(new_order(), S.CANCELLED, now=NOW)
    with pytest.raises(IllegalTransition) as raised:
        change_status(cancelled, target, now=NOW)
    assert raised.value.metadata["current_status"] == "CANCELLED"


def test_skipping_a_step_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="cannot move from PENDING to DELIVERED"):
        change_status(new_order(), S.DELIVERED, now=NOW)


def test_a_stale_expected_version_is_a_conflict() -> None:
    order = change_status(new_order(), S.CONFIRMED, now=NOW)
    with pytest.raises(VersionConflict) as raised:
        change_status(order, S.PREPARING, now=NOW, expected_version=1)
    assert raised.value.metadata["current_version"] == "2"
    assert change_status(order, S.PREPARING, now=NOW, expected_version=2).version == 3


def test_updated_at_never_goes_backwards() -> None:
    order = new_order()
    earlier = NOW - timedelta(seconds=5)  # a clock that stepped back
    assert change_status(order, S.CONFIRMED, now=earlier).updated_at == NOW


def test_a_new_estimate_replaces_the_old_one_and_none_keeps_it() -> None:
    eta = NOW + timedelta(hours=1)
    order = change_status(new_order(), S.CONFIRMED, now=NOW, estimated_delivery_time=eta)
    assert order.estimated_delivery_time == eta
    assert change_status(order, S.PREPARING, now=NOW).estimated_delivery_time == eta
