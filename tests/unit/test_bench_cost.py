"""The cost table's arithmetic: item sizes by DynamoDB's rules, write units with the indexes,
and the monthly table beside the reference's $76.50."""

from __future__ import annotations

import pytest

from uoom_orders_bench.cost import Measured, Prices, as_reported, by_rules, render
from uoom_orders_bench.item_size import item_size, read_units, write_units


def test_item_size_counts_names_values_and_nesting() -> None:
    assert item_size({"orderId": {"S": "abc"}}) == 7 + 3
    assert item_size({"v": {"N": "1599"}}) == 1 + 3  # two digit pairs and one byte
    assert item_size({"ok": {"BOOL": True}}) == 2 + 1
    nested = {"items": {"L": [{"M": {"q": {"N": "2"}}}]}}
    # list: 3 + per element (1 + map: 3 + per entry (1 + name 1 + number 2))
    assert item_size(nested) == 5 + 3 + 1 + 3 + 1 + 1 + 2


def test_units_round_up_per_kilobyte_and_reads_halve_when_eventually_consistent() -> None:
    assert write_units(1) == write_units(1024) == 1
    assert write_units(1025) == 2
    assert read_units(4096, consistent=False) == 0.5
    assert read_units(4097, consistent=True) == 2.0


def lifecycle_run() -> Measured:
    # 10 orders, 6 puts per table each (create + 5 changes), one refused write, small items.
    return Measured(
        orders=10,
        consumed={
            ("PutItem", "order-status"): 60.0,
            ("PutItem", "order-details"): 60.0,
            ("GetItem", "order-status"): 1.5,
        },
        refused={("PutItem", "order-status"): 1.0},
        sizes={"order-status": 325, "order-details": 543},
        reconcile_consumed={("BatchGetItem", "order-status"): 10.0},
        reconcile_checked=10,
        reconcile_scanned=20,
    )


def test_rules_add_two_index_writes_per_put_and_four_when_the_sort_key_moves() -> None:
    measured = lifecycle_run()
    assert as_reported(measured).writes == pytest.approx(12.0)
    assert as_reported(measured).reads == pytest.approx(0.15)
    # Per table: 60 puts, 10 inserting into both indexes, 50 moving updatedAt (delete + put in
    # each): 60 + 2 * (10 + 2 * 50) = 280; both tables 560, plus the refused write: 561.
    assert by_rules(measured).writes == pytest.approx(56.1)


def test_the_table_stands_beside_the_reference() -> None:
    text = render(
        lifecycle_run(),
        prices=Prices(),
        orders_per_month=10e6,
        reads_per_order=3,
        ttl_hours=72,
        reconcile_interval_s=300,
    )
    assert "$76.50" in text
    assert "$54.02" in text  # 0.074 $/h for 730 h
    # 10 M orders x 12 write units x $1.25 per million, as reported.
    assert "$150.00" in text
    assert "reconciliation every 300 s" in text
