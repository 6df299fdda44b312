"""The projector against real servers: tansu (Kafka protocol) and moto (DynamoDB protocol)."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from uoom.orders.v1 import order_events_pb2

from tests.integration.projector_support import (
    aws_session,
    create_topics,
    dynamodb,
    event_headers,
    eventually,
    get_item,
    order_history,
    producer,
    projector_process_argv,
    publish,
    scan_all,
    unique,
)
from uoom_orders import wire
from uoom_orders.config import Settings
from uoom_orders.config.components import dynamodb_client_for, projector_config
from uoom_orders.domain.events import OrderEvent
from uoom_orders.dynamodb import ReadModelWriter, TableNames, create_tables, items
from uoom_orders.projector import (
    OrderProjector,
    ProjectorConfig,
    list_dead_letters,
    replay_dead_letters,
)
from uoom_orders.projector.dead_letters import dead_letter_headers
from uoom_orders_devstack import MotoDynamoDBServer, StackEndpoints
from uoom_orders_devstack.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    # An unclosed client warns from its finaliser; collecting here blames the leaking test.
    yield
    gc.collect()


def _prefix(tables: TableNames) -> str:
    return tables.status.removesuffix("order-status")


@pytest.fixture
async def config(local_stack: StackEndpoints) -> ProjectorConfig:
    """A fresh topic (3 partitions), dead-letter topic and group for each test."""
    topic = unique("orders")
    await create_topics(local_stack.kafka_bootstrap_servers, {topic: 3, f"{topic}.dlq": 1})
    return projector_config(
        Settings.from_env(local_stack.env()),
        topic=topic,
        group_id=unique("projector"),
        # Joins take about half the session timeout; short ones keep the tests quick.
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        retry_backoff_seconds=0.05,
        max_backoff_seconds=0.5,
    )


@asynccontextmanager
async def running(projector: OrderProjector) -> AsyncIterator[OrderProjector]:
    async with projector:
        yield projector
    projector.task.result()  # the loop ended by the stop, not by a failure


def _caught_up(partition: int) -> bool:
    lag = REGISTRY.get_sample_value(
        "projector_consumer_lag_messages", {"partition": str(partition)}
    )
    return lag == 0


async def _at_version(ddb: Any, tables: TableNames, order_id: str, version: int) -> bool:
    for table in tables.all():
        item = await get_item(ddb, table, order_id)
        if item is None or items.item_version(item) != version:
            return False
    return True


async def _all_final(ddb: Any, tables: TableNames, finals: dict[str, int]) -> bool:
    for table in tables.all():
        stored = await scan_all(ddb, table)
        if any(
            order_id not in stored or items.item_version(stored[order_id]) != version
            for order_id, version in finals.items()
        ):
            return False
    return True


async def _assert_equals_event(ddb: Any, tables: TableNames, event: OrderEvent) -> None:
    expected = wire.order_to_proto(event.order)
    details = await get_item(ddb, tables.details, expected.order_id)
    status = await get_item(ddb, tables.status, expected.order_id)
    assert details is not None
    assert status is not None
    assert items.order_from_item(details) == expected
    assert items.summary_from_item(status) == wire.summary_from_order(expected)
    # Field by field, so a failure names the field.
    got = items.order_from_item(details)
    for field in expected.DESCRIPTOR.fields:
        assert getattr(got, field.name) == getattr(expected, field.name), field.name


async def test_created_order_and_every_status_change_arrive_in_both_tables(
    ddb: Any, tables: TableNames, config: ProjectorConfig
) -> None:
    history = order_history()
    order_id = str(history[0].order.order_id)
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        projector = OrderProjector(writer, config)
        async with running(projector), producer(config.bootstrap_servers) as kafka:
            for event in history:
                await publish(kafka, config.topic, [event])
                await eventually(
                    functools.partial(_at_version, ddb, tables, order_id, event.version),
                    f"version {event.version} ({event.order.status}) in both tables",
                )
                await _assert_equals_event(ddb, tables, event)
    assert projector.stats.applied == len(history)
    assert projector.stats.dead_lettered == 0


async def test_duplicates_and_reversed_order_leave_the_newest(
    ddb: Any, tables: TableNames, config: ProjectorConfig
) -> None:
    forward = [order_history() for _ in range(10)]
    backward = [order_history() for _ in range(10)]
    finals = {str(h[-1].order.order_id): h[-1].version for h in forward + backward}
    # Forward histories interleaved as the relay would publish them; the other histories
    # newest first, as if delivered out of order.
    in_order = [event for step in zip(*forward, strict=True) for event in step]
    reversed_first = [event for history in backward for event in reversed(history)]
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        projector = OrderProjector(writer, config)
        async with running(projector), producer(config.bootstrap_servers) as kafka:
            await publish(kafka, config.topic, reversed_first + in_order)
            await eventually(lambda: _all_final(ddb, tables, finals), "every order's newest")
            # Everything again, newest first: duplicates and older versions only.
            everything = reversed_first + in_order
            await publish(kafka, config.topic, list(reversed(everything)))
            await eventually(
                lambda: projector.stats.consumed == 2 * len(everything),
                "the projector to consume the duplicates",
            )
    assert await _all_final(ddb, tables, finals)
    for history in forward + backward:
        await _assert_equals_event(ddb, tables, history[-1])
    stats = projector.stats
    assert stats.applied + stats.stale + stats.superseded == stats.consumed
    assert stats.applied >= len(finals)
    assert stats.dead_lettered == 0


async def test_poison_messages_are_dead_lettered_and_the_partition_moves_on(
    ddb: Any, tables: TableNames, config: ProjectorConfig
) -> None:
    good = order_history(2)
    order_key = str(good[0].order.order_id).encode()
    # Decodes as protobuf but is no event: no type, no order.
    not_an_event = order_events_pb2.OrderEvent(event_id="x").SerializeToString()
    # A well-formed event the read model refuses: its item exceeds 400 KB.
    huge = order_history(0)[0]
    huge = replace(
        huge,
        order=replace(
            huge.order,
            delivery_location=replace(huge.order.delivery_location, address="x" * 450_000),
        ),
    )
    headers = [("event_id", b"e-1"), ("traceparent", b"00-abc-def-01")]
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        projector = OrderProjector(writer, config)
        async with running(projector), producer(config.bootstrap_servers) as kafka:
            garbage = await (
                await kafka.send(config.topic, b"\xff\x00garbage", key=order_key, headers=headers)
            )
            await kafka.send_and_wait(config.topic, not_an_event, key=order_key)
            await publish(kafka, config.topic, [good[0], huge, good[1], good[2]])
            await eventually(
                lambda: _at_version(ddb, tables, str(good[0].order.order_id), 3),
                "the events after the poison ones",
            )
            await eventually(lambda: projector.stats.dead_lettered == 3, "three dead letters")
    letters = await list_dead_letters(config.bootstrap_servers, config.dlq_topic)
    assert len(letters) == 3
    by_value = {letter.value: letter for letter in letters}
    first = by_value[b"\xff\x00garbage"]
    assert first.key == order_key
    assert first.headers == tuple(headers)  # the original headers, dlq-* parsed out
    assert "OrderEvent" in first.error
    assert first.source_topic == config.topic
    assert (first.source_partition, first.source_offset) == (garbage.partition, garbage.offset)
    assert datetime.fromisoformat(first.failed_at).tzinfo is not None
    assert "event" in by_value[not_an_event].error
    refused = [letter for letter in letters if "ReadModelWriteRejected" in letter.error]
    assert len(refused) == 1
    # The tables are written independently: the small status item went in, only the
    # details item was refused (the dead letter keeps the event for a fix and a replay).
    assert await get_item(ddb, tables.details, str(huge.order.order_id)) is None
    assert await get_item(ddb, tables.status, str(huge.order.order_id)) is not None


async def test_replay_republishes_dead_letters_once(
    ddb: Any, tables: TableNames, config: ProjectorConfig
) -> None:
    event = order_history(1)[-1]
    value = wire.event_to_proto(event).SerializeToString()
    key = str(event.order.order_id).encode()
    async with producer(config.bootstrap_servers) as kafka:
        # A valid event dead-lettered earlier (e.g. during a bug), and a garbage record.
        for payload, original in ((value, event_headers(event)), (b"junk", [("a", b"1")])):
            await kafka.send_and_wait(
                config.dlq_topic,
                payload,
                key=key,
                headers=dead_letter_headers(
                    original,
                    error="earlier failure",
                    source_topic=config.topic,
                    source_partition=0,
                    source_offset=7,
                ),
            )
    assert len(await list_dead_letters(config.bootstrap_servers, config.dlq_topic)) == 2
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        projector = OrderProjector(writer, config)
        async with running(projector):
            replayed = await replay_dead_letters(
                config.bootstrap_servers, config.dlq_topic, config.topic
            )
            assert replayed == 2
            await eventually(
                lambda: _at_version(ddb, tables, str(event.order.order_id), event.version),
                "the replayed event in the read model",
            )
            await eventually(
                lambda: projector.stats.dead_lettered == 1,
                "the replayed garbage back in the dead-letter topic",
            )
    letters = await list_dead_letters(config.bootstrap_servers, config.dlq_topic)
    assert len(letters) == 3
    again = max(letters, key=lambda letter: letter.offset)
    assert again.value == b"junk"
    assert again.headers == (("a", b"1"),)  # old dlq-* headers were not carried along
    assert again.error != "earlier failure"
    # The replay position is committed: only the new dead letter is replayed next time.
    assert await replay_dead_letters(config.bootstrap_servers, config.dlq_topic, unique("t")) == 1


async def test_stop_commits_what_was_written_and_is_safe_twice(
    ddb: Any, tables: TableNames, config: ProjectorConfig
) -> None:
    histories = [order_history() for _ in range(5)]
    finals = {str(h[-1].order.order_id): h[-1].version for h in histories}
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        async with OrderProjector(writer, config) as projector:
            async with producer(config.bootstrap_servers) as kafka:
                sent = await publish(kafka, config.topic, [e for h in histories for e in h])
            await eventually(lambda: _all_final(ddb, tables, finals), "every order's newest")
            await eventually(lambda: projector.stats.consumed == len(sent), "all consumed")
            for partition in {md.partition for md in sent}:
                await eventually(
                    functools.partial(_caught_up, partition),
                    f"consumer lag 0 on partition {partition}",
                )
            await projector.stop()
            await projector.stop()
            assert projector.task.done()
        # Leaving after the stops stops a third time.
        projector.task.result()
    ends = {TopicPartition(config.topic, md.partition): 0 for md in sent}
    for md in sent:
        tp = TopicPartition(config.topic, md.partition)
        ends[tp] = max(ends[tp], md.offset + 1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers, group_id=config.group_id
    )
    await consumer.start()
    try:
        for tp, end in ends.items():
            assert await consumer.committed(tp) == end
    finally:
        await consumer.stop()


def _tail(log: Path) -> str:
    """The end of the projector process's log, for a failure message."""
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


