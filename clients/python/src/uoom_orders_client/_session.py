"""Session guarantees: what one client object has seen of each order, so it never sees less.

The service guarantees monotonic reads per replica; a client that talks to several replicas
(a load balancer, a retry on another address) could still read an older version from a replica
whose read model lags. The client remembers the newest version it wrote or read of each order
(a bounded LRU) and asks for at least that version (`min_version`) on the next read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

DEFAULT_SESSION_CAPACITY = 10_000


class SessionVersions:
    """The newest version seen of each order, for at most `capacity` orders (least recently
    used forgotten first)."""

    def __init__(self, capacity: int = DEFAULT_SESSION_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._versions: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._versions)

    def floor(self, order_id: str) -> int:
        """The newest version seen of the order; 0 when none is remembered."""
        key = _key(order_id)
        version = self._versions.get(key)
        if version is None:
            return 0
        self._versions.move_to_end(key)
        return version

    def observe(self, order_id: str, version: int) -> None:
        """Remembers `version` unless a newer one is remembered."""
        if not order_id or version < 1:
            return
        key = _key(order_id)
        if self._versions.get(key, 0) < version:
            self._versions[key] = version
        self._versions.move_to_end(key)
        while len(self._versions) > self._capacity:
            self._versions.popitem(last=False)

    def observe_all(self, orders: Iterable[tuple[str, int]]) -> None:
        for order_id, version in orders:
            self.observe(order_id, version)

    def reset(self, order_id: str, version: int) -> None:
        """Replaces what is remembered: the service says the order never reached more (its
        source of truth lost a commit, or the order was removed)."""
        key = _key(order_id)
        if version < 1:
            self._versions.pop(key, None)
        else:
            self._versions[key] = version


def _key(order_id: str) -> str:
    # Ids compare in their canonical, lower-case form.
    return order_id.strip().lower()
