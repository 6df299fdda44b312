"""The projector: order events from Kafka into the read model, offsets committed after writes.

Events are state transfer (each carries the whole order as of its version), so applying one
means "write this version unless the read model holds it or a newer one". That makes the
projection insensitive to duplicates and to order, which is what lets it:
- keep only the newest version per order within a batch (`batch`);
- write a batch's orders concurrently (`writes`);
- replay anything after a crash: offsets are committed only once the batch is written (at most
  every `commit_interval_seconds`, and on stop), so a crash re-delivers at most the batches
  written since the last commit, and re-applying them changes nothing.

Failures are told apart by whose fault they are. A record that cannot be decoded, or an order
the read model refuses, is poison: it goes to the dead-letter topic and the partition moves
on. A read model that cannot be reached is an outage: nothing is dead-lettered and nothing
committed; the batch is retried with backoff, fetching paused, until the writes succeed or the
projector is stopped.

This module is the Kafka side: the consumer in its group, one batch at a time, the commit and
the lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from uoom_orders.dynamodb.ports import ProjectionWriter
from uoom_orders.dynamodb.tables import DETAILS_TABLE, STATUS_TABLE
from uoom_orders.kafka_clients import kafka_consumer, kafka_producer, started
from uoom_orders.observability.metrics import PROJECTOR_DEAD_LETTERS, PROJECTOR_STALE
from uoom_orders.projector.batch import Letter, ProjectorStats, count_batch, plan_batch
from uoom_orders.projector.config import ProjectorConfig
from uoom_orders.projector.dead_letters import publish_dead_letters
from uoom_orders.projector.membership import GroupMembership, stop_consumer, stuck_join_seconds
from uoom_orders.projector.offsets import Batch, GroupOffsets
from uoom_orders.projector.writes import BatchWriter
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.retry import Backoff
from uoom_orders.runtime.tasks import BackgroundTasks

_log = logging.getLogger(__name__)

# How often a consumer waiting for its group's assignment checks whether the join is stuck.
_JOIN_CHECK_SECONDS = 1.0


class _Stopped(Exception):
    """Stop was requested while a batch could not finish; it stays uncommitted."""


class OrderProjector(LongRunning):
    """Consumes the order event topic in a consumer group and writes the read model.

    An async context manager. Entering connects the consumer (subscribed to the topic) and the
    dead-letter producer, and leaves the consume loop running in `task`. Leaving, or `stop()`,
    lets the batch in hand finish and commit, then closes the clients; it is safe twice. Offsets
    are committed only after a batch's writes and dead letters succeeded. A projector runs once.
    """

    def __init__(
        self,
        writer: ProjectionWriter,
        config: ProjectorConfig,
        *,
        clock: Callable[[], float] = time.time,
        on_recovered: Callable[[float], None] | None = None,
    ) -> None:
        self._config = config
        self.stats = ProjectorStats()
        self._writes = BatchWriter(
            writer,
            config,
            self.stats,
            wait_out=self._wait_out,
            clock=clock,
            on_recovered=on_recovered,
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._tasks = BackgroundTasks()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._offsets = GroupOffsets(
            self.stats,
            (config.retry_backoff_seconds, config.max_backoff_seconds),
            config.commit_interval_seconds,
        )
        self._membership = GroupMembership()
        # The pause before joining again: random, so that members stuck in step join apart,
        # and growing with each join in a row that got stuck. Reset once joined.
        session_seconds = config.session_timeout_ms / 1000
        self._rejoin_pause = Backoff(session_seconds, 4 * session_seconds)

    @property
    def task(self) -> asyncio.Task[None]:
        """The consume loop `async with` started; it ends by itself only when it failed."""
        if self._task is None:
            raise RuntimeError("the projector has not been started")
        return self._task

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("the projector is stopped; make a new one")
        if self._task is not None:
            raise RuntimeError("the projector is already running")
        await self._open()
        self._task = self._tasks.spawn(self._consume(), name="projector")

    async def stop(self) -> None:
        """Finishes the batch in hand, commits it, closes the clients. Safe to call twice.

        During an outage the batch cannot finish: it is left uncommitted (and so re-delivered
        to whoever consumes the partitions next). A failure that ended the loop stays in `task`.
        """
        self._stopping.set()
        task = self._task
        try:
            if task is not None and not task.done():
                await asyncio.wait({task})
        finally:
            try:
                await self._tasks.aclose()  # cancels the loop only if this wait was cancelled
            finally:
                await self._close()

    async def _open(self) -> None:
        config = self._config
        producer = await started(
            kafka_producer(
                config.bootstrap_servers,
                client_id=config.client_id,
                enable_idempotence=config.idempotent_producer,
            )
        )
        try:
            consumer = await self._joined_consumer()
        except BaseException:
            await producer.stop()
            raise
        self._producer, self._consumer = producer, consumer
        _log.info(
            "projector started: topic %s, group %s, dead letters to %s",
            config.topic,
            config.group_id,
            config.dlq_topic,
        )

    def _new_consumer(self) -> AIOKafkaConsumer:
        config = self._config
        consumer = kafka_consumer(
            config.bootstrap_servers,
            client_id=config.client_id,
            group_id=config.group_id,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=config.fetch_max_wait_ms,
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_interval_ms=config.max_poll_interval_ms,
        )
        self._membership = GroupMembership()
        consumer.subscribe([config.topic], listener=self._membership)
        return consumer

    async def _close(self) -> None:
        self._closed = True
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        try:
            if consumer is not None:
                # Leaving the group moves the partitions at once (see `membership`).
                await stop_consumer(consumer, leave_group=self._config.leave_group_on_stop)
        finally:
            if producer is not None:
                await producer.stop()

    async def _consume(self) -> None:
        try:
            while not self._stopping.is_set():
                batch = await self._fetch()
                if batch:
                    try:
                        await self._process(batch)
                    except _Stopped:
                        _log.info("stopped during an outage; the last batch stays uncommitted")
                        break
                else:
                    await self._rejoin_if_stuck()
                if self._consumer is not None:
                    await self._offsets.commit_if_due(self._consumer)
                    self._offsets.update_lag(self._consumer)
            if self._consumer is not None:
                # What was written before the stop is committed before the consumer leaves.
                await self._offsets.flush(self._consumer)
        finally:
            await self._close()

    async def _fetch(self) -> Batch:
        consumer = self._consumer
        assert consumer is not None
        # getmany() waits without a timeout while the group rebalances: bounded here, so that
        # a join that never ends is noticed.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_JOIN_CHECK_SECONDS):
                batch: Batch = await consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms,
                    max_records=self._config.max_records,
                )
                return batch
        return {}

    async def _rejoin_if_stuck(self) -> None:
        """Leaves the group and joins again as a new member when a join has not ended (see
        `membership` for why a join can last forever on the local broker)."""
        waited = self._membership.joining_for()
        if waited < stuck_join_seconds(self._config.session_timeout_ms):
            return
        _log.warning(
            "projector: no partitions assigned after %.1fs in the group; rejoining as a new member",
            waited,
        )
        self.stats.rejoins += 1
        old, self._consumer = self._consumer, None
        if old is not None:
            await stop_consumer(old, leave_group=self._config.leave_group_on_stop)
        await asyncio.sleep(self._rejoin_pause.next_delay())
        self._consumer = await self._joined_consumer()

    async def _joined_consumer(self) -> AIOKafkaConsumer:
        """A started consumer with its partitions assigned. aiokafka's start waits for the
        assignment, so a join that never ends (see `membership`) would hold it for ever: past
        the limit, the consumer leaves and a new member joins after a jittered pause."""
        limit = stuck_join_seconds(self._config.session_timeout_ms)
        while True:
            try:
                # started() stops the consumer when the wait is cut short.
                consumer = await asyncio.wait_for(started(self._new_consumer()), limit)
                self._rejoin_pause.reset()
                return consumer
            except TimeoutError:
                _log.warning(
                    "projector: no partitions assigned %.1fs into the join; joining again as a "
                    "new member",
                    limit,
                )
                self.stats.rejoins += 1
                await asyncio.sleep(self._rejoin_pause.next_delay())

    # --- one batch ---------------------------------------------------------------------
    async def _process(self, batch: Batch) -> None:
        plan = plan_batch(record for records in batch.values() for record in records)
        count_batch(self.stats, plan)
        if plan.superseded:
            # A newer version of the same order is in the batch: as stale as an older one in
            # the table, and counted the same way.
            for table in (STATUS_TABLE, DETAILS_TABLE):
                PROJECTOR_STALE.labels(table=table).inc(plan.superseded)
        letters = plan.letters + await self._writes.write(plan.pending)
        await self._dead_letter(letters)
        assert self._consumer is not None
        self._offsets.written(self._consumer, batch)

    async def _dead_letter(self, letters: list[Letter]) -> None:
        """Publishes the letters to the dead-letter topic; retries until the broker takes them."""
        if not letters:
            return
        assert self._producer is not None
        config = self._config
        await publish_dead_letters(
            self._producer,
            config.dlq_topic,
            letters,
            backoff=(config.retry_backoff_seconds, config.max_backoff_seconds),
            sleep=self._wait_out,
        )
        PROJECTOR_DEAD_LETTERS.inc(len(letters))
        self.stats.dead_lettered += len(letters)

    def retry_now(self) -> None:
        """Ends the wait in progress (or the next one) for the read model or the broker to come
        back: the caller saw it answer again (the health monitor's check)."""
        self._retry_now.set()

    async def _wait_out(self, delay: float) -> None:
        """Sleeps `delay` with fetching paused, or until `retry_now`; raises _Stopped when stop
        is requested."""
        consumer = self._consumer
        assert consumer is not None
        # Heartbeats continue in the background, so the group keeps our partitions for up to
        # max_poll_interval_ms; fetching is paused so no more records pile up meanwhile.
        consumer.pause(*consumer.assignment())
        stopping = asyncio.ensure_future(self._stopping.wait())
        retry = asyncio.ensure_future(self._retry_now.wait())
        try:
            await asyncio.wait([stopping, retry], timeout=delay, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            retry.cancel()
            consumer.resume(*consumer.paused())
        self._retry_now.clear()
        if self._stopping.is_set():
            raise _Stopped
