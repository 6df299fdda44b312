"""The projector's commits: written offsets held and committed at most every interval, at once
on flush, never for a partition this member no longer has, and kept for the next commit when
one fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from uoom_orders.projector.batch import ProjectorStats
from uoom_orders.projector.offsets import GroupOffsets

P0, P1, P2 = (TopicPartition("orders", n) for n in range(3))


class Record(NamedTuple):
    offset: int


class FakeConsumer:
    """What GroupOffsets uses of an AIOKafkaConsumer: its assignment and commit()."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.commits: list[dict[TopicPartition, int]] = []
        self.failures: list[Exception] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.commits.append(dict(offsets))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batch(**last_offsets: int) -> dict[TopicPartition, Sequence[Any]]:
    partitions = {"p0": P0, "p1": P1, "p2": P2}
    return {partitions[name]: [Record(offset)] for name, offset in last_offsets.items()}


def offsets(interval: float, clock: Clock, stats: ProjectorStats | None = None) -> Any:
    """A GroupOffsets, typed loosely so that it takes the fake consumer."""
    return GroupOffsets(stats or ProjectorStats(), (0.001, 0.001), interval, clock)


async def test_without_an_interval_every_written_batch_is_committed() -> None:
    consumer, clock = FakeConsumer({P0, P1}), Clock()
    group = offsets(0.0, clock)
    # As the projector's loop does: a batch written, then the commit if due.
    group.written(consumer, batch(p0=4))
    await group.commit_if_due(consumer)
    group.written(consumer, batch(p0=5, p1=2))
    await group.commit_if_due(consumer)
    assert consumer.commits == [{P0: 5}, {P0: 6, P1: 3}]


async def test_batches_written_within_the_interval_are_committed_together_once_it_is_up() -> None:
    consumer, clock = FakeConsumer({P0, P1}), Clock()
    group = offsets(0.5, clock)
    group.written(consumer, batch(p0=4))
    clock.now += 0.2
    group.written(consumer, batch(p0=9, p1=2))
    await group.commit_if_due(consumer)
    assert consumer.commits == []
    clock.now += 0.3
    await group.commit_if_due(consumer)
    assert consumer.commits == [{P0: 10, P1: 3}]
    # Nothing held: nothing to commit, however long it has been.
    clock.now += 5
    await group.commit_if_due(consumer)
    assert consumer.commits == [{P0: 10, P1: 3}]


async def test_the_interval_runs_from_the_last_commit() -> None:
    consumer, clock = FakeConsumer({P0}), Clock()
    group = offsets(0.5, clock)
    clock.now += 10  # idle for long: the first batch after it commits at once
    group.written(consumer, batch(p0=1))
    await group.commit_if_due(consumer)
    clock.now += 0.1
    group.written(consumer, batch(p0=2))
    await group.commit_if_due(consumer)
    assert consumer.commits == [{P0: 2}]


async def test_flush_commits_what_is_held_at_once_and_drops_partitions_no_longer_assigned() -> None:
    consumer, clock = FakeConsumer({P0, P1, P2}), Clock()
    group = offsets(60.0, clock)
    group.written(consumer, batch(p0=4, p2=7))
    consumer.assigned = {P0, P1}  # P2 moved to another member, which re-delivers it
    await group.flush(consumer)
    assert consumer.commits == [{P0: 5}]
    await group.flush(consumer)
    assert consumer.commits == [{P0: 5}]


async def test_a_failed_commit_keeps_its_offsets_for_the_next_one() -> None:
    consumer, clock, stats = FakeConsumer({P0, P1}), Clock(), ProjectorStats()
    group = offsets(0.5, clock, stats)
    consumer.failures = [KafkaConnectionError()] * 3  # every attempt of one commit
    await group.flush(consumer)
    group.written(consumer, batch(p0=4, p1=1))
    await group.flush(consumer)
    assert consumer.commits == []
    assert stats.commit_failures == 1
    group.written(consumer, batch(p0=8))  # a newer offset replaces the held one
    await group.flush(consumer)
    assert consumer.commits == [{P0: 9, P1: 2}]


async def test_a_commit_refused_after_a_rebalance_is_not_tried_again() -> None:
    consumer, clock, stats = FakeConsumer({P0}), Clock(), ProjectorStats()
    group = offsets(0.5, clock, stats)
    consumer.failures = [CommitFailedError()]
    group.written(consumer, batch(p0=4))
    await group.flush(consumer)
    assert stats.commit_failures == 1
    await group.flush(consumer)
    assert consumer.commits == []
