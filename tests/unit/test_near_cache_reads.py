"""The near cache's one-step status reads answer as the read path does, and count alike.

Two replicas built the same way, one whose servicer answers near-cache hits in one step
(near_cache_reads.py) and one that sends every read down the read path, go through the same
drawn history — the feed's events, its outages and returns (a demotion), time passing (entries
expiring), PostgreSQL's corrections (a floor set lower), evictions from a small cache, the
lower tiers' own versions — and are asked the same status reads, canonical ids or not, with
any `min_version`, single or in batches. Each answer (message, trailing metadata, status) and
each change in the read metrics must be the same on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st
from uoom.orders.v1 import order_pb2
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.api.servicer import OrderServicer
from uoom_orders.application.queries import OrderQueries
from uoom_orders.observability import metrics
from uoom_orders.read.near_cache import NearCache, NearCacheStore
from uoom_orders.read.near_cache_reads import NearCacheReads
from uoom_orders.read.page_token import PageTokenCodec
from uoom_orders.read.ports import ListQuery
from uoom_orders.read.tiers import ReadPath, Tier
from uoom_orders.read.version_floors import VersionFloors

IDS = [UUID(int=n * 0x1234_5678_9ABC_DEF1 + 7) for n in range(1, 6)]
TIERS = ("near-cache", "dynamodb", "postgres")


def _summary(order_id: UUID, version: int) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(
        order_id=str(order_id), version=version, tracking_code=f"T{version}"
    )


class VersionStore:
    """A lower tier or the source: one version per order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.versions: dict[UUID, int] = {}

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        version = self.versions.get(order_id)
        return None if version is None else _summary(order_id, version)

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        raise AssertionError("status reads only")

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        return {i.int: _summary(i, self.versions[i]) for i in order_ids if i in self.versions}

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        raise AssertionError("status reads only")


class Aborted(Exception):
    pass


@dataclass
class Context:
    """What the servicer's status reads use of grpc's servicer context."""

    trailing: tuple[tuple[str, str], ...] | None = None
    status: tuple[Any, str, Any] | None = None

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.trailing = tuple(metadata)

    async def abort_with_status(self, status: Any) -> None:
        self.status = (status.code, status.details, status.trailing_metadata)
        raise Aborted


