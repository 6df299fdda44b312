"""An in-memory write model behind the application's UnitOfWork port, for fast handler tests.

Kept honest by tests/contract/test_unit_of_work_contract.py, which runs the same tests against
this fake and against PostgresUnitOfWork. Like PostgreSQL, a unit of work sees what was
committed plus its own writes, keeps nothing unless committed, and after a failed statement
(a duplicate request_id) refuses every other one and commits nothing. Unlike PostgreSQL it
has no locks: run one unit of work at a time. Orders are "encoded" as themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from uoom_orders.application.ports import DuplicateRequest, LoggedRequest, TraceContext
from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import Order


class TransactionAborted(Exception):
    """A statement after a failed one (PostgreSQL: "current transaction is aborted")."""


@dataclass
class LoggedEvent:
    event: OrderEvent
    order: Order  # as the unit of work encoded it
    trace_context: dict[str, str]


@dataclass
class FakeWriteModel:
    """The committed state every unit of work from `unit_of_work` shares, and what they did."""

    orders: dict[UUID, Order] = field(default_factory=dict)
    events: list[LoggedEvent] = field(default_factory=list)
    requests: dict[UUID, LoggedRequest[Order]] = field(default_factory=dict)
    commits: int = 0
    rollbacks: int = 0
    conflicts: int = 0  # status changes that found another version stored, and wrote nothing
    encoded: int = 0  # calls of `encode`: one conversion per command

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class _Transaction:
    """One unit of work's writes, applied to the model at commit."""

    def __init__(self, model: FakeWriteModel) -> None:
        self.model = model
        self.orders: dict[UUID, Order] = {}
        self.events: list[LoggedEvent] = []
        self.requests: dict[UUID, LoggedRequest[Order]] = {}
        self.failed = False

    def statement(self) -> None:
        if self.failed:
            raise TransactionAborted("a statement of this transaction failed")

    def order(self, order_id: UUID) -> Order | None:
        return self.orders.get(order_id) or self.model.orders.get(order_id)


class _Orders:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def add(self, order: Order) -> None:
        self._tx.statement()
        if self._tx.order(order.order_id) is not None:
            self._tx.failed = True
            raise ValueError(f"order {order.order_id} exists")
        self._tx.orders[order.order_id] = order

    async def get_for_update(self, order_id: UUID) -> Order | None:
        self._tx.statement()
        return self._tx.order(order_id)

    async def save_status_change(self, order: Order) -> None:
        self._tx.statement()
        stored = self._tx.order(order.order_id)
        if stored is None or stored.version != order.version - 1:
            self._tx.failed = True
            raise RuntimeError(f"order {order.order_id} changed under its row lock")
        self._tx.orders[order.order_id] = order


class _Outbox:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def append(
        self, event: OrderEvent, order: Order, trace_context: dict[str, str] | None = None
    ) -> None:
        self._tx.statement()
        self._tx.events.append(LoggedEvent(event, order, dict(trace_context or {})))


class _Requests:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def find(self, request_id: UUID) -> LoggedRequest[Order] | None:
        self._tx.statement()
        return self._tx.requests.get(request_id) or self._tx.model.requests.get(request_id)

    async def record(
        self, request_id: UUID, method: str, fingerprint: bytes, answer: Order
    ) -> None:
        self._tx.statement()
        if request_id in self._tx.requests or request_id in self._tx.model.requests:
            self._tx.failed = True
            raise DuplicateRequest(str(request_id))
        self._tx.requests[request_id] = LoggedRequest(method, fingerprint, answer)


class FakeUnitOfWork:
    """The UnitOfWork port over a FakeWriteModel; `async with`, then `commit()` or nothing."""

    def __init__(self, model: FakeWriteModel) -> None:
        self._model = model
        self._tx: _Transaction | None = None

    def _open(self) -> _Transaction:
        assert self._tx is not None, "used outside `async with`"
        return self._tx

    @property
    def orders(self) -> _Orders:
        return _Orders(self._open())

    @property
    def outbox(self) -> _Outbox:
        return _Outbox(self._open())

    @property
    def requests(self) -> _Requests:
        return _Requests(self._open())

    def encode(self, order: Order) -> Order:
        self._model.encoded += 1
        return order

    async def create(
        self,
        request_id: UUID,
        request: LoggedRequest[Order],
        order: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> None:
        """Like PostgreSQL's one statement: all of it committed, or nothing written."""
        assert self._tx is None, "create is a transaction of its own, not one inside `async with`"
        model = self._model
        context = dict(trace_context())  # taken before the write, as PostgreSQL's is
        if request_id in model.requests:
            model.rollbacks += 1
            raise DuplicateRequest(str(request_id))
        if order.order_id in model.orders:
            model.rollbacks += 1
            raise ValueError(f"order {order.order_id} exists")
        model.requests[request_id] = request
        model.orders[order.order_id] = order
        model.events.append(LoggedEvent(event, request.answer, context))
        model.commits += 1

    async def read_for_change(
        self, order_id: UUID, request_id: UUID
    ) -> tuple[Order | None, LoggedRequest[Order] | None]:
        """What is committed: the order and the request's logged answer."""
        assert self._tx is None, "read_for_change runs outside `async with`"
        return self._model.orders.get(order_id), self._model.requests.get(request_id)

    async def change(
        self,
        request_id: UUID,
        request: LoggedRequest[Order],
        changed: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> bool:
        """Like PostgreSQL's one statement: stored over the version before it and committed,
        or nothing written."""
        assert self._tx is None, "change is a transaction of its own, not one inside `async with`"
        model = self._model
        context = dict(trace_context())  # taken before the write, as PostgreSQL's is
        stored = model.orders.get(changed.order_id)
        if stored is None or stored.version != changed.version - 1:
            model.conflicts += 1
            return False
        if request_id in model.requests:
            model.rollbacks += 1
            raise DuplicateRequest(str(request_id))
        model.orders[changed.order_id] = changed
        model.events.append(LoggedEvent(event, request.answer, context))
        model.requests[request_id] = request
        model.commits += 1
        return True

    async def __aenter__(self) -> FakeUnitOfWork:
        self._tx = _Transaction(self._model)
        return self

    async def commit(self) -> None:
        tx = self._open()
        self._tx = None
        if tx.failed:  # PostgreSQL answers COMMIT of a failed transaction with ROLLBACK
            self._model.rollbacks += 1
            return
        self._model.orders.update(tx.orders)
        self._model.events.extend(tx.events)
        self._model.requests.update(tx.requests)
        self._model.commits += 1

    async def __aexit__(self, *exc_info: object) -> None:
        if self._tx is not None:
            self._model.rollbacks += 1
            self._tx = None
