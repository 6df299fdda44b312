"""The in-process near cache: bounded, version-monotonic, expiring with the read model's TTL.

Entries come from the event stream (every replica tails the topic), from read-model hits and
from PostgreSQL fallbacks. An entry is only ever replaced by a newer version, so a late or
duplicated event can never take a reader back in time — except by reconciliation's
corrections, which carry what PostgreSQL, the source of truth, has.

Every version stored here also raises this replica's floor for the order (version_floors.py),
which outlives the entry. When the feed that keeps the cache coherent is interrupted, entries
are not thrown away but demoted: a demoted entry no longer answers (it may have missed events),
yet the floor still bounds what the replica may answer, so a lagging lower tier cannot take a
reader back in time. A demoted entry answers again once a read or an event brings it up to date.
"""

from __future__ import annotations

import builtins
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.read.ports import ListQuery, NotServing
from uoom_orders.read.version_floors import VersionFloors

# Per-entry bookkeeping beyond the messages' own encoded size (dict slot, objects, key).
_ENTRY_OVERHEAD_BYTES = 600


@dataclass(frozen=True, slots=True)
class CachedOrder:
    summary: order_pb2.OrderSummary
    # The whole order when known (events and details reads); None after a status-only read.
    order: order_pb2.Order | None
    expires_at: float
    size: int
    # The cache's generation when stored: an entry of an older generation is a floor only.
    generation: int
    # `summary` as a status read answers it (wire.status_answer), made once when stored: an
    # answer from this entry sends these bytes (near_cache_reads.py).
    status_answer: bytes

    @property
    def version(self) -> int:
        return self.summary.version


class _LruEntries:
    """Entries by key, least recently used first, bounded by their count and their sizes.

    An OrderedDict, so that a lookup is two calls into C: cachetools' LRUCache (used before)
    made six Python calls per lookup, and a batch read of ten ids looks up ten.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._data: OrderedDict[int, CachedOrder] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: int) -> CachedOrder | None:
        """The entry, now the most recently used; None when absent."""
        entry = self._data.get(key)
        if entry is not None:
            self._data.move_to_end(key)
        return entry

    def get_many(self, keys: Iterable[int]) -> dict[int, CachedOrder]:
        """`get` of each key, those present: one call for a batch read's lookups."""
        data = self._data
        get, touch = data.get, data.move_to_end
        found = {}
        for key in keys:
            entry = get(key)
            if entry is not None:
                touch(key)
                found[key] = entry
        return found

    def set(self, key: int, entry: CachedOrder) -> bool:
        """Stores the entry as the most recently used, evicting the least recently used ones
        beyond the bounds; an entry larger than the whole byte budget is not stored (and
        the key's previous entry is dropped)."""
        self.pop(key)
        if entry.size > self._max_bytes:
            return False
        data = self._data
        data[key] = entry
        self.bytes += entry.size
        while len(data) > self._max_entries or self.bytes > self._max_bytes:
            _, evicted = data.popitem(last=False)
            self.bytes -= evicted.size
        return True

    def pop(self, key: int) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0