@dataclass
class Replica:
    one_step: bool
    now: float = 1_000.0
    live: bool = True
    lower: VersionStore = field(default_factory=lambda: VersionStore("dynamodb"))
    source: VersionStore = field(default_factory=lambda: VersionStore("postgres"))

    def __post_init__(self) -> None:
        self.cache = NearCache(max_entries=3, floors=VersionFloors(100), clock=lambda: self.now)
        near = Tier(NearCacheStore(self.cache, lambda: self.live), serves_lists=False, local=True)
        path = ReadPath(
            [near, Tier(self.lower)],
            Tier(self.source),
            remember=self._fill,
            memory=self.cache,
            memory_ttl_seconds=5,
        )
        reads = NearCacheReads(self.cache, lambda: self.live, near) if self.one_step else None
        self.servicer = OrderServicer(
            lambda: None,  # type: ignore[arg-type, return-value]  # no writes here
            OrderQueries(path, PageTokenCodec(b"k" * 32)),
            near_cache=reads,
        )

    def _fill(self, summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        # As the service's read path does (assembly.py): a lower tier's answer, for a while.
        self.cache.put(summary, order, self.now + 5)

    def apply(self, step: tuple[Any, ...]) -> None:
        kind, *args = step
        if kind == "event":
            n, version, ttl = args
            self.cache.put(_summary(IDS[n], version), None, self.now + ttl)
        elif kind == "correction":
            n, version = args
            self.cache.replace(_summary(IDS[n], version), None, self.now + 5)
        elif kind == "feed_down":
            self.live = False
        elif kind == "feed_up":
            self.cache.demote()
            self.live = True
        elif kind == "time":
            self.now += args[0]
        elif kind == "lower":
            n, version = args
            self.lower.versions[IDS[n]] = version
        elif kind == "source":
            n, version = args
            self.source.versions[IDS[n]] = version
        else:
            raise AssertionError(kind)

    async def ask(self, request: Any) -> tuple[Any, ...]:
        context = Context()
        method: Any = self.servicer.BatchGetOrderStatus
        response_type: Any = pb.BatchGetOrderStatusResponse
        if isinstance(request, pb.GetOrderStatusRequest):
            method, response_type = self.servicer.GetOrderStatus, pb.GetOrderStatusResponse
        answer = None
        with contextlib.suppress(Aborted):
            answer = await method(request, context)
        if isinstance(answer, bytes):
            answer = response_type.FromString(answer)
        return answer, context.trailing, context.status


def _read_counts() -> dict[str, float]:
    counts: dict[str, float] = {}
    for tier in TIERS:
        counts[f"hits/{tier}"] = metrics.CACHE_HITS.labels(tier=tier).value
        counts[f"misses/{tier}"] = metrics.CACHE_MISSES.labels(tier=tier).value
        counts[f"served/{tier}"] = metrics.READS_SERVED.labels(tier=tier).value
        counts[f"timed/{tier}"] = sum(metrics.READ_LATENCY.labels(tier=tier).counts)
    for method in ("GetOrderStatus", "BatchGetOrderStatus"):
        for code in ("OK", "NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT"):
            counts[f"{method}/{code}"] = metrics.RPC_HANDLED.labels(method=method, code=code).value
        counts[f"{method}/timed"] = sum(metrics.RPC_LATENCY.labels(method=method).counts)
    return counts


async def _answer_and_counts(replica: Replica, request: Any) -> tuple[Any, dict[str, float]]:
    before = _read_counts()
    answer = await replica.ask(request)
    after = _read_counts()
    return answer, {k: after[k] - before[k] for k in after if after[k] != before[k]}


n_ids = st.integers(min_value=0, max_value=len(IDS) - 1)
versions = st.integers(min_value=1, max_value=6)
events = st.tuples(st.just("event"), n_ids, versions, st.sampled_from([-1, 2, 10, 100]))
other_steps = st.one_of(
    st.tuples(st.just("correction"), n_ids, versions),
    st.tuples(st.just("feed_down")),
    st.tuples(st.just("feed_up")),
    st.tuples(st.just("time"), st.sampled_from([1, 3, 6])),
    st.tuples(st.just("lower"), n_ids, versions),
    st.tuples(st.just("source"), n_ids, versions),
)
canonical_ids = n_ids.map(lambda n: str(IDS[n]))


@st.composite
def other_spellings(draw: st.DrawFn) -> str:
    """An id spelled otherwise: another spelling of a known one, unknown, garbage."""
    order_id = IDS[draw(n_ids)]
    return draw(
        st.sampled_from(
            [
                str(order_id).upper(),
                "{" + str(order_id) + "}",
                order_id.hex,
                str(uuid.UUID(int=order_id.int + 1)),
                "",
                "not-an-id-" + "x" * 26,
            ]
        )
    )


order_id_texts = canonical_ids | other_spellings()
requests = st.one_of(
    st.builds(
        pb.GetOrderStatusRequest,
        order_id=order_id_texts,
        min_version=st.sampled_from([-1, 0, 1, 2, 3, 5, 7]),
    ),
    st.builds(
        pb.BatchGetOrderStatusRequest,
        # Mostly ids the cache may hold all of (it holds three), some with other spellings.
        order_ids=st.lists(canonical_ids, min_size=1, max_size=4)
        | st.lists(order_id_texts, max_size=5),
    ),
)


# Mostly events and reads: every other step ends hits for a while (feed down, time passing).
history_items = st.sampled_from(["event"] * 3 + ["read"] * 4 + ["other"] * 2).flatmap(
    lambda kind: {"event": events, "read": requests, "other": other_steps}[kind]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(history_items, min_size=5, max_size=60))
def test_one_step_reads_answer_and_count_as_the_read_path(history: list[Any]) -> None:
    async def run() -> None:
        one_step, read_path = Replica(one_step=True), Replica(one_step=False)
        for item in history:
            if isinstance(item, tuple):
                one_step.apply(item)
                read_path.apply(item)
                continue
            assert await _answer_and_counts(one_step, item) == await _answer_and_counts(
                read_path, item
            ), item

    asyncio.run(run())


def test_a_hit_is_answered_in_one_step_and_counted_as_a_near_cache_answer() -> None:
    async def run() -> None:
        replica = Replica(one_step=True)
        replica.apply(("event", 0, 3, 10))
        (answer, trailing, status), counts = await _answer_and_counts(
            replica, pb.GetOrderStatusRequest(order_id=str(IDS[0]), min_version=3)
        )
        assert answer == pb.GetOrderStatusResponse(order=_summary(IDS[0], 3))
        assert (trailing, status) == ((("x-served-by", "near-cache"),), None)
        assert counts == {
            "hits/near-cache": 1,
            "served/near-cache": 1,
            "timed/near-cache": 1,
            "GetOrderStatus/OK": 1,
            "GetOrderStatus/timed": 1,
        }
        # Not in one step: the read path (here, its source) answers the version asked for.
        replica.apply(("source", 0, 4))
        (answer, trailing, _), _ = await _answer_and_counts(
            replica, pb.GetOrderStatusRequest(order_id=str(IDS[0]), min_version=4)
        )
        assert answer == pb.GetOrderStatusResponse(order=_summary(IDS[0], 4))
        assert trailing == (("x-served-by", "postgres"),)

    asyncio.run(run())
