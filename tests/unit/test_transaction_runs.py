"""How reconciliation's writes are cut into transactions: at most 100 items each, and no more
item data than one transaction may carry."""

from __future__ import annotations

from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.writer import TRANSACTION_BYTES, Replacement, transaction_runs


def _replacement(order_id: str, filler: int = 0) -> Replacement:
    item: items.Item = {items.ORDER_ID: {"S": order_id}, "note": {"S": "x" * filler}}
    return Replacement("t", item, None)


def test_runs_hold_at_most_100_items_in_order() -> None:
    runs = transaction_runs([_replacement(f"o-{n}") for n in range(250)])
    assert [len(run) for run in runs] == [100, 100, 50]
    assert [index for run in runs for index in run] == list(range(250))


def test_runs_stay_within_the_transaction_size() -> None:
    big = TRANSACTION_BYTES // 3
    replacements = [_replacement(f"o-{n}", filler=big) for n in range(7)]
    runs = transaction_runs(replacements)
    assert [len(run) for run in runs] == [2, 2, 2, 1]


def test_an_item_larger_than_a_transaction_is_a_run_of_its_own() -> None:
    replacements = [
        _replacement("o-1"),
        _replacement("o-2", filler=TRANSACTION_BYTES),
        _replacement("o-3"),
    ]
    assert transaction_runs(replacements) == [[0], [1], [2]]


def test_nothing_to_write_is_no_run() -> None:
    assert transaction_runs([]) == []
