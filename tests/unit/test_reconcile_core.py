"""Reconciliation without the stores: how an item differs from PostgreSQL's order, which
scanned items name no order at all, and the schedule's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from uoom.orders.v1 import order_pb2

from tests.unit.projector_records import history
from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.tables import DETAILS_TABLE, STATUS_TABLE
from uoom_orders.projector.reconcile import DifferenceKind, ReconcileReport, ReconcileSchedule
from uoom_orders.projector.reconcile.differences import (
    CORRECTED_KINDS,
    by_order_id,
    classify,
    item_version_or_none,
)
from uoom_orders.projector.reconcile.schedule import IN_FLIGHT_SECONDS

NOW = 1_800_000_000
TTL = NOW + 3600
TABLES = (STATUS_TABLE, DETAILS_TABLE)


def orders() -> list[order_pb2.Order]:
    """One order at versions 1 to 4."""
    return [event.order for event in history()]


def item(table: str, order: order_pb2.Order, ttl: int = TTL) -> items.Item:
    encode = items.status_item if table == STATUS_TABLE else items.details_item
    return encode(order, ttl)


@pytest.mark.parametrize("table", TABLES)
def test_an_item_of_the_same_order_does_not_differ(table: str) -> None:
    order = orders()[1]
    assert classify(table, item(table, order), order, NOW) is None


@pytest.mark.parametrize("table", TABLES)
def test_no_item_or_an_expired_one_is_missing(table: str) -> None:
    order = orders()[1]
    assert classify(table, None, order, NOW) is DifferenceKind.MISSING
    assert classify(table, item(table, order, ttl=NOW - 1), order, NOW) is DifferenceKind.MISSING


@pytest.mark.parametrize("table", TABLES)
def test_versions_tell_older_from_newer(table: str) -> None:
    v1, v2, v3, _ = orders()
    assert classify(table, item(table, v1), v2, NOW) is DifferenceKind.OLDER
    assert classify(table, item(table, v3), v2, NOW) is DifferenceKind.NEWER


@pytest.mark.parametrize("table", TABLES)
def test_the_same_version_with_other_content_is_a_content_difference(table: str) -> None:
    order = orders()[1]
    other = order_pb2.Order()
    other.CopyFrom(order)
    other.status = order_pb2.ORDER_STATUS_CANCELLED  # a lost commit's reused version number
    assert classify(table, item(table, other), order, NOW) is DifferenceKind.CONTENT


def test_an_item_without_a_readable_version_is_a_content_difference() -> None:
    order = orders()[1]
    broken = dict(item(STATUS_TABLE, order))
    del broken[items.VERSION]
    assert item_version_or_none(broken) is None
    assert classify(STATUS_TABLE, broken, order, NOW) is DifferenceKind.CONTENT
    assert item_version_or_none(item(STATUS_TABLE, order)) == 2


def test_only_what_postgres_never_had_gets_a_correction() -> None:
    assert {DifferenceKind.NEWER, DifferenceKind.CONTENT} == CORRECTED_KINDS
    assert DifferenceKind.OLDER not in CORRECTED_KINDS
    assert DifferenceKind.MISSING not in CORRECTED_KINDS


def test_scanned_items_are_keyed_by_order_id_and_malformed_ones_set_apart() -> None:
    order = orders()[0]
    good = item(STATUS_TABLE, order)
    not_a_uuid = {items.ORDER_ID: {"S": "not-a-uuid"}}
    no_id: items.Item = {items.VERSION: {"N": "1"}}
    found, malformed = by_order_id([good, not_a_uuid, no_id])
    assert found == {order.order_id: good}
    assert malformed == [not_a_uuid, no_id]


# --- the schedule -------------------------------------------------------------------------
class FakeConnection:
    def __init__(self) -> None:
        self.unlocked = False

    async def fetchval(self, query: str, *args: object) -> bool:
        self.unlocked = "unlock" in query
        return True  # the advisory lock is free (or released)


class FakePool:
    def __init__(self) -> None:
        self.connection = FakeConnection()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConnection]:
        yield self.connection


class SlowReconciler:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def run(
        self, *, scan: bool = True, recent_from: datetime | None = None
    ) -> ReconcileReport:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ReconcileReport()


async def test_the_schedule_runs_once_entered_and_is_drained_on_leaving() -> None:
    reconciler, pool = SlowReconciler(), FakePool()
    schedule = ReconcileSchedule(reconciler, pool, 3600)  # type: ignore[arg-type]
    async with schedule:
        schedule.trigger()
        await asyncio.wait_for(reconciler.started.wait(), 5)
    # The pass in progress was cancelled, and it let the lock go.
    assert reconciler.cancelled
    assert pool.connection.unlocked
    assert schedule.passes == 0
    await schedule.__aexit__(None, None, None)  # safe twice


class RecordingReconciler:
    """Records whether each pass scanned, and from when it walked recent orders last; ends each
    pass at once."""

    def __init__(self) -> None:
        self.scans: list[bool] = []
        self.recent: list[datetime | None] = []

    async def run(
        self, *, scan: bool = True, recent_from: datetime | None = None
    ) -> ReconcileReport:
        self.scans.append(scan)
        self.recent.append(recent_from)
        return ReconcileReport()


async def test_scheduled_passes_scan_every_nth_and_a_triggered_pass_only_walks() -> None:
    reconciler, pool = RecordingReconciler(), FakePool()
    schedule = ReconcileSchedule(reconciler, pool, 3600, scan_every=3)  # type: ignore[arg-type]
    # The schedule's turns, driven without waiting an interval for each.
    for _ in range(7):
        await schedule._turn()
    schedule.trigger()
    await schedule._turn()
    assert reconciler.scans == [True, False, False, True, False, False, True, False]


class FailingOnceReconciler(RecordingReconciler):
    def __init__(self) -> None:
        super().__init__()
        self.second_pass = asyncio.Event()

    async def run(
        self, *, scan: bool = True, recent_from: datetime | None = None
    ) -> ReconcileReport:
        await super().run(scan=scan, recent_from=recent_from)
        if len(self.scans) == 1:
            raise ConnectionError("the read model stumbled")
        self.second_pass.set()
        return ReconcileReport()


def _retrying_soon(reconciler: RecordingReconciler) -> ReconcileSchedule:
    """Hourly passes; a failed triggered walk is tried again after about 10 ms."""
    return ReconcileSchedule(
        reconciler,  # type: ignore[arg-type]
        FakePool(),
        3600,
        retry_seconds=0.01,
    )


async def test_a_triggered_walk_that_fails_is_tried_again_soon() -> None:
    """Not at the next turn (minutes away): the read model that came back needs it now."""
    reconciler = FailingOnceReconciler()
    schedule = _retrying_soon(reconciler)
    async with schedule:
        schedule.trigger()
        await asyncio.wait_for(reconciler.second_pass.wait(), 5)
    assert reconciler.scans == [False, False]
    assert schedule.passes == 1


class GatedReconciler(RecordingReconciler):
    """Each pass waits for `release`; fails when `fail` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.running = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = False

    async def run(
        self, *, scan: bool = True, recent_from: datetime | None = None
    ) -> ReconcileReport:
        await super().run(scan=scan, recent_from=recent_from)
        self.running.set()
        await self.release.wait()
        self.running.clear()
        self.release.clear()
        if self.fail:
            raise ConnectionError("the read model stumbled")
        return ReconcileReport()


