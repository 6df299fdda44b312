"""The consumer group's offsets: committing a written batch, and the lag behind each partition."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any

import tenacity
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from uoom_orders.observability.metrics import PROJECTOR_CONSUMER_LAG
from uoom_orders.projector.batch import ProjectorStats
from uoom_orders.runtime.retry import retried

_log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 3

Batch = Mapping[TopicPartition, Sequence[Any]]
"""What `getmany()` returns: each partition's records, in offset order."""


def batch_offsets(batch: Batch, assigned: Container[TopicPartition]) -> dict[TopicPartition, int]:
    """The offsets that commit a batch: each partition's last offset + 1. A partition revoked
    mid-batch belongs to another member now; it re-delivers those records, and re-applying them
    is harmless."""
    return {
        tp: records[-1].offset + 1 for tp, records in batch.items() if records and tp in assigned
    }


def _retryable(error: BaseException) -> bool:
    # A commit refused after a rebalance is final: the partitions belong to another member.
    refused = (CommitFailedError, IllegalStateError)
    return isinstance(error, KafkaError) and not isinstance(error, refused)


class GroupOffsets:
    """Commits written batches for one consumer group member and publishes its lag per
    partition.

    A written batch's offsets are held and committed at most every `interval` seconds, with
    whatever else was written meanwhile (0: every batch), and at once by `flush` (on stop).
    Only written offsets are ever held, so a crash, or partitions moving to another member,
    re-delivers at most what was written since the last commit, and re-applying it changes
    nothing. (aiokafka ends the assignment before it calls a rebalance listener, so offsets
    cannot be committed there.)
    """

    def __init__(
        self,
        stats: ProjectorStats,
        backoff: tuple[float, float],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stats = stats
        self._backoff = backoff
        self._interval = interval
        self._clock = clock
        # Written, not yet committed: the next offset to consume in each partition.
        self._pending: dict[TopicPartition, int] = {}
        self._committed_at = clock()
        # The next offset to consume in each partition, as last committed.
        self._next: dict[TopicPartition, int] = {}

    def written(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        """Holds a written batch's offsets for the next commit."""
        self._pending.update(batch_offsets(batch, consumer.assignment()))

    async def commit_if_due(self, consumer: AIOKafkaConsumer) -> None:
        """Commits what is held once `interval` has passed since the last commit."""
        if self._pending and self._clock() - self._committed_at >= self._interval:
            await self.flush(consumer)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Commits what is held now, with a few tries; a failure is counted, not raised.
        Offsets of partitions no longer assigned are dropped: they belong to another member,
        which re-delivers those records."""
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in self._pending.items() if tp in assigned}
        self._pending.clear()
        self._committed_at = self._clock()
        if not offsets:
            return

        def log_retry(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None
            error = state.outcome.exception()
            _log.warning(
                "commit failed (attempt %d of %d): %r", state.attempt_number, COMMIT_ATTEMPTS, error
            )

        try:
            # aiokafka waits for an unreachable broker inside commit(). Not bounded here: a
            # commit cut short leaves aiokafka's own task behind, whose error is then never
            # retrieved (asyncio logs it with a traceback); while the broker is down the loop
            # has nothing to fetch anyway, and after a pause the group refuses the commit.
            await retried(
                lambda: consumer.commit(offsets),
                *self._backoff,
                retry_if=_retryable,
                attempts=COMMIT_ATTEMPTS,
                before_sleep=log_retry,
            )
            self._next.update(offsets)
            return
        except (CommitFailedError, IllegalStateError) as error:
            _log.warning("commit refused after a rebalance (%r); records re-delivered", error)
            self._stats.commit_failures += 1
            return
        except KafkaError as error:
            _log.warning(
                "commit failed (attempt %d of %d): %r", COMMIT_ATTEMPTS, COMMIT_ATTEMPTS, error
            )
        # Not fatal: held again, so the next commit covers these offsets (unless newer ones
        # replace them); a restart before it re-applies them, which the version condition
        # makes harmless.
        for tp, offset in offsets.items():
            self._pending.setdefault(tp, offset)
        self._stats.commit_failures += 1

    def update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Sets each assigned partition's lag: its end minus what this member committed."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._next.get(tp)
            if highwater is None or position is None:
                continue
            PROJECTOR_CONSUMER_LAG.labels(partition=str(tp.partition)).set(
                max(0, highwater - position)
            )
