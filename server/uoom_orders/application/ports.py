"""What the handlers need from the write model; the PostgreSQL adapters implement it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import Order
from uoom_orders.write.request_log import LoggedRequest


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None: ...
    async def get_for_update(self, order_id: UUID) -> Order | None: ...
    async def save_status_change(self, order: Order) -> None: ...


class Outbox(Protocol):
    async def append(
        self, event: OrderEvent, trace_context: dict[str, str] | None = None
    ) -> None: ...


class RequestLog(Protocol):
    async def find(self, request_id: UUID) -> LoggedRequest | None: ...
    async def record(
        self, request_id: UUID, method: str, fingerprint: bytes, response: bytes
    ) -> None: ...


class UnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def requests(self) -> RequestLog: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
