"""The projector's pure parts, without Kafka: decoding a record, reducing a batch to the newest
event per order, counting the outcomes, the offsets that commit a batch."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from uoom.orders.v1 import order_events_pb2

from tests.unit.projector_records import NOW, Record, correction, history, records, removal
from uoom_orders import wire
from uoom_orders.dynamodb.ports import PutResult
from uoom_orders.projector import PoisonMessage, ProjectorStats, decode_event
from uoom_orders.projector.batch import BatchPlan, count_batch, count_write, plan_batch
from uoom_orders.projector.membership import stuck_join_seconds
from uoom_orders.projector.offsets import batch_offsets
from uoom_orders.projector.writes import Outage, Poison, outcome_name


def kept(plan: BatchPlan) -> dict[str, tuple[int, int]]:
    """Order id → (event type, version) of each event the plan writes."""
    return {p.event.order.order_id: (p.event.event_type, p.event.version) for p in plan.pending}


def settled(plan: BatchPlan) -> int:
    return len(plan.pending) + plan.superseded + plan.removed + len(plan.letters)


# --- decode ------------------------------------------------------------------------------
def test_every_kind_of_event_decodes() -> None:
    created, changed, *_ = history()
    for event in (created, changed, correction(changed), removal(changed)):
        assert decode_event(event.SerializeToString()) == event


def _malformed() -> list[tuple[str, bytes | None]]:
    created, changed, *_ = history()
    removal_with_order = removal(created)
    removal_with_order.order.CopyFrom(created.order)
    bad_removal = wire.removal_event("not-a-uuid", NOW)
    other_version = correction(changed)
    other_version.version = 7
    without_order = correction(changed)
    without_order.ClearField("order")
    version_mismatch = order_events_pb2.OrderEvent()
    version_mismatch.CopyFrom(changed)
    version_mismatch.version = 1
    unknown_type = order_events_pb2.OrderEvent()
    unknown_type.CopyFrom(created)
    unknown_type.event_type = order_events_pb2.ORDER_EVENT_TYPE_UNSPECIFIED
    bad_order_id = order_events_pb2.OrderEvent()
    bad_order_id.CopyFrom(created)
    bad_order_id.order.order_id = "x"
    return [
        ("no value", None),
        ("not protobuf", b"\xff\x00garbage"),
        ("no type, no order", order_events_pb2.OrderEvent(event_id="x").SerializeToString()),
        ("removal with an order", removal_with_order.SerializeToString()),
        ("removal of no order id", bad_removal.SerializeToString()),
        ("correction of another version", other_version.SerializeToString()),
        ("correction without an order", without_order.SerializeToString()),
        ("version differs from the order's", version_mismatch.SerializeToString()),
        ("unknown event type", unknown_type.SerializeToString()),
        ("malformed order id", bad_order_id.SerializeToString()),
    ]


@pytest.mark.parametrize(("case", "value"), _malformed(), ids=[c for c, _ in _malformed()])
def test_anything_else_is_poison(case: str, value: bytes | None) -> None:
    with pytest.raises(PoisonMessage):
        decode_event(value)


# --- the newest event per order -----------------------------------------------------------
def test_the_newest_version_of_each_order_wins_whatever_the_arrival_order() -> None:
    first, second = history(), history()
    plan = plan_batch(records(*reversed(first), *second))
    assert kept(plan) == {
        first[0].order.order_id: (order_events_pb2.ORDER_EVENT_TYPE_STATUS_CHANGED, 4),
        second[0].order.order_id: (order_events_pb2.ORDER_EVENT_TYPE_STATUS_CHANGED, 4),
    }
    assert (plan.consumed, plan.superseded, plan.letters) == (8, 6, [])
    assert settled(plan) == plan.consumed


def test_a_duplicate_of_the_newest_replaces_it_and_supersedes_one() -> None:
    created, *_ = history(0)
    batch = records(created, created)
    plan = plan_batch(batch)
    assert [p.record for p in plan.pending] == [batch[1]]  # the later record of the two
    assert plan.superseded == 1


def test_a_correction_replaces_what_came_before_it_whatever_the_version() -> None:
    events = history()
    fix = correction(events[1])  # version 2, after version 4 in the stream
    plan = plan_batch(records(events[3], fix))
    assert kept(plan) == {fix.order.order_id: (order_events_pb2.ORDER_EVENT_TYPE_CORRECTED, 2)}
    assert (plan.corrections, plan.superseded) == (1, 1)
    assert settled(plan) == plan.consumed


def test_an_older_change_after_a_correction_does_not_replace_it() -> None:
    events = history()
    fix = correction(events[2])
    plan = plan_batch(records(fix, events[1]))
    assert kept(plan) == {fix.order.order_id: (order_events_pb2.ORDER_EVENT_TYPE_CORRECTED, 3)}
    assert (plan.corrections, plan.superseded) == (1, 1)


def test_a_removal_drops_what_came_before_it_and_not_what_comes_after() -> None:
    events = history()
    gone = removal(events[0])
    before = plan_batch(records(events[0], events[1], gone))
    assert (before.pending, before.removed, before.corrections, before.superseded) == ([], 1, 1, 2)
    assert settled(before) == before.consumed
    after = plan_batch(records(gone, events[2]))
    assert kept(after) == {
        events[2].order.order_id: (order_events_pb2.ORDER_EVENT_TYPE_STATUS_CHANGED, 3)
    }
    assert (after.removed, after.superseded) == (1, 0)


def test_poison_becomes_a_letter_and_the_rest_of_the_batch_goes_on() -> None:
    created, changed, *_ = history()
    batch = records(created, b"junk", None, changed)
    plan = plan_batch(batch)
    assert [letter.record for letter in plan.letters] == [batch[1], batch[2]]
    assert all("OrderEvent" in letter.error or "value" in letter.error for letter in plan.letters)
    assert kept(plan) == {created.order.order_id: (changed.event_type, 2)}
    assert (plan.consumed, plan.superseded) == (4, 1)


# --- counting -----------------------------------------------------------------------------
def test_counts_add_up_across_batches() -> None:
    stats = ProjectorStats()
    events = history()
    for batch in (records(*events), records(removal(events[0]), correction(events[3]), b"x")):
        count_batch(stats, plan_batch(batch))
    assert (stats.batches, stats.consumed, stats.superseded) == (2, 7, 3)
    assert (stats.removed, stats.corrections, stats.dead_lettered) == (1, 2, 0)
    count_write(stats, PutResult("o", 2, status_written=True, details_written=False))
    count_write(stats, PutResult("o", 2, status_written=False, details_written=False))
    assert (stats.applied, stats.stale) == (1, 1)


def test_outcomes_have_the_names_the_consume_span_records() -> None:
    assert outcome_name(PutResult("o", 1, True, True)) == "applied"
    assert outcome_name(PutResult("o", 1, False, False)) == "stale"
    assert outcome_name(Poison("refused")) == "dead-letter"
    assert outcome_name(Outage(ConnectionError())) == "outage"


# --- the group --------------------------------------------------------------------------
def test_a_batch_commits_each_assigned_partitions_last_offset_plus_one() -> None:
    p0, p1, p2 = (TopicPartition("orders", n) for n in range(3))
    batch: dict[TopicPartition, list[Any]] = {
        p0: [Record(b"", 4), Record(b"", 9)],
        p1: [Record(b"", 2)],
        p2: [Record(b"", 7)],  # revoked meanwhile
    }
    assert batch_offsets(batch, {p0, p1}) == {p0: 10, p1: 3}
    assert batch_offsets({p0: []}, {p0}) == {}


def test_a_join_is_stuck_after_three_session_timeouts_and_never_before_45_seconds() -> None:
    assert stuck_join_seconds(6000) == 45.0
    assert stuck_join_seconds(1000) == 45.0
    assert stuck_join_seconds(20_000) == 60.0
