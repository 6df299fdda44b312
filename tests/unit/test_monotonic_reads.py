"""Monotonic reads per replica: whatever its tiers do — a feed that drops and comes back, a
lagging read model, a source of truth that lost a commit — a replica never answers an older
version of an order than one it has already answered or seen on its feed."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from uuid import UUID

import pytest
from uoom.orders.v1 import order_pb2

from uoom_orders.read.near_cache import NearCache, NearCacheStore
from uoom_orders.read.ports import ListQuery
from uoom_orders.read.tiers import ReadPath, Tier
from uoom_orders.read.version_floors import VersionFloors
from uoom_orders.wire import summary_from_order


class VersionStore:
    """A store holding one version per order (DynamoDB or PostgreSQL in these tests)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.versions: dict[UUID, int] = {}

    def _order(self, order_id: UUID) -> order_pb2.Order | None:
        version = self.versions.get(order_id)
        if version is None:
            return None
        return order_pb2.Order(order_id=str(order_id), version=version, tracking_code=f"v{version}")

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        order = self._order(order_id)
        return None if order is None else summary_from_order(order)

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        return self._order(order_id)

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        found = {}
        for order_id in order_ids:
            order = self._order(order_id)
            if order is not None:
                found[order_id.int] = summary_from_order(order)
        return found

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        return []


