"""The read path: tiers tried in order, each guarded by a timeout and a circuit breaker,
with PostgreSQL (the source of truth) last.

A tier that misses, holds an older version than the caller's `min_version`, is not serving
(the near cache while its feed is down: counted as a miss), times out or fails is passed
over; what a lower tier finds is copied up (near cache always; the DynamoDB read model after
a PostgreSQL fallback, with the projector's version condition).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.domain.errors import StoreUnavailable
from uoom_orders.observability import metrics
from uoom_orders.observability.loop_metrics import Count
from uoom_orders.read.circuit_breaker import CircuitBreaker
from uoom_orders.read.ports import ListQuery, NotServing, OrderReadStore, VersionMemory, WriteBack
from uoom_orders.wire import summary_from_order

T = TypeVar("T")
P = ParamSpec("P")
_log = logging.getLogger(__name__)

Summary = order_pb2.OrderSummary
Order = order_pb2.Order


class TierFailed(Exception):
    """A tier did not answer (error, timeout, or its breaker is open)."""


class TierPassedOver(TierFailed):
    """A tier's store declined to answer (it is not serving now): a miss, not a failure."""


class Tier:
    """One store of the read path with its guards. Near cache: no timeout, no breaker."""

    def __init__(
        self,
        store: OrderReadStore,
        *,
        timeout: float | None = None,
        breaker: CircuitBreaker | None = None,
        serves_lists: bool = True,
        local: bool = False,
    ) -> None:
        self.store = store
        # In-process (the near cache): nothing to copy into it from itself.
        self.local = local
        self.name = store.name
        self.serves_lists = serves_lists
        self._timeout = timeout
        self._breaker = breaker
        self._errors = metrics.TIER_ERRORS.labels(tier=self.name)
        self._latency = metrics.READ_LATENCY.labels(tier=self.name)
        self.served = metrics.READS_SERVED.labels(tier=self.name)

    async def call(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Runs one read against the store; raises TierFailed instead of any store error."""
        breaker = self._breaker
        if breaker is not None and not breaker.allow():
            raise TierFailed(f"{self.name}: circuit open")
        started = time.perf_counter()
        try:
            if self._timeout is None:
                result = await operation(*args, **kwargs)
            else:
                async with asyncio.timeout(self._timeout):
                    result = await operation(*args, **kwargs)
        except NotServing as error:
            raise TierPassedOver(f"{self.name}: {error}") from error
        except Exception as error:
            self._errors.inc()
            if breaker is not None:
                breaker.record_failure()
            _log.debug("read tier %s failed: %r", self.name, error)
            raise TierFailed(f"{self.name}: {error!r}") from error
        self._latency.observe(time.perf_counter() - started)
        if breaker is not None:
            breaker.record_success()
        return result

    # Bound on first use: PostgreSQL, the source, never hits or misses, and an exported
    # `dynamodb_cache_hits_total{tier="postgres"} 0` would mislead whoever reads it.
    @functools.cached_property
    def _hits(self) -> Count:
        return metrics.CACHE_HITS.labels(tier=self.name)

    @functools.cached_property
    def _misses(self) -> Count:
        return metrics.CACHE_MISSES.labels(tier=self.name)

    def answered(self, count: int, seconds: float) -> None:
        """What is counted when this tier answers a read of `count` ids on its own in
        `seconds`, outside `call` (near_cache_reads.py): its time, its hits, one answer."""
        self._latency.observe(seconds)
        self._hits.inc(count)
        self.served.inc()

    def hit(self, count: int = 1) -> None:
        self._hits.inc(count)

    def miss(self, count: int = 1) -> None:
        self._misses.inc(count)


class ReadPath:
    """The tiers in order (near cache, DAX, DynamoDB — each optional), then PostgreSQL.

    Monotonic reads per replica: with a `memory` (the near cache), no answer is older than the
    newest version this replica has seen of the order — on its feed or in an earlier answer —
    whatever state its tiers are in. A tier holding something older is passed over like a
    miss, down to PostgreSQL. PostgreSQL itself is never overruled: when it is behind the floor
    it lost a commit (a failover or a restore), and what it says replaces the floor.
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        source: Tier,
        *,
        remember: Callable[[Summary, Order | None], None] | None = None,
        write_back: WriteBack | None = None,
        memory: VersionMemory | None = None,
        memory_ttl_seconds: float = 60.0,
    ) -> None:
        self._tiers = tuple(tiers)
        self._list_tiers = tuple(t for t in tiers if t.serves_lists)
        self._source = source
        self._remember = remember
        self._write_back = write_back
        self._memory = memory
        self._memory_ttl = memory_ttl_seconds

    async def get_summary(self, order_id: UUID, min_version: int) -> tuple[Summary | None, str]:
        """The order's status record from the first tier that has it at `min_version` or later
        (and at this replica's floor or later)."""
        floor = 0 if self._memory is None else self._memory.floor(order_id)
        wanted = max(min_version, floor)
        for tier in self._tiers:
            store = tier.store
            try:
                found = await tier.call(store.get_summary, order_id)
            except TierPassedOver:
                tier.miss()
                continue
            except TierFailed:
                continue
            if found is not None and found.version >= wanted:
                tier.hit()
                tier.served.inc()
                self._fill(tier, found, None)
                return found, tier.name
            tier.miss()
        found = await self._from_source(self._source.store.get_summary, order_id)
        if found is not None:
            self._from_truth(found, None, floor)
            if self._write_back is not None:
                self._write_back.schedule(found, None)
        return found, self._source.name

    async def get_order(self, order_id: UUID, min_version: int) -> tuple[Order | None, str]:
        """The whole order, like get_summary."""
        floor = 0 if self._memory is None else self._memory.floor(order_id)
        wanted = max(min_version, floor)
        for tier in self._tiers:
            store = tier.store
            try:
                found = await tier.call(store.get_order, order_id)
            except TierPassedOver:
                tier.miss()
                continue
            except TierFailed:
                continue
            if found is not None and found.version >= wanted:
                tier.hit()
                tier.served.inc()
                self._fill(tier, summary_from_order(found), found)
                return found, tier.name
            tier.miss()
        found = await self._from_source(self._source.store.get_order, order_id)
        if found is not None:
            summary = summary_from_order(found)
            self._from_truth(summary, found, floor)
            if self._write_back is not None:
                self._write_back.schedule(summary, found)
        return found, self._source.name

    async def get_summaries(
        self, order_ids: Sequence[UUID]
    ) -> tuple[dict[int, Summary], list[str]]:
        """One pass per tier over the ids still missing; returns what was found, keyed by the
        ids' integers, and the tiers that answered some of it."""
        found: dict[int, Summary] = {}
        remaining = list(order_ids)
        used: list[str] = []
        # Read once something other than the near cache answers: the near cache is the memory
        # (or holds nothing), and what it answers is at the floor, which it raised storing it.
        floors: dict[int, int] | None = None
        for tier in self._tiers:
            if not remaining:
                break
            store = tier.store
            batch = remaining
            try:
                got = await tier.call(store.get_summaries, batch)
            except TierPassedOver:
                tier.miss(len(batch))
                continue
            except TierFailed:
                continue
            if got and not tier.local:
                if floors is None:
                    floors = self._floors(remaining)
                if floors:
                    got = {i: s for i, s in got.items() if s.version >= floors.get(i, 0)}
            if got:
                used.append(tier.name)
                tier.hit(len(got))
                tier.served.inc()
                found.update(got)
                if self._remember is not None and not tier.local:
                    for summary in got.values():
                        self._remember(summary, None)
                if len(got) == len(remaining):
                    remaining = []
                    break
            remaining = [i for i in remaining if i.int not in got]
            if remaining:
                tier.miss(len(remaining))
        if remaining:
            batch = remaining
            if floors is None:
                floors = self._floors(remaining)
            got = await self._from_source(self._source.store.get_summaries, batch)
            used.append(self._source.name)
            for key, summary in got.items():
                found[key] = summary
                self._from_truth(summary, None, floors.get(key, 0))
                if self._write_back is not None:
                    self._write_back.schedule(summary, None)
        return found, used

    def _floors(self, order_ids: Sequence[UUID]) -> dict[int, int]:
        return {} if self._memory is None else self._memory.floors(order_ids)

    async def list_summaries(self, query: ListQuery) -> tuple[list[Summary], str]:
        """A page from the first list-capable tier that answers (DAX is never asked: its query
        cache is not invalidated by item writes), else from PostgreSQL."""
        for tier in self._list_tiers:
            store = tier.store
            try:
                page = await tier.call(store.list_summaries, query)
            except TierFailed:
                continue
            tier.served.inc()
            return page, tier.name
        page = await self._from_source(self._source.store.list_summaries, query)
        return page, self._source.name

    async def list_from_source(self, query: ListQuery) -> list[Summary]:
        """A page from PostgreSQL itself, for a caller that must not miss a change the read
        model has not caught up with yet (a restaurant board's first orders)."""
        return await self._from_source(self._source.store.list_summaries, query)

    async def _from_source(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            result = await self._source.call(operation, *args, **kwargs)
        except TierFailed as error:
            raise StoreUnavailable(
                "the order could not be read: the read tiers missed and PostgreSQL is unavailable"
            ) from error
        self._source.served.inc()
        return result

    def _fill(self, served_by: Tier, summary: Summary, order: Order | None) -> None:
        if self._remember is not None and not served_by.local:
            self._remember(summary, order)

    def _from_truth(self, summary: Summary, order: Order | None, floor: int) -> None:
        """Copies up what PostgreSQL answered; below the floor it replaces the floor, unless
        a newer event moved the floor meanwhile (then that event's version stays)."""
        if self._memory is not None and summary.version < floor:
            _log.warning(
                "order %s: PostgreSQL has version %d, this replica saw %d (a lost commit?)",
                summary.order_id,
                summary.version,
                floor,
            )
            self._memory.replace(summary, order, time.time() + self._memory_ttl, if_version=floor)
            return
        self._fill(self._source, summary, order)
