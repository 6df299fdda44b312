"""The read path's rules over in-memory stores: order of tiers, misses, stale versions,
failures, breakers, batches, fills and write-backs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from uuid import UUID

import pytest
from prometheus_client import REGISTRY
from uoom.orders.v1 import order_pb2

from uoom_orders.domain.errors import StoreUnavailable
from uoom_orders.read.circuit_breaker import BreakerState, CircuitBreaker
from uoom_orders.read.near_cache import NearCache, NearCacheStore
from uoom_orders.read.ports import ListQuery, ListScope
from uoom_orders.read.tiers import ReadPath, Tier
from uoom_orders.wire import summary_from_order


class DictStore:
    def __init__(self, name: str) -> None:
        self.name = name
        self.orders: dict[UUID, order_pb2.Order] = {}
        self.fail: Exception | None = None
        self.delay = 0.0
        self.calls = 0

    def put(self, order_id: UUID, version: int) -> None:
        self.orders[order_id] = order_pb2.Order(order_id=str(order_id), version=version)

    async def _enter(self) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        await self._enter()
        found = self.orders.get(order_id)
        return (
            None
            if found is None
            else order_pb2.OrderSummary(order_id=found.order_id, version=found.version)
        )

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        await self._enter()
        return self.orders.get(order_id)

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        await self._enter()
        return {
            i.int: order_pb2.OrderSummary(order_id=str(i), version=self.orders[i].version)
            for i in order_ids
            if i in self.orders
        }

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        await self._enter()
        return [order_pb2.OrderSummary(order_id=o.order_id) for o in self.orders.values()]


class Recorder:
    def __init__(self) -> None:
        self.remembered: list[int] = []
        self.written_back: list[UUID] = []
        self.copies: list[tuple[order_pb2.OrderSummary, order_pb2.Order | None]] = []

    def remember(self, summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        self.remembered.append(summary.version)

    def schedule(self, summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        self.written_back.append(UUID(summary.order_id))
        self.copies.append((summary, order))


def build(
    *, near_lists: bool = False
) -> tuple[ReadPath, DictStore, DictStore, DictStore, Recorder, CircuitBreaker]:
    near, dynamo, pg = DictStore("near"), DictStore("dyn"), DictStore("pg")
    breaker = CircuitBreaker(f"dyn-{uuid.uuid4()}", failure_threshold=2, reset_seconds=60)
    recorder = Recorder()
    path = ReadPath(
        [
            Tier(near, serves_lists=near_lists, local=True),
            Tier(dynamo, timeout=0.05, breaker=breaker),
        ],
        Tier(pg, timeout=1),
        remember=recorder.remember,
        write_back=recorder,
    )
    return path, near, dynamo, pg, recorder, breaker


async def test_the_first_tier_that_has_it_answers() -> None:
    path, near, dynamo, _pg, rec, _ = build()
    oid = uuid.uuid4()
    near.put(oid, 3)
    dynamo.put(oid, 3)
    found, tier = await path.get_summary(oid, 0)
    assert (found.version if found else None, tier) == (3, "near")
    assert dynamo.calls == 0
    assert rec.remembered == []  # nothing to copy into the near cache from itself


async def test_a_miss_falls_through_and_is_copied_up() -> None:
    path, _, dynamo, pg, rec, _ = build()
    oid = uuid.uuid4()
    dynamo.put(oid, 2)
    _found, tier = await path.get_summary(oid, 0)
    assert tier == "dyn"
    assert rec.remembered == [2]
    assert pg.calls == 0


async def test_an_older_version_than_min_version_is_passed_over() -> None:
    path, near, dynamo, pg, rec, _ = build()
    oid = uuid.uuid4()
    near.put(oid, 1)
    dynamo.put(oid, 2)
    pg.put(oid, 3)
    found, tier = await path.get_summary(oid, 3)
    assert (found.version if found else None, tier) == (3, "pg")
    assert rec.written_back == [oid]  # the read model gets the newer version


async def test_postgres_answers_absence_without_write_back() -> None:
    path, _, _, _, rec, _ = build()
    found, tier = await path.get_summary(uuid.uuid4(), 0)
    assert (found, tier) == (None, "pg")
    assert rec.written_back == []


async def test_a_failing_or_slow_tier_is_skipped_and_its_breaker_opens() -> None:
    path, _, dynamo, pg, _, breaker = build()
    oid = uuid.uuid4()
    pg.put(oid, 1)
    dynamo.fail = ConnectionError("down")
    assert (await path.get_summary(oid, 0))[1] == "pg"
    dynamo.fail, dynamo.delay = None, 0.2  # now it times out
    assert (await path.get_summary(oid, 0))[1] == "pg"
    assert breaker.state is BreakerState.OPEN
    calls = dynamo.calls
    assert (await path.get_summary(oid, 0))[1] == "pg"
    assert dynamo.calls == calls  # not even asked while open


async def test_every_store_down_is_unavailable() -> None:
    path, _near, dynamo, pg, _, _ = build()
    dynamo.fail = pg.fail = ConnectionError("down")
    with pytest.raises(StoreUnavailable):
        await path.get_summary(uuid.uuid4(), 0)


async def test_postgres_down_with_the_tiers_up_still_answers() -> None:
    path, _, dynamo, pg, _, _ = build()
    oid = uuid.uuid4()
    dynamo.put(oid, 5)
    pg.fail = ConnectionError("down")
    found, tier = await path.get_order(oid, 0)
    assert (found.version if found else None, tier) == (5, "dyn")


async def test_a_batch_makes_one_pass_per_tier_over_what_is_still_missing() -> None:
    path, near, dynamo, pg, rec, _ = build()
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    near.put(a, 1)
    dynamo.put(b, 1)
    pg.put(c, 1)
    found, tiers = await path.get_summaries([a, b, c, d])
    assert set(found) == {a.int, b.int, c.int}
    assert tiers == ["near", "dyn", "pg"]
    assert (near.calls, dynamo.calls, pg.calls) == (1, 1, 1)
    assert rec.written_back == [c]


async def test_lists_skip_tiers_that_do_not_serve_them() -> None:
    path, near, dynamo, _pg, _, _ = build()
    query = ListQuery(ListScope.CUSTOMER, uuid.uuid4(), None, 10, None)
    assert (await path.list_summaries(query))[1] == "dyn"
    assert near.calls == 0
    dynamo.fail = ConnectionError("down")
    assert (await path.list_summaries(query))[1] == "pg"


async def test_the_write_back_gets_what_postgres_answered_and_reads_nothing_more() -> None:
    path, _, _, pg, rec, _ = build()
    a, b, c = (uuid.uuid4() for _ in range(3))
    for oid in (a, b, c):
        pg.put(oid, 4)
    summary, _ = await path.get_summary(a, 0)
    order, _ = await path.get_order(b, 0)
    found, _ = await path.get_summaries([c])
    assert order is not None
    assert pg.calls == 3  # one read each: nothing read again for the write-back
    assert rec.copies == [(summary, None), (summary_from_order(order), order), (found[c.int], None)]


def _sample(name: str, tier: str) -> float:
    return REGISTRY.get_sample_value(name, {"tier": tier}) or 0.0


def _counts(tier: str) -> tuple[float, float, float]:
    return (
        _sample("dynamodb_cache_hits_total", tier),
        _sample("dynamodb_cache_misses_total", tier),
        _sample("order_read_tier_errors_total", tier),
    )


async def test_a_batch_counts_hits_and_misses_per_id() -> None:
    dynamo, pg = DictStore(f"dyn-{uuid.uuid4()}"), DictStore(f"pg-{uuid.uuid4()}")
    path = ReadPath([Tier(dynamo)], Tier(pg))
    ids = [uuid.uuid4() for _ in range(5)]
    for oid in ids[:3]:
        dynamo.put(oid, 1)
    await path.get_summaries(ids)
    assert _counts(dynamo.name) == (3, 2, 0)
    await path.get_summary(ids[0], 0)
    await path.get_summary(ids[4], 0)
    assert _counts(dynamo.name) == (4, 3, 0)


async def test_a_near_cache_whose_feed_is_down_is_passed_over_as_a_miss() -> None:
    cache = NearCache()
    live = False
    store = NearCacheStore(cache, lambda: live)
    store.name = f"near-{uuid.uuid4()}"
    pg = DictStore(f"pg-{uuid.uuid4()}")
    path = ReadPath([Tier(store, serves_lists=False, local=True)], Tier(pg))
    oid = uuid.uuid4()
    cache.put(order_pb2.OrderSummary(order_id=str(oid), version=1), None, time.time() + 60)
    pg.put(oid, 1)
    assert (await path.get_summary(oid, 0))[1] == pg.name
    assert (await path.get_order(oid, 0))[1] == pg.name
    await path.get_summaries([oid, uuid.uuid4()])
    assert _counts(store.name) == (0, 4, 0)  # a miss for each id asked, no error
    live = True
    assert (await path.get_summary(oid, 0))[1] == store.name
    assert _counts(store.name) == (1, 4, 0)
