"""The projector's lifecycle and retries against stand-ins for the Kafka clients and the read
model: entering means running, leaving means drained; writes retried as the docs say."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from uoom.orders.v1 import order_pb2

from tests.support.memory_read_model import InMemoryReadModelWriter
from tests.unit.projector_records import Record, history, records
from uoom_orders.dynamodb.ports import (
    PutResult,
    ReadModelThrottled,
    ReadModelUnavailable,
    ReadModelWriteRejected,
)
from uoom_orders.projector import OrderProjector, ProjectorConfig, ProjectorStats
from uoom_orders.projector import projector as projector_module
from uoom_orders.projector.batch import Letter, Pending
from uoom_orders.projector.dead_letters import ERROR_HEADER, publish_dead_letters
from uoom_orders.projector.writes import BatchWriter

TOPIC = "orders"
PARTITION = TopicPartition(TOPIC, 0)
CONFIG = ProjectorConfig(
    bootstrap_servers="127.0.0.1:1",
    topic=TOPIC,
    group_id="projector",
    dead_letter_topic="",
    ttl_hours=72,
    session_timeout_ms=6000,
    heartbeat_interval_ms=1000,
    fetch_max_wait_ms=10,
    idempotent_producer=False,
    retry_backoff_seconds=0.001,
    max_backoff_seconds=0.002,
)


class FakeConsumer:
    """One partition, assigned at start; hands out the given batches, then nothing."""

    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = batches
        self.committed: dict[TopicPartition, int] = {}
        self.stopped = False
        self._paused: set[TopicPartition] = set()
        self._listener: Any = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self._listener = listener

    async def start(self) -> None:
        await self._listener.on_partitions_assigned({PARTITION})

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if self.batches and PARTITION not in self._paused:
            return {PARTITION: self.batches.pop(0)}
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def pause(self, *tps: TopicPartition) -> None:
        self._paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, **record: Any) -> asyncio.Future[None]:
        self.sent.append((topic, record))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[FakeConsumer, FakeProducer]]:
    """Makes the projector's next clients these stand-ins."""

    def use(*batches: list[Record]) -> tuple[FakeConsumer, FakeProducer]:
        consumer, producer = FakeConsumer(list(batches)), FakeProducer()
        monkeypatch.setattr(projector_module, "kafka_consumer", lambda *a, **k: consumer)
        monkeypatch.setattr(projector_module, "kafka_producer", lambda *a, **k: producer)
        return consumer, producer

    return use


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_entering_runs_the_loop_and_leaving_drains_it(kafka: Any) -> None:
    events = history(1)
    batch = records(events[0], b"junk", events[1])
    consumer, producer = kafka(batch)
    writer = InMemoryReadModelWriter()
    async with OrderProjector(writer, CONFIG) as projector:
        assert not projector.task.done()
        assert projector.task.get_name() == "projector"
        await until(lambda: PARTITION in consumer.committed)
    assert projector.task.done()
    projector.task.result()
    assert (consumer.stopped, producer.stopped) == (True, True)
    # Written, dead-lettered, then committed past all three records.
    assert consumer.committed == {PARTITION: 3}
    stored = writer.get(writer.tables.status, events[1].order.order_id)
    assert stored is not None
    assert stored["version"] == {"N": "2"}
    [(topic, letter)] = producer.sent
    assert (topic, letter["value"]) == (f"{TOPIC}.dlq", b"junk")
    assert ERROR_HEADER in dict(letter["headers"])
    stats = projector.stats
    assert (stats.consumed, stats.applied, stats.superseded, stats.dead_lettered) == (3, 1, 1, 1)
    await projector.stop()  # safe twice
    with pytest.raises(RuntimeError, match="make a new one"):
        await projector.__aenter__()


async def test_leaving_during_an_outage_leaves_the_batch_uncommitted(kafka: Any) -> None:
    consumer, _ = kafka(records(history(0)[0]))
    writer = InMemoryReadModelWriter()
    writer.unavailable = True
    async with OrderProjector(writer, CONFIG) as projector:
        await until(lambda: projector.stats.outage_retries >= 2)
    projector.task.result()
    assert consumer.committed == {}
    assert (projector.stats.applied, projector.stats.dead_lettered) == (0, 0)
    assert consumer.stopped


async def test_the_task_is_there_only_once_entered(kafka: Any) -> None:
    kafka()
    projector = OrderProjector(InMemoryReadModelWriter(), CONFIG)
    with pytest.raises(RuntimeError, match="not been started"):
        _ = projector.task
    async with projector:
        with pytest.raises(RuntimeError, match="already running"):
            await projector.__aenter__()


# --- the writes -------------------------------------------------------------------------
class FlakyWriter(InMemoryReadModelWriter):
    """Fails each order's first `failures` writes with `error`."""

    def __init__(self, error: Exception, failures: int) -> None:
        super().__init__()
        self.error = error
        self.failures = failures
        self.calls = 0

    async def put_order(self, order: order_pb2.Order, ttl_epoch: int) -> PutResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return await super().put_order(order, ttl_epoch)