async def _spawn(local_stack: StackEndpoints, log: Path, **kwargs: str) -> Any:
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *projector_process_argv(local_stack, **kwargs),
            cwd=REPO_ROOT,
            env={**os.environ, **local_stack.env()},
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line.strip() == b"projector-started", _tail(log)
    return process


async def test_killed_projector_resumes_in_its_group_without_loss_or_regression(
    ddb: Any,
    tables: TableNames,
    config: ProjectorConfig,
    local_stack: StackEndpoints,
    tmp_path: Path,
) -> None:
    histories = [order_history() for _ in range(120)]
    finals = {str(h[-1].order.order_id): h[-1].version for h in histories}
    stream = [event for step in zip(*histories, strict=True) for event in step]
    watched = random.Random(3).sample(sorted(finals), 8)
    seen: dict[str, int] = {}
    regressions: list[str] = []

    async def watch() -> None:
        # Versions only ever grow, whatever happens to the projector.
        while True:
            for order_id in watched:
                item = await get_item(ddb, tables.status, order_id)
                version = 0 if item is None else items.item_version(item)
                if version < seen.get(order_id, 0):
                    regressions.append(f"{order_id}: {seen[order_id]} -> {version}")
                seen[order_id] = max(version, seen.get(order_id, 0))
            await asyncio.sleep(0.02)

    kwargs = {"prefix": _prefix(tables), "topic": config.topic, "group": config.group_id}
    log = tmp_path / "projector.log"
    first = await _spawn(local_stack, log, **kwargs)
    second = None
    watcher = asyncio.create_task(watch())
    try:
        async with producer(config.bootstrap_servers) as kafka:
            half = len(stream) // 2
            await publish(kafka, config.topic, stream[:half])
            # Kill once part of the first half is visible: the rest is in flight.
            await eventually(
                lambda: sum(1 for v in seen.values() if v > 0) >= 3,
                "the first writes",
            )
            first.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL
            await publish(kafka, config.topic, stream[half:])
        second = await _spawn(local_stack, log, **kwargs)
        await eventually(lambda: _all_final(ddb, tables, finals), "every order's newest")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0, _tail(log)
    finally:
        watcher.cancel()
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
    assert not regressions
    assert await list_dead_letters(config.bootstrap_servers, config.dlq_topic) == []
    for history in histories[:5]:
        await _assert_equals_event(ddb, tables, history[-1])


