"""The fault-injection command's own rules: what counts as a regression, a lost write, a
difference from PostgreSQL, and a failed fault."""

from __future__ import annotations

from tests.support.fault_reports import fault_report
from uoom_orders_chaos.convergence import compare
from uoom_orders_chaos.observations import MonotonicReads, WriteLedger
from uoom_orders_client import order_pb2

CONFIRMED = order_pb2.ORDER_STATUS_CONFIRMED
PENDING = order_pb2.ORDER_STATUS_PENDING


def test_an_answer_below_one_completed_before_the_call_began_is_a_regression() -> None:
    reads = MonotonicReads()
    floor = reads.floor("api-0", "o1")
    assert not reads.answered("api-0", "o1", floor, 3)
    later = reads.floor("api-0", "o1")
    assert reads.answered("api-0", "o1", later, 2)


def test_overlapping_calls_are_not_ordered() -> None:
    reads = MonotonicReads()
    first, second = reads.floor("c", "o1"), reads.floor("c", "o1")  # both in flight
    assert not reads.answered("c", "o1", first, 3)
    assert not reads.answered("c", "o1", second, 2)


def test_not_found_after_an_answer_is_a_regression() -> None:
    reads = MonotonicReads()
    reads.answered("api-0", "o1", reads.floor("api-0", "o1"), 1)
    assert reads.answered("api-0", "o1", reads.floor("api-0", "o1"), 0)


def test_observers_are_separate() -> None:
    reads = MonotonicReads()
    reads.answered("api-0", "o1", reads.floor("api-0", "o1"), 5)
    assert not reads.answered("api-1", "o1", reads.floor("api-1", "o1"), 4)


def test_a_write_is_lost_when_postgres_is_behind_it_or_holds_another_status() -> None:
    ledger = WriteLedger()
    ledger.acknowledge("kept", 2, CONFIRMED)
    ledger.acknowledge("behind", 2, CONFIRMED)
    ledger.acknowledge("other", 2, CONFIRMED)
    ledger.acknowledge("gone", 1, PENDING)
    postgres = {"kept": (3, PENDING), "behind": (1, PENDING), "other": (2, PENDING)}
    lost = {(w.order_id, w.version) for w in ledger.lost(postgres)}
    assert lost == {("behind", 2), ("other", 2), ("gone", 1)}


def _summary(order_id: str, version: int, status: int = CONFIRMED) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(order_id=order_id, version=version, status=status)  # type: ignore[arg-type]


def test_differences_by_kind() -> None:
    expected = {
        "same": _summary("same", 2),
        "missing": _summary("missing", 2),
        "older": _summary("older", 3),
        "newer": _summary("newer", 1),
        "content": _summary("content", 2),
        "bad": _summary("bad", 1),
    }
    found: dict[str, order_pb2.OrderSummary | None] = {
        "same": _summary("same", 2),
        "older": _summary("older", 2),
        "newer": _summary("newer", 2),
        "content": _summary("content", 2, PENDING),
        "bad": None,
        "stranger": _summary("stranger", 1),
    }
    kinds, examples, agreeing = compare(expected, found, unknown={"stranger", "absent"})
    assert kinds == {"missing": 1, "older": 1, "newer": 2, "content": 2}
    assert agreeing == {"same"}
    assert examples


def test_a_fault_passes_on_every_target_and_cross_replica_regressions_are_information() -> None:
    assert fault_report().failures(5.0) == []


def test_a_fault_fails_on_each_target() -> None:
    assert fault_report(lost_writes=1).failures(5.0)
    assert fault_report(lost_writes=None).failures(5.0)
    assert fault_report(regressions={"same-replica": 1, "client": 0, "cross-replica": 0}).failures(
        5.0
    )
    assert fault_report(regressions={"same-replica": 0, "client": 1, "cross-replica": 0}).failures(
        5.0
    )
    assert fault_report(convergence_s=None).failures(5.0)
    assert fault_report(convergence_s=5.1).failures(5.0)
    assert fault_report(final_differences={"api-0": {"older": 1}}).failures(5.0)
