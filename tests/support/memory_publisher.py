"""An in-memory EventPublisher for tests, held to the same contract tests as Kafka's."""

from __future__ import annotations

from collections.abc import Sequence

from uoom_orders.relay.publisher import PublishError
from uoom_orders.relay.records import EventMessage, OutboxRecord, event_message


class InMemoryEventPublisher:
    """Keeps published messages in a list; can be told to fail like a broker that is down."""

    def __init__(self) -> None:
        self.messages: list[EventMessage] = []
        """Every acknowledged message, in publish order."""
        self.batches = 0
        """Successful publish_batch calls with at least one record."""
        self.available = True
        """False: every batch fails, as with the broker down."""
        self._failures_left = 0
        self._closed = False

    def fail_next(self, batches: int = 1) -> None:
        """Makes the next `batches` non-empty batches fail."""
        self._failures_left += batches

    async def __aenter__(self) -> InMemoryEventPublisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        """Appends the batch's messages, or raises PublishError and keeps none of them."""
        if self._closed:
            raise PublishError("the publisher is closed")
        if not records:
            return
        if not self.available:
            raise PublishError("the in-memory broker is unavailable")
        if self._failures_left > 0:
            self._failures_left -= 1
            raise PublishError("injected failure")
        self.messages.extend(event_message(r) for r in records)
        self.batches += 1

    async def close(self) -> None:
        """Safe to call twice."""
        self._closed = True