async def test_dynamodb_outage_keeps_events_until_it_returns(
    local_stack: StackEndpoints, config: ProjectorConfig, tmp_path: Path
) -> None:
    # A private moto server: stopping the session's one would wipe other tests' tables too.
    server = MotoDynamoDBServer(free_port(), tmp_path / "moto.log")
    await asyncio.to_thread(server.start)
    endpoints = replace(local_stack, dynamodb_endpoint=server.endpoint)
    prefix = unique("outage") + "-"
    tables = TableNames.for_prefix(prefix)
    before, during = order_history(), order_history()
    try:
        # Few retries per write, so the outage is noticed quickly.
        async with dynamodb(endpoints, max_retries=0, timeout_ms=1000) as client:
            await create_tables(client, prefix)
            writer = ReadModelWriter(client, prefix, attempts=2, backoff_seconds=0.01)
            recovered: list[float] = []
            projector = OrderProjector(writer, config, on_recovered=recovered.append)
            async with running(projector), producer(config.bootstrap_servers) as kafka:
                await publish(kafka, config.topic, before[:2])
                await eventually(
                    lambda: _at_version(client, tables, str(before[0].order.order_id), 2),
                    "the first events",
                )
                stopped_at = time.time()
                await asyncio.to_thread(server.stop)
                await publish(kafka, config.topic, before[2:] + during)
                # During an outage the projector holds the batch in hand and fetches no more,
                # so how many events it consumed depends on how they were batched: the point
                # is that it keeps retrying and dead-letters nothing.
                await eventually(
                    lambda: projector.stats.outage_retries >= 3,
                    "the projector to notice the outage and keep retrying",
                )
                assert projector.stats.dead_lettered == 0
                # moto keeps everything in memory: it comes back empty, tables included.
                await asyncio.to_thread(server.start)
                await create_tables(client, prefix)
                finals = {str(h[-1].order.order_id): h[-1].version for h in (before, during)}
                await eventually(lambda: _all_final(client, tables, finals), "recovery")
                await _assert_equals_event(client, tables, during[-1])
                await _assert_equals_event(client, tables, before[-1])
                # The read model came back (empty): reconciliation was told to look, and
                # since when (the outage as the projector first saw it: after the endpoint went).
                # (The last: a write slower than the client's 1 s before the stop, on a
                # loaded machine, is an outage of its own.)
                assert recovered
                assert stopped_at <= recovered[-1] <= time.time()
        assert projector.stats.dead_lettered == 0
        assert await list_dead_letters(config.bootstrap_servers, config.dlq_topic) == []
    finally:
        await asyncio.to_thread(server.stop)


