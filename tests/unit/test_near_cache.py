"""The near cache: bounded, version-monotonic, expiring."""

from __future__ import annotations

import uuid

import pytest
from uoom.orders.v1 import order_pb2

from uoom_orders.read.near_cache import NearCache, NearCacheStore, NearCacheUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def summary(order_id: uuid.UUID, version: int, status: int = 1) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(order_id=str(order_id), version=version, status=status)  # type: ignore[arg-type]


def order(order_id: uuid.UUID, version: int) -> order_pb2.Order:
    return order_pb2.Order(order_id=str(order_id), version=version, tracking_code="T" * 50)


def test_newer_versions_replace_older_never_the_reverse() -> None:
    clock = Clock()
    cache = NearCache(clock=clock)
    oid = uuid.uuid4()
    assert cache.put(summary(oid, 2), None, clock.now + 60)
    assert not cache.put(summary(oid, 1), None, clock.now + 60)
    assert not cache.put(summary(oid, 2), None, clock.now + 60)
    entry = cache.get(oid)
    assert entry is not None
    assert entry.version == 2
    assert cache.put(summary(oid, 3), None, clock.now + 60)
    entry = cache.get(oid)
    assert entry is not None
    assert entry.version == 3


def test_the_same_version_with_the_whole_order_fills_in_the_details() -> None:
    clock = Clock()
    cache = NearCache(clock=clock)
    oid = uuid.uuid4()
    cache.put(summary(oid, 4), None, clock.now + 60)
    assert cache.put(summary(oid, 4), order(oid, 4), clock.now + 60)
    entry = cache.get(oid)
    assert entry is not None
    assert entry.order is not None


def test_entries_expire() -> None:
    clock = Clock()
    cache = NearCache(clock=clock)
    oid = uuid.uuid4()
    cache.put(summary(oid, 1), None, clock.now + 10)
    clock.now += 10
    assert cache.get(oid) is None
    assert len(cache) == 0
    assert not cache.put(summary(oid, 1), None, clock.now - 1)  # already expired


def test_bounded_by_entries_least_recently_used_first() -> None:
    clock = Clock()
    cache = NearCache(max_entries=3, clock=clock)
    ids = [uuid.uuid4() for _ in range(4)]
    for oid in ids[:3]:
        cache.put(summary(oid, 1), None, clock.now + 60)
    cache.get(ids[0])  # now the most recently used
    cache.put(summary(ids[3], 1), None, clock.now + 60)
    assert len(cache) == 3
    assert cache.get(ids[1]) is None
    assert cache.get(ids[0]) is not None


def test_bounded_by_bytes() -> None:
    clock = Clock()
    cache = NearCache(max_bytes=10_000, clock=clock)
    for _ in range(100):
        oid = uuid.uuid4()
        cache.put(summary(oid, 1), order(oid, 1), clock.now + 60)
    assert cache.bytes <= 10_000
    assert 0 < len(cache) < 100


async def test_the_store_answers_only_while_its_feed_is_live() -> None:
    clock = Clock()
    cache = NearCache(clock=clock)
    live = True
    store = NearCacheStore(cache, lambda: live)
    oid = uuid.uuid4()
    cache.put(summary(oid, 1), None, clock.now + 60)
    found = await store.get_summary(oid)
    assert found is not None
    assert found.version == 1
    assert await store.get_order(oid) is None  # status-only entry
    assert await store.get_summaries([oid, uuid.uuid4()]) == {oid.int: found}
    live = False
    with pytest.raises(NearCacheUnavailable):
        await store.get_summary(oid)