class Replica:
    """One API replica's read path over a near cache whose feed the test drives.

    `near_cache_entries`: the cache's bound (1 evicts all the time); None runs without a near
    cache, where only the replica's floors remember what it answered."""

    def __init__(
        self, dynamodb: VersionStore, postgres: VersionStore, near_cache_entries: int | None = 100
    ) -> None:
        self.floors = VersionFloors(1000)
        self.live = True
        self.cache: NearCache | None = None
        tiers: list[Tier] = []
        memory: NearCache | VersionFloors = self.floors
        if near_cache_entries is not None:
            cache = NearCache(max_entries=near_cache_entries, floors=self.floors)
            self.cache = memory = cache
            tiers.append(
                Tier(NearCacheStore(cache, lambda: self.live), serves_lists=False, local=True)
            )
        tiers.append(Tier(dynamodb))

        def remember(summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
            if self.cache is None:
                self.floors.raise_to(UUID(summary.order_id), summary.version)
            else:
                self.cache.put(summary, order, time.time() + 60)

        self.path = ReadPath(tiers, Tier(postgres), remember=remember, memory=memory)

    def feed(self, order_id: UUID, version: int) -> None:
        if self.cache is None:
            return  # no near cache, no feed
        order = order_pb2.Order(
            order_id=str(order_id), version=version, tracking_code=f"v{version}"
        )
        self.cache.put(summary_from_order(order), order, time.time() + 3600)

    def feed_down(self) -> None:
        self.live = False

    def feed_up(self) -> None:
        # What the cache feed does when it follows the topic again (cache_feed.py).
        if self.cache is not None:
            self.cache.demote()
        self.live = True


async def test_a_lagging_read_model_never_answers_below_what_the_feed_brought() -> None:
    dynamodb, postgres = VersionStore("dynamodb"), VersionStore("postgres")
    replica = Replica(dynamodb, postgres)
    oid = uuid.uuid4()
    postgres.versions[oid] = 6
    dynamodb.versions[oid] = 1
    replica.feed(oid, 6)
    found, tier = await replica.path.get_summary(oid, 0)
    assert (found and found.version, tier) == (6, "near-cache")

    replica.feed_down()
    found, tier = await replica.path.get_summary(oid, 0)
    assert (found and found.version, tier) == (6, "postgres")  # dynamodb's 1 is passed over
    batch, used = await replica.path.get_summaries([oid])
    assert (batch[oid.int].version, used) == (6, ["postgres"])

    replica.feed_up()
    order, tier = await replica.path.get_order(oid, 0)
    assert (order and order.version, tier) == (6, "postgres")
    # PostgreSQL's answer brought the demoted entry up to date: the near cache answers again.
    found, tier = await replica.path.get_summary(oid, 0)
    assert (found and found.version, tier) == (6, "near-cache")


async def test_postgres_behind_the_floor_wins_and_replaces_it() -> None:
    """A commit PostgreSQL lost (failover, restore): its answer is the truth."""
    dynamodb, postgres = VersionStore("dynamodb"), VersionStore("postgres")
    replica = Replica(dynamodb, postgres)
    oid = uuid.uuid4()
    replica.feed(oid, 5)
    replica.feed_down()
    postgres.versions[oid] = 4
    dynamodb.versions[oid] = 5
    found, tier = await replica.path.get_summary(oid, 0)
    assert (found and found.version, tier) == (5, "dynamodb")
    dynamodb.versions[oid] = 3
    replica.feed_up()
    found, tier = await replica.path.get_summary(oid, 0)
    assert (found and found.version, tier) == (4, "postgres")
    assert replica.floors.floor(oid) == 4
    # The next commit reuses version 5 and applies over the corrected floor.
    replica.feed(oid, 5)
    assert replica.cache is not None
    entry = replica.cache.get(oid)
    assert entry is not None
    assert entry.order is not None
    assert entry.order.tracking_code == "v5"


def test_a_demoted_entry_keeps_its_floor_and_stops_answering() -> None:
    cache = NearCache()
    oid = uuid.uuid4()
    summary = order_pb2.OrderSummary(order_id=str(oid), version=3)
    assert cache.put(summary, None, time.time() + 60)
    cache.demote()
    assert cache.get(oid) is None
    assert cache.get_summaries([oid]) == {}
    assert cache.floor(oid) == 3
    assert cache.floors([oid, uuid.uuid4()]) == {oid.int: 3}
    assert not cache.put(
        order_pb2.OrderSummary(order_id=str(oid), version=2), None, time.time() + 60
    )
    # The same version again (a read found it current) makes it answer.
    assert cache.put(summary, None, time.time() + 60)
    assert cache.get(oid) is not None
    # Only a replace (PostgreSQL's word) or a removal goes below or away.
    older = order_pb2.OrderSummary(order_id=str(oid), version=1)
    assert not cache.replace(older, None, time.time() + 60, if_version=2)
    assert cache.replace(older, None, time.time() + 60, if_version=3)
    assert cache.floor(oid) == 1
    cache.discard(oid)
    assert cache.floor(oid) == 0


@pytest.mark.parametrize(
    "near_cache_entries", [100, 1, None], ids=["cache", "evicting", "no-cache"]
)
@pytest.mark.parametrize("seed", range(40))
async def test_random_faults_never_take_a_replica_back_in_time(
    seed: int, near_cache_entries: int | None
) -> None:
    """Commits, feed deliveries that lag or stop, feed restarts, a projector that lags behind,
    and reads of every kind, in random order: each replica's answers never go back — with a
    near cache, with one that forgets nearly everything, and with none."""
    rng = random.Random(seed)
    dynamodb, postgres = VersionStore("dynamodb"), VersionStore("postgres")
    replicas = [Replica(dynamodb, postgres, near_cache_entries) for _ in range(2)]
    orders = [uuid.uuid4() for _ in range(3)]
    delivered = {(r, o): 0 for r in range(2) for o in orders}
    answered = {(r, o): 0 for r in range(2) for o in orders}
    for oid in orders:
        postgres.versions[oid] = 1
    for _ in range(300):
        step = rng.random()
        oid = rng.choice(orders)
        r = rng.randrange(2)
        replica = replicas[r]
        committed = postgres.versions[oid]
        if step < 0.15:
            postgres.versions[oid] = committed + 1
        elif step < 0.35:
            if replica.live and delivered[r, oid] < committed:
                delivered[r, oid] += 1  # in order, possibly behind
                replica.feed(oid, delivered[r, oid])
        elif step < 0.40:
            replica.feed_down()
        elif step < 0.45:
            replica.feed_up()
            delivered[r, oid] = committed  # tails from the end: later events arrive
        elif step < 0.55:
            dynamodb.versions[oid] = rng.randint(dynamodb.versions.get(oid, 1), committed)
        else:
            kind = rng.randrange(3)
            if kind == 0:
                found, _ = await replica.path.get_summary(oid, 0)
                version = found.version if found else 0
            elif kind == 1:
                order, _ = await replica.path.get_order(oid, 0)
                version = order.version if order else 0
            else:
                batch, _ = await replica.path.get_summaries(orders)
                for other in orders:
                    summary = batch.get(other.int)
                    if summary is None:
                        continue
                    assert summary.version >= answered[r, other]
                    answered[r, other] = summary.version
                continue
            assert version >= answered[r, oid], f"replica {r} went back for {oid}"
            assert version <= postgres.versions[oid]
            answered[r, oid] = version


def test_a_floor_outlives_its_entry_and_stops_a_stale_event() -> None:
    """Evicted, expired or too big for the cache: the version still bounds answers and fills."""
    floors = VersionFloors(10)
    cache = NearCache(max_entries=1, floors=floors)
    first, second = uuid.uuid4(), uuid.uuid4()
    later = time.time() + 60
    assert cache.put(order_pb2.OrderSummary(order_id=str(first), version=5), None, later)
    assert cache.put(order_pb2.OrderSummary(order_id=str(second), version=1), None, later)
    assert cache.get(first) is None  # evicted
    assert cache.floor(first) == 5
    # A stale event (or a lagging tier's answer) cannot come back in through the empty slot.
    stale = order_pb2.OrderSummary(order_id=str(first), version=3)
    assert not cache.put(stale, None, time.time() + 60)
    assert cache.get(first) is None
    # PostgreSQL's word still goes below it.
    assert cache.replace(stale, None, time.time() + 60, if_version=5)
    assert cache.floor(first) == 3


def test_floors_forget_the_oldest_raised_first() -> None:
    floors = VersionFloors(2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    floors.raise_to(a, 1)
    floors.raise_to(b, 1)
    floors.raise_to(a, 2)  # raised: now the newest
    floors.raise_to(b, 1)  # not raised: keeps its place
    floors.raise_to(c, 1)
    assert floors.floors([a, b, c]) == {a.int: 2, c.int: 1}
    floors.raise_to(a, 1)
    assert floors.floor(a) == 2
    summary = order_pb2.OrderSummary(order_id=str(a), version=1)
    assert not floors.replace(summary, None, 0, if_version=3)
    assert floors.replace(summary, None, 0, if_version=2)
    assert floors.floor(a) == 1
    floors.discard(a)
    assert floors.floor(a) == 0
