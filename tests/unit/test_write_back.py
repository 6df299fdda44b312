"""The read path's write-back over the in-memory read model: it writes what the fallback
read (no store to read from), under the version condition, and its exit drains it."""

from __future__ import annotations

import asyncio
import time
import uuid

from uoom.orders.v1 import order_pb2

from tests.support.memory_read_model import InMemoryReadModelWriter
from tests.support.write_commands import create_command
from uoom_orders import wire
from uoom_orders.application.handlers import utc_now
from uoom_orders.domain.lifecycle import change_status, place_order
from uoom_orders.domain.order import OrderStatus
from uoom_orders.dynamodb import items
from uoom_orders.read.write_back import ReadModelWriteBack


def versions() -> list[order_pb2.Order]:
    """An order's first three versions."""
    order = place_order(create_command(), order_id=uuid.uuid4(), tracking_code="TRK", now=utc_now())
    history = [order]
    for status in (OrderStatus.CONFIRMED, OrderStatus.PREPARING):
        history.append(change_status(history[-1], status, now=utc_now()))
    return [wire.order_to_proto(order) for order in history]


class SlowWriter(InMemoryReadModelWriter):
    """Every write waits `delay` first."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started = 0

    async def put_status(self, summary: order_pb2.OrderSummary, ttl_epoch: int) -> bool:
        self.started += 1
        await asyncio.sleep(self.delay)
        return await super().put_status(summary, ttl_epoch)


async def test_a_status_read_writes_the_status_item_and_a_details_read_both() -> None:
    model = InMemoryReadModelWriter()
    first, second = versions()[:2]
    async with ReadModelWriteBack(model, ttl_hours=1) as write_back:
        write_back.schedule(wire.summary_from_order(first), None)
    assert model.get(model.tables.status, first.order_id) is not None
    assert model.get(model.tables.details, first.order_id) is None
    async with ReadModelWriteBack(model, ttl_hours=1) as write_back:
        write_back.schedule(wire.summary_from_order(second), second)
    details = model.get(model.tables.details, second.order_id)
    assert details is not None
    assert items.order_from_item(details) == second
    status = model.get(model.tables.status, second.order_id)
    assert status is not None
    assert items.summary_from_item(status) == wire.summary_from_order(second)


async def test_an_older_version_never_replaces_a_newer_one() -> None:
    model = InMemoryReadModelWriter()
    history = versions()
    await model.put_order(history[2], int(time.time()) + 3600)
    async with ReadModelWriteBack(model, ttl_hours=1) as write_back:
        write_back.schedule(wire.summary_from_order(history[1]), history[1])
    for table in model.tables.all():
        item = model.get(table, history[2].order_id)
        assert item is not None
        assert items.item_version(item) == history[2].version


async def test_exit_waits_for_writes_in_flight_within_its_bound() -> None:
    model = SlowWriter(delay=0.05)
    summaries = [wire.summary_from_order(order) for order in versions()[:1]]
    async with ReadModelWriteBack(model, ttl_hours=1, drain_seconds=5) as write_back:
        write_back.schedule(summaries[0], None)
        write_back.schedule(summaries[0], None)  # one write per order at a time
    assert model.started == 1
    assert model.get(model.tables.status, summaries[0].order_id) is not None


async def test_exit_cancels_what_outlasts_its_bound() -> None:
    model = SlowWriter(delay=60)
    summary = wire.summary_from_order(versions()[0])
    started = time.monotonic()
    async with ReadModelWriteBack(model, ttl_hours=1, drain_seconds=0.05) as write_back:
        write_back.schedule(summary, None)
        await asyncio.sleep(0)
    assert time.monotonic() - started < 5
    assert model.started == 1
    assert model.get(model.tables.status, summary.order_id) is None


async def test_nothing_is_written_outside_the_context() -> None:
    model = InMemoryReadModelWriter()
    write_back = ReadModelWriteBack(model, ttl_hours=1, max_in_flight=1)
    order = versions()[0]
    write_back.schedule(wire.summary_from_order(order), order)  # not entered yet
    async with write_back:
        pass
    write_back.schedule(wire.summary_from_order(order), order)  # exited
    await write_back.stop()  # twice is safe
    await asyncio.sleep(0)
    assert model.get(model.tables.status, order.order_id) is None
