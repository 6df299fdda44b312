"""The zipf scenario's draws: Zipf-distributed over a fixed random ranking, a cache ceiling
that follows from it, and writes that only move orders that can move."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from uoom.orders.v1 import order_pb2

from uoom_orders_bench.zipf import ZipfOrders, ZipfPicker, ZipfSettings

IDS = [f"order-{n}" for n in range(1000)]


def test_draws_follow_the_ranking_and_the_top_share() -> None:
    picker = ZipfPicker(IDS, 0.99, random.Random(1))
    assert sorted(picker.ranked) == sorted(IDS)
    assert picker.ranked != IDS  # ranked in a random order, not in seed order
    rng = random.Random(2)
    draws = Counter(picker.pick(rng) for _ in range(50_000))
    hottest = picker.ranked[0]
    assert draws.most_common(1)[0][0] == hottest
    top_100 = set(picker.ranked[:100])
    observed = sum(n for order_id, n in draws.items() if order_id in top_100) / 50_000
    assert observed == pytest.approx(picker.top_share(100), abs=0.02)
    # The ceiling of a cache holding a tenth of 1,000 orders at s = 0.99: about two thirds.
    assert 0.6 < picker.top_share(100) < 0.75
    assert picker.top_share(0) == 0.0
    assert picker.top_share(len(IDS) * 2) == pytest.approx(1.0)


def test_the_ranking_is_fixed_by_the_seed() -> None:
    first = ZipfPicker(IDS, 0.99, random.Random("zipf-ranks:1")).ranked
    again = ZipfPicker(IDS, 0.99, random.Random("zipf-ranks:1")).ranked
    assert first == again


def summary(order_id: str, status: int, version: int) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(order_id=order_id, status=status, version=version)  # type: ignore[arg-type]


def test_writes_move_idle_orders_one_step_and_never_a_delivered_or_busy_one() -> None:
    orders = ZipfOrders.of(
        [
            summary("a", order_pb2.ORDER_STATUS_PENDING, 1),
            summary("b", order_pb2.ORDER_STATUS_DELIVERED, 6),
        ],
        0.99,
        seed=1,
    )
    rng = random.Random(3)
    update = orders.next_move(rng)
    assert update is not None
    assert update.order_id == "a"
    assert update.status == order_pb2.ORDER_STATUS_CONFIRMED
    assert update.expected_version == 1
    # "a" is busy until its answer, "b" cannot move: nothing to write.
    assert orders.next_move(rng) is None
    orders.moved(
        "a", order_pb2.Order(order_id="a", status=order_pb2.ORDER_STATUS_CONFIRMED, version=2)
    )
    again = orders.next_move(rng)
    assert again is not None
    assert again.expected_version == 2
    orders.moved("a", None)  # failed: its version is unknown, it is left alone
    assert orders.next_move(rng) is None


def test_the_near_cache_holds_a_tenth_of_the_orders() -> None:
    assert ZipfSettings(orders=200_000).cache_entries == 20_000
    assert ZipfSettings(orders=5).cache_entries == 1
