"""One suite for the ProjectionWriter port, run against the in-memory fake and DynamoDB.

If the fake drifts from the real writer (the condition, the items, the errors), the fake's
run of this suite and the real one's disagree, and one of them fails.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from uoom.orders.v1 import order_pb2

from tests.integration.projector_support import (
    drop_tables,
    dynamodb,
    get_item,
    order_history,
    unique,
)
from tests.support.memory_read_model import InMemoryReadModelWriter
from uoom_orders import wire
from uoom_orders.dynamodb import (
    ProjectionWriter,
    ReadModelWriter,
    TableNames,
    create_tables,
    items,
)
from uoom_orders_devstack import StackEndpoints

NOW = 1_800_000_000


class Clock:
    """A settable clock, so expiry does not depend on the real time."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _versions() -> list[order_pb2.Order]:
    return [wire.order_to_proto(event.order) for event in order_history()]


class ProjectionWriterContract:
    """The behaviour every ProjectionWriter must have. Subclasses provide `writer` and
    `stored`; `clock` drives the writer's notion of now."""

    clock: Clock
    tables: TableNames

    async def stored(self, table: str, order_id: str) -> items.Item | None:
        raise NotImplementedError

    async def _both(self, order_id: str) -> tuple[items.Item | None, items.Item | None]:
        return (
            await self.stored(self.tables.status, order_id),
            await self.stored(self.tables.details, order_id),
        )

    async def test_a_new_order_is_written_to_both_tables(self, writer: ProjectionWriter) -> None:
        order = _versions()[0]
        result = await writer.put_order(order, NOW + 60)
        assert (result.order_id, result.version) == (order.order_id, order.version)
        assert (result.status_written, result.details_written, result.applied) == (
            True,
            True,
            True,
        )
        assert await self._both(order.order_id) == (
            items.status_item(order, NOW + 60),
            items.details_item(order, NOW + 60),
        )

    async def test_a_newer_version_replaces_an_older_one(self, writer: ProjectionWriter) -> None:
        versions = _versions()
        await writer.put_order(versions[0], NOW + 60)
        assert (await writer.put_order(versions[3], NOW + 120)).applied
        status, details = await self._both(versions[3].order_id)
        assert details is not None
        assert status == items.status_item(versions[3], NOW + 120)
        assert items.order_from_item(details) == versions[3]

    async def test_the_same_or_an_older_version_changes_nothing(
        self, writer: ProjectionWriter
    ) -> None:
        versions = _versions()
        await writer.put_order(versions[2], NOW + 60)
        for order in (versions[2], versions[1], versions[0]):
            result = await writer.put_order(order, NOW + 999)
            assert (result.status_written, result.details_written) == (False, False)
            assert not result.applied
        assert await self._both(versions[2].order_id) == (
            items.status_item(versions[2], NOW + 60),
            items.details_item(versions[2], NOW + 60),
        )

    async def test_an_expired_item_is_revived_by_its_version_but_not_by_an_older_one(
        self, writer: ProjectionWriter
    ) -> None:
        versions = _versions()
        await writer.put_order(versions[2], NOW + 60)
        self.clock.now = NOW + 61  # the items' ttl has passed; not yet deleted
        assert not (await writer.put_order(versions[1], NOW + 9999)).applied
        assert (await writer.put_order(versions[2], NOW + 9999)).applied
        status, _ = await self._both(versions[2].order_id)
        assert status == items.status_item(versions[2], NOW + 9999)

    async def test_concurrent_writes_in_any_order_keep_the_newest(
        self, writer: ProjectionWriter
    ) -> None:
        histories = [_versions() for _ in range(5)]
        shuffled = [order for history in histories for order in history for _ in range(2)]
        random.Random(11).shuffle(shuffled)
        await asyncio.gather(*(writer.put_order(order, NOW + 60) for order in shuffled))
        for history in histories:
            status, details = await self._both(history[-1].order_id)
            assert status == items.status_item(history[-1], NOW + 60)
            assert details == items.details_item(history[-1], NOW + 60)

    async def test_an_order_the_items_cannot_hold_raises_value_error(
        self, writer: ProjectionWriter
    ) -> None:
        order = _versions()[0]
        order.status = order_pb2.ORDER_STATUS_UNSPECIFIED
        with pytest.raises(ValueError, match="unspecified"):
            await writer.put_order(order, NOW + 60)
        assert await self._both(order.order_id) == (None, None)

    async def test_a_status_alone_is_written_under_the_same_condition(
        self, writer: ProjectionWriter
    ) -> None:
        versions = _versions()
        summaries = [wire.summary_from_order(order) for order in versions]
        assert await writer.put_status(summaries[1], NOW + 60)
        assert await self._both(versions[1].order_id) == (
            items.status_item(versions[1], NOW + 60),
            None,
        )
        assert not await writer.put_status(summaries[0], NOW + 999)  # older
        assert not await writer.put_status(summaries[1], NOW + 999)  # the same, not expired
        await writer.put_order(versions[2], NOW + 60)
        assert not await writer.put_status(summaries[1], NOW + 999)
        self.clock.now = NOW + 61  # expired: its own version revives it, an older one does not
        assert not await writer.put_status(summaries[1], NOW + 9999)
        assert await writer.put_status(summaries[2], NOW + 9999)
        assert await self._both(versions[2].order_id) == (
            items.status_item(versions[2], NOW + 9999),
            items.details_item(versions[2], NOW + 60),
        )


class TestInMemoryWriter(ProjectionWriterContract):
    @pytest.fixture
    def writer(self) -> InMemoryReadModelWriter:
        self.clock = Clock(NOW)
        fake = InMemoryReadModelWriter("contract-", clock=self.clock)
        self.tables = fake.tables
        self._fake = fake
        return fake

    async def stored(self, table: str, order_id: str) -> items.Item | None:
        return self._fake.get(table, order_id)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


class TestDynamoDBWriter(ProjectionWriterContract):
    @pytest.fixture
    async def writer(self, local_stack: StackEndpoints) -> AsyncIterator[ReadModelWriter]:
        self.clock = Clock(NOW)
        prefix = unique("contract") + "-"
        self.tables = TableNames.for_prefix(prefix)
        async with dynamodb(local_stack) as client:
            await create_tables(client, prefix)
            self._client: Any = client
            try:
                yield ReadModelWriter(client, prefix, clock=self.clock)
            finally:
                await drop_tables(client, self.tables)

    async def stored(self, table: str, order_id: str) -> items.Item | None:
        return await get_item(self._client, table, order_id)
