"""This replica's memory of the newest version it has seen of each order (its *floor*).

Monotonic reads per replica rest on it: no answer may be older than the floor (see tiers.py).
It is kept apart from the near cache on purpose: the cache forgets orders (its bound, the short
life of entries copied up from lower tiers) and may be off altogether, while a floor is a few
bytes and must outlive both. Only versions are kept — no message — so the bound can be large.

Versions only go up, except when PostgreSQL, the source of truth, says otherwise (a commit it
lost to a failover or a restore): `replace` sets a floor below itself, `discard` forgets an order
PostgreSQL does not have.

Bounded by entries; the oldest raised floor is forgotten first. A forgotten floor is the one gap
left: the replica may then answer that order from a lower tier that is further behind than what
it answered before — only for an order not read or changed here while `max_entries` others were.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from uoom.orders.v1 import order_pb2


class VersionFloors:
    """order id → newest version seen, bounded; the keys are the ids' integers (half the memory
    of UUID objects: about 100 bytes an order)."""

    def __init__(self, max_entries: int = 500_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        # Insertion order is the eviction order: a raised floor moves to the end.
        self._floors: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._floors)

    def floor(self, order_id: UUID) -> int:
        """The newest version of the order seen here; 0 when none is remembered."""
        return self._floors.get(order_id.int, 0)

    def floors(self, order_ids: Sequence[UUID]) -> dict[int, int]:
        """`floor` of each remembered id, keyed by the id's integer; others are left out."""
        floors = self._floors
        found = {}
        for order_id in order_ids:
            key = order_id.int
            version = floors.get(key)
            if version is not None:
                found[key] = version
        return found

    def raise_to(self, order_id: UUID, version: int) -> None:
        """Remembers `version` unless a newer one is remembered."""
        key = order_id.int
        floors = self._floors
        current = floors.get(key)
        if current is None:
            floors[key] = version
            if len(floors) > self._max_entries:
                del floors[next(iter(floors))]
        elif version > current:
            del floors[key]
            floors[key] = version

    def set(self, order_id: UUID, version: int) -> None:
        """Remembers `version` whatever is remembered (PostgreSQL's word)."""
        key = order_id.int
        floors = self._floors
        floors.pop(key, None)
        floors[key] = version
        if len(floors) > self._max_entries:
            del floors[next(iter(floors))]

    def discard(self, order_id: UUID) -> None:
        self._floors.pop(order_id.int, None)

    def clear(self) -> None:
        self._floors.clear()

    def replace(
        self,
        summary: order_pb2.OrderSummary,
        order: order_pb2.Order | None,
        expires_at: float,
        *,
        if_version: int | None = None,
    ) -> bool:
        """The read path's way below a floor when no near cache keeps the order (see
        ports.VersionMemory): sets the floor to PostgreSQL's version, with `if_version` only
        while the floor is still that one."""
        order_id = UUID(summary.order_id)
        if if_version is not None and self.floor(order_id) != if_version:
            return False
        self.set(order_id, summary.version)
        return True