async def test_projector_from_settings_runs_until_stopped(
    local_stack: StackEndpoints, ddb: Any, tables: TableNames, config: ProjectorConfig
) -> None:
    settings = Settings(
        database_url=local_stack.database_url,
        aws_region=local_stack.aws_region,
        dynamodb_endpoint=local_stack.dynamodb_endpoint,
        dynamodb_table_prefix=_prefix(tables),
        kafka_bootstrap_servers=config.bootstrap_servers,
        kafka_topic=config.topic,
        kafka_idempotent_producer=False,
        projector_group_id=config.group_id,
    )
    from_settings = projector_config(settings, session_timeout_ms=3000, heartbeat_interval_ms=500)
    history = order_history(1)
    # Configured from settings, as the projector role is; the writer owns its DynamoDB client.
    async with dynamodb_client_for(settings, aws_session(local_stack)) as client:
        writer = ReadModelWriter(client, settings.dynamodb_table_prefix)
        async with OrderProjector(writer, from_settings) as projector:
            async with producer(config.bootstrap_servers) as kafka:
                await publish(kafka, config.topic, history)
            await eventually(
                functools.partial(_at_version, ddb, tables, str(history[0].order.order_id), 2),
                "the events",
            )
            await asyncio.wait_for(projector.stop(), 30)
        assert projector.task.done()
        projector.task.result()
    assert projector.stats.consumed == 2
