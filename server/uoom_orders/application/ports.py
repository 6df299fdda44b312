"""The application's ports, owned here and implemented by the adapters.

Writes: what the handlers need from the write model; write/ implements it on PostgreSQL,
tests/support/fake_unit_of_work.py in memory (tests/contract keeps the two alike). The handlers
never convert an order to any wire format. A unit of work `encode`s the order once per
command, in its own form (`A`: a protobuf message for PostgreSQL), and that one result is the
command's answer, the request log's copy of it and the outbox event's order.

Reads: what the queries need from the read path (read/tiers.py) and the page-token codec
(read/page_token.py); they answer the read model's messages as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import Order
from uoom_orders.read.ports import ListQuery, PageCursor

A = TypeVar("A")
A_contra = TypeVar("A_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class LoggedRequest(Generic[A]):
    """AIP-155: the first request with a request_id (its method and content) and its answer."""

    method: str
    fingerprint: bytes
    answer: A


class DuplicateRequest(Exception):
    """Another transaction recorded the same request_id first."""


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None: ...

    async def get_for_update(self, order_id: UUID) -> Order | None:
        """The order, locked until the unit of work ends; None if there is none."""
        ...

    async def save_status_change(self, order: Order) -> None:
        """Stores `order`, which must be one version after the stored one."""
        ...


class Outbox(Protocol[A_contra]):
    async def append(
        self, event: OrderEvent, order: A_contra, trace_context: dict[str, str] | None = None
    ) -> None:
        """Appends the event, published once the unit of work commits; `order` is the event's
        order as the unit of work encoded it."""
        ...


class RequestLog(Protocol[A]):
    async def find(self, request_id: UUID) -> LoggedRequest[A] | None: ...

    async def record(self, request_id: UUID, method: str, fingerprint: bytes, answer: A) -> None:
        """Raises DuplicateRequest when another transaction holds the same request_id."""
        ...


class UnitOfWork(Protocol[A]):
    """`async with uow: ...; await uow.commit()`; leaving without commit rolls back."""

    @property
    def orders(self) -> OrderRepository: ...
    @property
    def outbox(self) -> Outbox[A]: ...
    @property
    def requests(self) -> RequestLog[A]: ...

    def encode(self, order: Order) -> A:
        """The order in the form this unit of work logs answers and appends events in."""
        ...

    async def create(
        self,
        request_id: UUID,
        request: LoggedRequest[A],
        order: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> None:
        """CreateOrder's writes as one atomic step of their own, instead of `async with`: logs
        the request with its answer, adds the order, appends `event` carrying the answer.
        Raises DuplicateRequest, having written nothing, when the request_id is logged."""
        ...

    async def read_for_change(
        self, order_id: UUID, request_id: UUID
    ) -> tuple[Order | None, LoggedRequest[A] | None]:
        """A status change's one read, instead of `async with`: the order as committed (None:
        there is none) and what the request log holds for `request_id` (None: nothing)."""
        ...

    async def change(
        self,
        request_id: UUID,
        request: LoggedRequest[A],
        changed: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> bool:
        """A status change's writes as one atomic step of their own, instead of `async with`:
        stores `changed` if the stored order is still the version before it, then appends
        `event` carrying the answer and logs the request. False, having written nothing, when
        the stored order is another version (a concurrent change won); raises
        DuplicateRequest, having written nothing, when the request_id is logged."""
        ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork[A]]
TraceContext = Callable[[], dict[str, str]]


class OrderReads(Protocol):
    """The read path: each answer comes with the name of the tier (or tiers) that served it."""

    async def get_summary(
        self, order_id: UUID, min_version: int
    ) -> tuple[order_pb2.OrderSummary | None, str]: ...

    async def get_order(
        self, order_id: UUID, min_version: int
    ) -> tuple[order_pb2.Order | None, str]: ...

    async def get_summaries(
        self, order_ids: Sequence[UUID]
    ) -> tuple[dict[int, order_pb2.OrderSummary], list[str]]:
        """The orders found, keyed by their ids' integers (`UUID.int`), and the tiers that
        answered some of them."""
        ...

    async def list_summaries(self, query: ListQuery) -> tuple[list[order_pb2.OrderSummary], str]:
        """Up to `query.limit` orders after `query.after`, newest first."""
        ...


class PageTokens(Protocol):
    """Opaque page tokens bound to their query."""

    def encode(self, query: ListQuery, cursor: PageCursor) -> str: ...

    def decode(self, query: ListQuery, token: str) -> PageCursor:
        """Raises ValueError for a token this service did not make for `query`."""
        ...