async def test_a_trigger_for_what_happened_before_a_pass_began_is_absorbed_by_it() -> None:
    """The table created again, then the projector's writes answer again: two triggers for one
    cause, and one walk, not two (each walk reads every recent order)."""
    reconciler, pool = GatedReconciler(), FakePool()
    schedule = ReconcileSchedule(reconciler, pool, 3600)  # type: ignore[arg-type]
    created = time.time() - 1  # the table's creation, before the walk below begins
    schedule.trigger()
    turn = asyncio.create_task(schedule._turn())
    await asyncio.wait_for(reconciler.running.wait(), 5)
    schedule.trigger(since=created)  # the health check saw the new table meanwhile
    reconciler.release.set()
    await turn
    assert not schedule._wake.is_set()
    schedule.trigger(since=created)  # and again after the walk: covered too
    assert not schedule._wake.is_set()
    schedule.trigger(since=time.time() + 60)  # a table made after the walk began: walk again
    assert schedule._wake.is_set()
    assert reconciler.scans == [False]


async def test_a_trigger_held_by_a_pass_that_fails_fires() -> None:
    reconciler, pool = GatedReconciler(), FakePool()
    schedule = ReconcileSchedule(reconciler, pool, 3600)  # type: ignore[arg-type]
    created = time.time() - 1
    turn = asyncio.create_task(schedule.run_once(scan=False))
    await asyncio.wait_for(reconciler.running.wait(), 5)
    schedule.trigger(since=created)
    assert not schedule._wake.is_set()
    reconciler.fail = True
    reconciler.release.set()
    with pytest.raises(ConnectionError):
        await turn
    assert schedule._wake.is_set()


async def test_a_walk_after_an_outage_takes_the_orders_changed_since_it_began_last() -> None:
    """From the earliest outage a trigger reports (less the time an event may have been on its
    way); a scheduled pass walks in one stretch; a failed walk tried again keeps it."""
    reconciler = FailingOnceReconciler()
    schedule = _retrying_soon(reconciler)
    seen = time.time() - 30
    schedule.trigger(since=seen + 10)  # the other projector saw it later
    schedule.trigger(since=seen)
    async with schedule:
        await asyncio.wait_for(reconciler.second_pass.wait(), 5)
    expected = datetime.fromtimestamp(seen - IN_FLIGHT_SECONDS, UTC)
    assert reconciler.recent == [expected, expected]  # failed once, then again
    await schedule._turn()  # a scheduled pass
    assert reconciler.recent[-1] is None
    # The table found made again: the walk is for its creation, the orders changed since the
    # old table was last reached come last.
    schedule.trigger(since=time.time() + 1, changed_since=seen)
    await schedule._turn()
    assert reconciler.recent[-1] == expected
