"""The consumer group's offsets: committing a written batch, and the lag behind each partition."""

from __future__ import annotations

import logging
from collections.abc import Container, Mapping, Sequence
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
    """Commits batches for one consumer group member and publishes its lag per partition."""

    def __init__(self, stats: ProjectorStats, backoff: tuple[float, float]) -> None:
        self._stats = stats
        self._backoff = backoff
        # The next offset to consume in each partition, as last committed.
        self._next: dict[TopicPartition, int] = {}

    async def commit(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        """Commits the batch's offsets, with a few tries; a failure is counted, not raised."""
        offsets = batch_offsets(batch, consumer.assignment())
        if not offsets:
            return

        def log_retry(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None
            error = state.outcome.exception()
            _log.warning(
                "commit failed (attempt %d of %d): %r", state.attempt_number, COMMIT_ATTEMPTS, error
            )

        try:
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
        except KafkaError as error:
            _log.warning(
                "commit failed (attempt %d of %d): %r", COMMIT_ATTEMPTS, COMMIT_ATTEMPTS, error
            )
        # Not fatal: the next batch's commit covers these offsets, and a restart before it
        # re-applies them, which the version condition makes harmless.
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
