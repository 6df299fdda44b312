"""WatchOrderStatus: one order's current status, then every newer version, until terminal.

The subscription is taken before the order is read, so a change is never lost between the
two: one the feed applied before is in what the read path answers (the near cache, which the
feed keeps, is its first tier), one after is in the mailbox, and anything not newer than what
was sent is dropped. Resuming (`after_version`), the read asks for a newer version than the
caller has, so a tier still holding that one is passed over for one that knows better, down
to PostgreSQL. Versions are consecutive, so `skipped_versions` is exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from uuid import UUID

from uoom.orders.v1 import order_pb2
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.domain.errors import OrderNotFound
from uoom_orders.watch.change import TERMINAL_STATUSES
from uoom_orders.watch.hub import ORDER, WatchHub
from uoom_orders.watch.push import Pusher


class StatusReads(Protocol):
    async def get_summary(
        self, order_id: UUID, min_version: int
    ) -> tuple[order_pb2.OrderSummary | None, str]: ...


def _not_found(order_id: UUID) -> OrderNotFound:
    return OrderNotFound(f"order {order_id} does not exist", metadata={"order_id": str(order_id)})


async def stream_order_status(
    order_id: UUID,
    after_version: int,
    *,
    hub: WatchHub,
    reads: StatusReads,
    send: Callable[[pb.WatchOrderStatusResponse], Awaitable[None]],
) -> None:
    """Sends the order's versions newer than `after_version` until a terminal one; raises
    OrderNotFound, or WatchInterrupted when this replica cannot go on."""
    push = Pusher(ORDER, send)
    with hub.subscribe(ORDER, str(order_id)) as subscription:
        current, _ = await reads.get_summary(order_id, after_version + 1 if after_version else 0)
        if current is None:
            raise _not_found(order_id)
        last = after_version
        if current.version > last:
            skipped = current.version - last - 1 if last else 0
            await push(pb.WatchOrderStatusResponse(order=current, skipped_versions=skipped), None)
            last = current.version
        if current.status in TERMINAL_STATUSES:
            return
        while True:
            for change in await subscription.changes():
                summary = change.summary
                if summary is None:
                    raise _not_found(order_id)  # reconciliation removed it: its create was lost
                if not change.corrected and summary.version <= last:
                    continue  # sent already, or a duplicate or late event
                skipped = 0 if change.corrected else summary.version - last - 1
                await push(
                    pb.WatchOrderStatusResponse(
                        order=summary, skipped_versions=skipped, corrected=change.corrected
                    ),
                    change.committed_at,
                )
                last = summary.version
                if change.terminal:
                    return