def pending() -> list[Pending]:
    event = history(0)[0]
    return [Pending(event, Record(event.SerializeToString()))]


async def no_wait(delay: float) -> None:
    pass


@pytest.mark.parametrize(
    ("error", "failures", "calls", "letter"),
    [
        (RuntimeError("a glitch"), 2, 3, None),  # retried, then written
        (RuntimeError("a bug"), 99, 3, "failed after 3 attempts: RuntimeError('a bug')"),
        (ReadModelWriteRejected("too big"), 99, 1, "ReadModelWriteRejected: too big"),
        (ValueError("bad value"), 99, 1, "ValueError: bad value"),
    ],
)
async def test_a_write_is_retried_a_few_times_unless_refused(
    error: Exception, failures: int, calls: int, letter: str | None
) -> None:
    writer = FlakyWriter(error, failures)
    stats = ProjectorStats()
    letters = await BatchWriter(writer, CONFIG, stats, wait_out=no_wait).write(pending())
    assert writer.calls == calls
    assert [item.error for item in letters] == ([] if letter is None else [letter])
    assert stats.applied == (1 if letter is None else 0)


async def test_an_outage_is_waited_out_until_it_ends_then_reported_once() -> None:
    writer = FlakyWriter(ReadModelUnavailable("down"), 5)
    stats = ProjectorStats()
    waits: list[float] = []
    recovered: list[float] = []
    now = [1000.0]

    async def wait_out(delay: float) -> None:
        waits.append(delay)
        now[0] += delay

    batch_writer = BatchWriter(
        writer,
        CONFIG,
        stats,
        wait_out=wait_out,
        clock=lambda: now[0],
        on_recovered=recovered.append,
    )
    assert await batch_writer.write(pending()) == []
    # Outages are not the write's few tries: each round is one call, waited out in between.
    assert (writer.calls, len(waits), stats.outage_retries, stats.applied) == (6, 5, 5, 1)
    assert all(0 < delay <= CONFIG.max_backoff_seconds for delay in waits)
    # Reported once, with when the outage was first seen (not when it ended).
    assert recovered == [1000.0]
    # No outage, no report.
    assert await batch_writer.write(pending()) == []
    assert recovered == [1000.0]


async def test_retry_now_ends_the_wait_for_the_read_model(kafka: Any) -> None:
    """The health monitor saw DynamoDB answer again: the projector tries at once, not at the
    end of its backoff (here 60 s)."""
    consumer, _ = kafka(records(history(0)[0]))
    writer = FlakyWriter(ReadModelUnavailable("down"), 1)
    config = dataclasses.replace(CONFIG, retry_backoff_seconds=60.0, max_backoff_seconds=60.0)
    async with OrderProjector(writer, config) as projector:
        await until(lambda: projector.stats.outage_retries == 1)
        assert PARTITION in consumer.paused()  # waiting the outage out, fetching paused
        projector.retry_now()
        await until(lambda: PARTITION in consumer.committed, timeout=5.0)
        assert (writer.calls, projector.stats.applied) == (2, 1)
        assert consumer.paused() == set()


async def test_throttling_is_waited_out_but_calls_for_no_walk() -> None:
    # A table refusing for throughput lost nothing: no reconciliation walk is asked for.
    writer = FlakyWriter(ReadModelThrottled("busy"), 3)
    stats = ProjectorStats()
    recovered: list[float] = []
    batch_writer = BatchWriter(
        writer, CONFIG, stats, wait_out=no_wait, on_recovered=recovered.append
    )
    assert await batch_writer.write(pending()) == []
    assert (writer.calls, stats.outage_retries, stats.applied) == (4, 3, 1)
    assert recovered == []


# --- the dead letters ---------------------------------------------------------------------
class FlakyProducer(FakeProducer):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def send(self, topic: str, **record: Any) -> asyncio.Future[None]:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker down")
        return await super().send(topic, **record)


def letters() -> list[Letter]:
    return [Letter(Record(b"junk", offset=5, headers=[("a", b"1")]), "not an event")]


async def test_dead_letters_are_retried_until_the_broker_takes_them() -> None:
    producer = FlakyProducer(failures=2)
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    await publish_dead_letters(producer, "orders.dlq", letters(), backoff=(0.1, 1.0), sleep=sleep)
    [(topic, letter)] = producer.sent
    assert (topic, letter["value"], letter["headers"][0]) == ("orders.dlq", b"junk", ("a", b"1"))
    assert len(waits) == 2
    assert all(0.05 <= delay <= 1.0 for delay in waits)


async def test_a_stop_while_the_broker_is_down_ends_the_dead_letter_retries() -> None:
    class Stopped(Exception):
        pass

    async def stopped(delay: float) -> None:
        raise Stopped

    producer = FlakyProducer(failures=1)
    with pytest.raises(Stopped):
        await publish_dead_letters(
            producer, "orders.dlq", letters(), backoff=(0.1, 1.0), sleep=stopped
        )
    assert producer.sent == []
