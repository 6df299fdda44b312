"""DAX's two caches: items by key, and whole Query answers by request.

Both keep an entry for a fixed time after it was stored (DAX's TTL, 5 minutes by default) and
drop the least recently used entries past a size bound. Absence is cached too (DAX's negative
entries): an item found missing stays missing until the entry expires. Only a write through
this endpoint changes the item cache; nothing but time changes the query cache, so a Query can
answer an item that was changed or deleted since, as a real cluster does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from uoom_orders_dax.values import Item

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Hit(Generic[V]):
    """A cached value; `value` may itself say "absent" (a negative entry)."""

    value: V


class TtlCache(Generic[K, V]):
    """Entries that expire `ttl_seconds` after they were stored; LRU past `max_entries`.
    A TTL of 0 turns the cache off."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> Hit[V] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return Hit(value)

    def put(self, key: K, value: V) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# (table name, key bytes) → the item, or None when DynamoDB had none.
ItemCache = TtlCache[tuple[str, bytes], Item | None]
# The forwarded Query request, canonically serialised → DynamoDB's answer.
QueryCache = TtlCache[str, dict[str, Any]]
