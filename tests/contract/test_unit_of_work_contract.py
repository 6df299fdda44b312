"""One suite for the application's UnitOfWork port, run against the in-memory fake
(tests/support/fake_unit_of_work.py) and PostgresUnitOfWork on a real PostgreSQL.

The port's own rules first (nothing kept without commit, a duplicate request_id, a failed
transaction), then the handlers' idempotency over each: if the fake drifts from PostgreSQL,
the two runs of this suite disagree and one of them fails.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Generic

import asyncpg
import pytest
from uoom.orders.v1 import order_events_pb2, order_pb2

from tests.support.fake_unit_of_work import FakeWriteModel
from tests.support.write_commands import create_command, update_command
from uoom_orders import wire
from uoom_orders.application.handlers import (
    OPTIMISTIC_ATTEMPTS,
    create_order,
    update_order_status,
    utc_now,
)
from uoom_orders.application.ports import A, DuplicateRequest, LoggedRequest, UnitOfWork
from uoom_orders.domain.errors import IllegalTransition, RequestIdReused, VersionConflict
from uoom_orders.domain.events import OrderEvent, OrderEventType
from uoom_orders.domain.lifecycle import change_status, place_order
from uoom_orders.domain.order import Order, OrderStatus
from uoom_orders.write.unit_of_work import PostgresUnitOfWork


def a_new_order() -> Order:
    return place_order(
        create_command(), order_id=uuid.uuid4(), tracking_code="TRKCONTRACT1", now=utc_now()
    )


class UnitOfWorkContract(Generic[A]):
    """The behaviour every UnitOfWork must have. Subclasses provide the `new_uow` fixture and
    the observers below, which look at what was committed without the port."""

    async def committed(self) -> tuple[int, int, int]:
        """Orders, outbox events and logged requests committed so far."""
        raise NotImplementedError

    async def event_orders(self) -> list[A]:
        """The (encoded) order each committed event carries, in append order."""
        raise NotImplementedError

    def decode(self, answer: A) -> Order:
        """The domain order in an answer."""
        raise NotImplementedError

    # --- the port ------------------------------------------------------------------------
    async def test_nothing_is_kept_without_commit(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = a_new_order()
        uow = new_uow()
        async with uow:
            await uow.orders.add(order)
            await uow.requests.record(uuid.uuid4(), "CreateOrder", b"f", uow.encode(order))
            await uow.outbox.append(_created(order), uow.encode(order))
            assert await uow.orders.get_for_update(order.order_id) == order  # its own writes
        assert await self.committed() == (0, 0, 0)
        async with new_uow() as uow:
            assert await uow.orders.get_for_update(order.order_id) is None

    async def test_committed_writes_are_read_back(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = a_new_order()
        request_id = uuid.uuid4()
        uow = new_uow()
        answer = uow.encode(order)
        async with uow:
            await uow.orders.add(order)
            await uow.requests.record(request_id, "CreateOrder", b"f", answer)
            await uow.outbox.append(_created(order), answer)
            await uow.commit()
        assert await self.committed() == (1, 1, 1)
        assert await self.event_orders() == [answer]
        async with new_uow() as uow:
            assert await uow.orders.get_for_update(order.order_id) == order
            logged = await uow.requests.find(request_id)
            assert await uow.requests.find(uuid.uuid4()) is None
        assert logged is not None
        assert (logged.method, logged.fingerprint, logged.answer) == ("CreateOrder", b"f", answer)
        assert self.decode(logged.answer) == order

    async def test_a_status_change_is_kept_once_committed(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = await self._stored(new_uow)
        changed = change_status(order, OrderStatus.CONFIRMED, now=utc_now())
        async with new_uow() as uow:
            assert await uow.orders.get_for_update(order.order_id) == order
            await uow.orders.save_status_change(changed)
            await uow.commit()
        async with new_uow() as uow:
            assert await uow.orders.get_for_update(order.order_id) == changed

    async def test_a_request_id_is_recorded_once(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = a_new_order()
        request_id = uuid.uuid4()
        uow = new_uow()
        async with uow:
            await uow.requests.record(request_id, "CreateOrder", b"f", uow.encode(order))
            await uow.commit()
        uow = new_uow()
        async with uow:
            await uow.orders.add(order)
            with pytest.raises(DuplicateRequest):
                await uow.requests.record(request_id, "CreateOrder", b"g", uow.encode(order))
            # A failed transaction keeps nothing, even when asked to commit.
            await uow.commit()
        assert await self.committed() == (0, 0, 1)
        async with new_uow() as uow:
            logged = await uow.requests.find(request_id)
        assert logged is not None
        assert logged.fingerprint == b"f"

    async def test_a_create_writes_everything_at_once_or_nothing(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order, request_id, answer = await self._placed(new_uow)
        uow = new_uow()
        assert await self.committed() == (1, 1, 1)
        assert await self.event_orders() == [answer]
        # The same request_id again: refused as a duplicate, nothing of it written.
        other = a_new_order()
        with pytest.raises(DuplicateRequest):
            await new_uow().create(
                request_id,
                LoggedRequest("CreateOrder", b"g", uow.encode(other)),
                other,
                _created(other),
                dict,
            )
        # A new request_id for an order that exists: refused, and its request is not logged.
        with pytest.raises((ValueError, asyncpg.UniqueViolationError)) as refused:
            await new_uow().create(
                uuid.uuid4(),
                LoggedRequest("CreateOrder", b"h", answer),
                order,
                _created(order),
                dict,
            )
        assert not isinstance(refused.value, DuplicateRequest)
        assert await self.committed() == (1, 1, 1)
        async with new_uow() as check:
            assert await check.orders.get_for_update(order.order_id) == order
            assert await check.orders.get_for_update(other.order_id) is None
            logged = await check.requests.find(request_id)
        assert logged is not None
        assert (logged.fingerprint, self.decode(logged.answer)) == (b"f", order)

    async def test_a_read_for_change_sees_the_committed_order_and_the_logged_request(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        assert await new_uow().read_for_change(uuid.uuid4(), uuid.uuid4()) == (None, None)
        order, request_id, _ = await self._placed(new_uow)
        current, logged = await new_uow().read_for_change(order.order_id, request_id)
        assert current == order  # its items included, in line order
        assert logged is not None
        assert (logged.method, logged.fingerprint, self.decode(logged.answer)) == (
            "CreateOrder",
            b"f",
            order,
        )
        # Each half alone: a new request for the order, a logged request for no order.
        assert await new_uow().read_for_change(order.order_id, uuid.uuid4()) == (order, None)
        missing, logged_alone = await new_uow().read_for_change(uuid.uuid4(), request_id)
        assert missing is None
        assert logged_alone is not None

    async def test_a_change_is_stored_only_over_the_version_before_it(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order, _, _ = await self._placed(new_uow)
        uow = new_uow()
        confirmed = change_status(order, OrderStatus.CONFIRMED, now=utc_now())
        request_id = uuid.uuid4()
        answer = uow.encode(confirmed)
        assert await new_uow().change(
            request_id,
            LoggedRequest("UpdateOrderStatus", b"u", answer),
            confirmed,
            _changed(confirmed, order),
            dict,
        )
        assert await self.committed() == (1, 2, 2)
        assert await new_uow().read_for_change(order.order_id, uuid.uuid4()) == (confirmed, None)
        assert (await self.event_orders())[-1] == answer
        # Decided from version 1 again (a concurrent change won): nothing written.
        cancelled = change_status(order, OrderStatus.CANCELLED, now=utc_now())
        assert not await new_uow().change(
            uuid.uuid4(),
            LoggedRequest("UpdateOrderStatus", b"c", uow.encode(cancelled)),
            cancelled,
            _changed(cancelled, order),
            dict,
        )
        assert await self.committed() == (1, 2, 2)
        # Over the right version but with a logged request_id: refused, the change undone.
        preparing = change_status(confirmed, OrderStatus.PREPARING, now=utc_now())
        with pytest.raises(DuplicateRequest):
            await new_uow().change(
                request_id,
                LoggedRequest("UpdateOrderStatus", b"p", uow.encode(preparing)),
                preparing,
                _changed(preparing, confirmed),
                dict,
            )
        assert await self.committed() == (1, 2, 2)
        current, logged = await new_uow().read_for_change(order.order_id, request_id)
        assert current == confirmed
        assert logged is not None
        assert (logged.fingerprint, self.decode(logged.answer)) == (b"u", confirmed)

    # --- the handlers over it --------------------------------------------------------------
    async def test_a_retried_create_answers_the_same_and_writes_nothing(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        command = create_command()
        first = await create_order(command, new_uow)
        again = await create_order(command, new_uow)
        assert again == first
        assert await self.committed() == (1, 1, 1)
        assert await self.event_orders() == [first]

    async def test_a_reused_request_id_is_refused_and_writes_nothing(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        command = create_command()
        await create_order(command, new_uow)
        with pytest.raises(RequestIdReused):
            await create_order(
                create_command(request_id=command.request_id, fingerprint=b"other"), new_uow
            )
        assert await self.committed() == (1, 1, 1)

    async def test_a_retried_update_answers_the_same(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = self.decode(await create_order(create_command(), new_uow))
        command = update_command(order.order_id, OrderStatus.CONFIRMED, expected_version=1)
        first = await update_order_status(command, new_uow)
        again = await update_order_status(command, new_uow)
        assert again == first
        assert self.decode(first).version == 2
        assert await self.committed() == (1, 2, 2)
        assert (await self.event_orders())[-1] == first

    async def test_a_stale_version_and_an_illegal_move_write_nothing(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = self.decode(await create_order(create_command(), new_uow))
        with pytest.raises(VersionConflict):
            await update_order_status(
                update_command(order.order_id, OrderStatus.CONFIRMED, expected_version=2), new_uow
            )
        with pytest.raises(IllegalTransition):
            await update_order_status(
                update_command(order.order_id, OrderStatus.DELIVERED), new_uow
            )
        assert await self.committed() == (1, 1, 1)
        async with new_uow() as uow:
            assert await uow.orders.get_for_update(order.order_id) == order

    async def test_a_change_that_keeps_losing_its_race_is_made_under_the_row_lock(
        self, new_uow: Callable[[], UnitOfWork[A]]
    ) -> None:
        order = self.decode(await create_order(create_command(), new_uow))
        lost = 0

        def losing() -> UnitOfWork[A]:
            uow = new_uow()

            async def change(*args: object, **kwargs: object) -> bool:
                nonlocal lost
                lost += 1
                return False  # as if another change had always won

            uow.change = change  # type: ignore[method-assign]
            return uow

        command = update_command(order.order_id, OrderStatus.CONFIRMED)
        answer = await update_order_status(command, losing)
        assert lost == OPTIMISTIC_ATTEMPTS
        assert (self.decode(answer).status, self.decode(answer).version) == (
            OrderStatus.CONFIRMED,
            2,
        )
        assert await self.committed() == (1, 2, 2)
        assert (await self.event_orders())[-1] == answer
        # Its retry is replayed from the log like any other.
        assert await update_order_status(command, new_uow) == answer

    async def _placed(self, new_uow: Callable[[], UnitOfWork[A]]) -> tuple[Order, uuid.UUID, A]:
        """A new order written by `create` (fingerprint b"f"): it, its request_id, its answer."""
        order = a_new_order()
        request_id = uuid.uuid4()
        uow = new_uow()
        answer = uow.encode(order)
        await uow.create(
            request_id, LoggedRequest("CreateOrder", b"f", answer), order, _created(order), dict
        )
        return order, request_id, answer

    async def _stored(self, new_uow: Callable[[], UnitOfWork[A]]) -> Order:
        order = a_new_order()
        async with new_uow() as uow:
            await uow.orders.add(order)
            await uow.commit()
        return order


def _created(order: Order) -> OrderEvent:
    return OrderEvent(uuid.uuid4(), OrderEventType.CREATED, order.created_at, order, None)


def _changed(order: Order, before: Order) -> OrderEvent:
    return OrderEvent(
        uuid.uuid4(), OrderEventType.STATUS_CHANGED, order.updated_at, order, before.status
    )


class TestFakeUnitOfWork(UnitOfWorkContract[Order]):
    @pytest.fixture
    def new_uow(self) -> Callable[[], UnitOfWork[Order]]:
        self.model = FakeWriteModel()
        return self.model.unit_of_work

    async def committed(self) -> tuple[int, int, int]:
        return len(self.model.orders), len(self.model.events), len(self.model.requests)

    async def event_orders(self) -> list[Order]:
        return [logged.order for logged in self.model.events]

    def decode(self, answer: Order) -> Order:
        return answer


class TestPostgresUnitOfWork(UnitOfWorkContract[order_pb2.Order]):
    @pytest.fixture
    async def new_uow(self, database_url: str) -> AsyncIterator[Callable[[], PostgresUnitOfWork]]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        self.pool = pool
        try:
            yield lambda: PostgresUnitOfWork(pool)
        finally:
            await pool.close()

    async def committed(self) -> tuple[int, int, int]:
        counts = await self.pool.fetchrow(
            "SELECT (SELECT count(*) FROM orders) AS orders,"
            " (SELECT count(*) FROM outbox) AS events,"
            " (SELECT count(*) FROM request_log) AS requests"
        )
        assert counts is not None
        return counts["orders"], counts["events"], counts["requests"]

    async def event_orders(self) -> list[order_pb2.Order]:
        rows = await self.pool.fetch("SELECT payload FROM outbox ORDER BY id")
        return [order_events_pb2.OrderEvent.FromString(row["payload"]).order for row in rows]

    def decode(self, answer: order_pb2.Order) -> Order:
        return wire.order_from_proto(answer)