class NearCache:
    """An LRU of orders bounded by entries and by approximate bytes."""

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        floors: VersionFloors | None = None,
    ) -> None:
        # The floors every stored version raises; they outlive the entries.
        self.version_floors = VersionFloors() if floors is None else floors
        # Keyed by the ids' integers: a UUID's hash is computed in Python on every lookup, an
        # int's in C (a batch read looks each id up several times).
        self._entries = _LruEntries(max_entries, max_bytes)
        self._clock = clock
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._entries.bytes

    def _live(self, order_id: UUID) -> CachedOrder | None:
        entry = self._entries.get(order_id.int)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._entries.pop(order_id.int)
            return None
        return entry

    def get(self, order_id: UUID) -> CachedOrder | None:
        """The entry if it may answer (live, not demoted), else None; expired ones are dropped."""
        entry = self._live(order_id)
        if entry is None or entry.generation != self._generation:
            return None
        return entry

    def answering(self, order_id: UUID, min_version: int) -> CachedOrder | None:
        """The entry when it may answer a read asking for `min_version` or later: as `get`
        gives it, at `min_version` and at the order's floor or later; else None.

        `get` and the read path's version test in one call, for the status reads answered in
        one step (near_cache_reads.py)."""
        key = order_id.int
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._entries.pop(key)
            return None
        version = entry.summary.version
        if (
            entry.generation != self._generation
            or version < min_version
            or version < self.version_floors.floor(order_id)
        ):
            return None
        return entry

    def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        """The answering entries' status records among `order_ids`, keyed by the ids' integers
        (one loop, for batch reads)."""
        entries = self._entries.get_many([order_id.int for order_id in order_ids])
        now = self._clock()
        generation = self._generation
        return {
            key: entry.summary
            for key, entry in entries.items()
            if entry.expires_at > now and entry.generation == generation
        }

    # builtins: `bytes` in this class is the property above.
    def status_answers(self, keys: Sequence[int]) -> list[builtins.bytes] | None:
        """The `status_answer` of the answering entry of each id whose integer is in `keys`,
        in order, when every one has such an entry; else None."""
        entries = self._entries.get_many(keys)
        if len(entries) < len(keys):
            return None
        now = self._clock()
        generation = self._generation
        answers = []
        for entry in entries.values():
            if entry.expires_at <= now or entry.generation != generation:
                return None
            answers.append(entry.status_answer)
        return answers

    def floor(self, order_id: UUID) -> int:
        """The newest version of the order this replica has seen, cached or not; 0 if none."""
        return self.version_floors.floor(order_id)

    def floors(self, order_ids: Sequence[UUID]) -> dict[int, int]:
        """`floor` of each remembered id, keyed by the id's integer; others are left out."""
        return self.version_floors.floors(order_ids)

    def put(
        self,
        summary: order_pb2.OrderSummary,
        order: order_pb2.Order | None,
        expires_at: float,
    ) -> bool:
        """Stores the order unless a newer version was seen; returns whether it was stored.

        The same version replaces a demoted entry (it is up to date again) and an entry
        without the whole order when this one has it.
        """
        if expires_at <= self._clock():
            return False
        order_id = UUID(summary.order_id)
        if summary.version < self.version_floors.floor(order_id):
            return False  # older than seen here, though the entry itself may be gone
        current = self._live(order_id)
        if current is not None:
            if current.version > summary.version:
                return False
            if (
                current.version == summary.version
                and current.generation == self._generation
                and (order is None or current.order)
            ):
                return False
        return self._store(order_id, summary, order, expires_at, exact=False)

    def replace(
        self,
        summary: order_pb2.OrderSummary,
        order: order_pb2.Order | None,
        expires_at: float,
        *,
        if_version: int | None = None,
    ) -> bool:
        """Stores the order whatever version is cached: for what PostgreSQL says when it is
        behind this cache (a commit it lost). With `if_version`, only while the cached
        version is still that one (0: nothing cached), so a newer event applied meanwhile
        stays."""
        order_id = UUID(summary.order_id)
        if if_version is not None and self.floor(order_id) != if_version:
            return False
        if expires_at <= self._clock():
            self._entries.pop(order_id.int)
            self.version_floors.set(order_id, summary.version)
            return False
        return self._store(order_id, summary, order, expires_at, exact=True)

    def discard(self, order_id: UUID) -> None:
        """Forgets the order, floor included (PostgreSQL does not have it)."""
        self._entries.pop(order_id.int)
        self.version_floors.discard(order_id)

    def demote(self) -> None:
        """Every entry stops answering but keeps bounding answers (see the module's doc)."""
        self._generation += 1

    def clear(self) -> None:
        """Forgets every entry; the floors stay (nothing older may answer after this)."""
        self._entries.clear()

    def _store(
        self,
        order_id: UUID,
        summary: order_pb2.OrderSummary,
        order: order_pb2.Order | None,
        expires_at: float,
        *,
        exact: bool,
    ) -> bool:
        # The floor first: it holds even when the entry does not fit.
        if exact:
            self.version_floors.set(order_id, summary.version)
        else:
            self.version_floors.raise_to(order_id, summary.version)
        answer = wire.status_answer(summary)
        # The record, its encoding and the whole order are all held.
        size = 2 * len(answer) + (order.ByteSize() if order is not None else 0)
        entry = CachedOrder(
            summary, order, expires_at, size + _ENTRY_OVERHEAD_BYTES, self._generation, answer
        )
        return self._entries.set(order_id.int, entry)


class NearCacheUnavailable(NotServing):
    """The event stream that keeps the near cache coherent is not being followed right now."""


class NearCacheStore:
    """The near cache as the read path's first tier. Serves only while its feed is live: a cache
    that may have missed events must not answer (it would answer old versions)."""

    name = "near-cache"

    def __init__(self, cache: NearCache, is_live: Callable[[], bool]) -> None:
        self._cache = cache
        self._is_live = is_live

    def _check_live(self) -> None:
        if not self._is_live():
            raise NearCacheUnavailable("near cache feed is not live")

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        self._check_live()
        entry = self._cache.get(order_id)
        return None if entry is None else entry.summary

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        self._check_live()
        entry = self._cache.get(order_id)
        return None if entry is None else entry.order

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        self._check_live()
        return self._cache.get_summaries(order_ids)

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        raise NotImplementedError("the near cache does not answer lists")
