"""Writing a batch's orders to the read model: concurrently, each retried, outages waited out.

Failures are told apart by whose fault they are. An order the read model refuses is poison: it
comes back as a dead letter. A read model that cannot be reached (connection errors, timeouts,
throttling, 5xx, a missing table) is an outage: the orders it hit are retried with backoff,
fetching paused, until they are written or the projector is stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import tenacity

from uoom_orders.dynamodb.items import ttl_after
from uoom_orders.dynamodb.ports import (
    ProjectionWriter,
    PutResult,
    ReadModelThrottled,
    ReadModelUnavailable,
    ReadModelWriteRejected,
)
from uoom_orders.dynamodb.tables import DETAILS_TABLE, STATUS_TABLE
from uoom_orders.observability import tracing
from uoom_orders.observability.metrics import (
    PROJECTOR_APPLIED,
    PROJECTOR_E2E_LAG,
    PROJECTOR_STALE,
    PROJECTOR_WRITE_LAG,
)
from uoom_orders.observability.stage_lag import observe_since_published
from uoom_orders.projector.batch import Letter, Pending, ProjectorStats, count_write
from uoom_orders.projector.config import ProjectorConfig
from uoom_orders.runtime.retry import Backoff, retried

_log = logging.getLogger(__name__)

_PUT_ORDER_SPAN = {"db.system": "dynamodb", "rpc.system": "aws-api", "rpc.service": "DynamoDB"}


@dataclass(frozen=True)
class Outage:
    """The read model could not be reached: write again later."""

    error: BaseException


@dataclass(frozen=True)
class Poison:
    """The read model refused the order, or its write kept failing: dead-letter it."""

    error: str


Outcome = PutResult | Poison | Outage


def outcome_name(outcome: Outcome) -> str:
    """The outcome as the consume span's `uoom.projection.outcome` attribute names it."""
    if isinstance(outcome, PutResult):
        return "applied" if outcome.applied else "stale"
    return "dead-letter" if isinstance(outcome, Poison) else "outage"


def _unexpected(error: BaseException) -> bool:
    """Neither an outage nor a refusal (nor a cancellation): maybe transient, maybe a bug."""
    refused = (ReadModelUnavailable, ReadModelWriteRejected, ValueError)
    return isinstance(error, Exception) and not isinstance(error, refused)


class BatchWriter:
    """Writes pending events to the read model and counts the outcomes into `stats`.

    `wait_out(delay)` is how an outage is waited out (the projector pauses fetching and raises
    when it is stopped meanwhile); `on_recovered` is called once writes succeed after one, with
    when (`clock`, epoch seconds) the outage was first seen.
    """

    def __init__(
        self,
        writer: ProjectionWriter,
        config: ProjectorConfig,
        stats: ProjectorStats,
        *,
        wait_out: Callable[[float], Awaitable[None]],
        clock: Callable[[], float] = time.time,
        on_recovered: Callable[[float], None] | None = None,
    ) -> None:
        self._writer = writer
        self._config = config
        self._stats = stats
        self._wait_out = wait_out
        self._clock = clock
        self._on_recovered = on_recovered
        self._semaphore = asyncio.Semaphore(config.concurrency)

    async def write(self, pending: Sequence[Pending]) -> list[Letter]:
        """Writes every pending event; returns the poison ones. Retries outages until done."""
        config = self._config
        letters: list[Letter] = []
        outage = Backoff(config.retry_backoff_seconds, config.max_backoff_seconds)
        outage_seen: float | None = None
        while pending:
            outcomes = await asyncio.gather(*(self._apply_one(item) for item in pending))
            retry: list[Pending] = []
            last_outage: BaseException | None = None
            # Throttling only says the table is busy, not that it lost anything: a walk after
            # it would add load where there is too much already.
            lost_contact = False
            for item, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, PutResult):
                    self._count_written(item, outcome)
                elif isinstance(outcome, Poison):
                    letters.append(Letter(item.record, outcome.error))
                else:
                    retry.append(item)
                    last_outage = outcome.error
                    lost_contact = lost_contact or not isinstance(outcome.error, ReadModelThrottled)
            if retry:
                if outage_seen is None and lost_contact:
                    outage_seen = self._clock()
                delay = outage.next_delay()
                self._stats.outage_retries += 1
                _log.warning(
                    "read model unavailable (%s): keeping %d event(s) uncommitted, "
                    "retrying in %.1f s",
                    last_outage,
                    len(retry),
                    delay,
                )
                await self._wait_out(delay)
            pending = retry
        if outage_seen is not None and self._on_recovered is not None:
            # The read model was unreachable and answers again: it may have lost what it held
            # (a restore, a new table) — reconciliation is told to look now. Whatever it lost,
            # it lost before these writes saw it fail: a walk begun since then covers it.
            self._on_recovered(outage_seen)
        return letters

    async def _apply_one(self, item: Pending) -> Outcome:
        record = item.record
        # Continues the trace in the record's headers: gRPC call → transaction → publish → here.
        with tracing.consume_span(
            record.topic,
            record.headers,
            group=self._config.group_id,
            partition=record.partition,
            offset=record.offset,
            order_id=item.event.order.order_id,
            version=item.event.version,
        ) as span:
            outcome = await self._write_one(item)
            span.set_attribute("uoom.projection.outcome", outcome_name(outcome))
        return outcome

    async def _write_one(self, item: Pending) -> Outcome:
        config = self._config
        attempts = config.apply_attempts

        def log_failure(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None
            self._log_failure(item, state.attempt_number, state.outcome.exception())

        try:
            # A few tries for an unexpected failure, then the dead-letter topic, so that one
            # order cannot stall its partition.
            return await retried(
                lambda: self._put(item),
                config.retry_backoff_seconds,
                config.max_backoff_seconds,
                retry_if=_unexpected,
                attempts=attempts,
                before_sleep=log_failure,
            )
        except ReadModelUnavailable as error:
            return Outage(error)
        except (ReadModelWriteRejected, ValueError) as error:
            return Poison(f"{type(error).__name__}: {error}")
        except Exception as error:
            self._log_failure(item, attempts, error)
            return Poison(f"failed after {attempts} attempts: {error!r}")

    async def _put(self, item: Pending) -> PutResult:
        async with self._semaphore:
            ttl = ttl_after(self._config.ttl_hours, self._clock())
            with tracing.client_span("DynamoDB put_order", _PUT_ORDER_SPAN):
                return await self._writer.put_order(item.event.order, ttl)

    def _log_failure(self, item: Pending, attempt: int, error: BaseException | None) -> None:
        _log.warning(
            "applying order %s v%d failed (attempt %d of %d): %r",
            item.event.order.order_id,
            item.event.version,
            attempt,
            self._config.apply_attempts,
            error,
        )

    def _count_written(self, item: Pending, result: PutResult) -> None:
        count_write(self._stats, result)
        tables = ((STATUS_TABLE, result.status_written), (DETAILS_TABLE, result.details_written))
        for table, written in tables:
            (PROJECTOR_APPLIED if written else PROJECTOR_STALE).labels(table=table).inc()
        if result.applied:
            now = self._clock()
            occurred = item.event.occurred_at
            PROJECTOR_E2E_LAG.observe(max(0.0, now - (occurred.seconds + occurred.nanos / 1e9)))
            observe_since_published(PROJECTOR_WRITE_LAG, item.record, now)
