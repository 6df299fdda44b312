"""How many records the event topic holds when a pipeline scenario starts.

The local broker (tansu, memory storage) answers each fetch that carries records with work that
grows with the records the partition holds, and it keeps every record (no retention, no
DeleteRecords). Measured with three consumers tailing a 6-partition topic written at 50
records/s: the broker's CPU was 18-22 % of a core on an empty topic, 51-52 % after 10,000
records and 67-84 % after 20,000 (three runs); with no consumer, 2 % either way. A run's
earlier scenarios fill the topic, so the broker takes more of the machine in each later round:
the lag and pipeline scenarios show the count they started with and the broker's CPU per event
beside the stages.
"""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from uoom_orders.kafka_clients import FETCH_MAX_WAIT_MS, kafka_consumer, started

RECORDS_HELD = "broker_records_held"
"""The figure: records the event topic held as the scenario started."""
_ANSWER_S = 10.0


async def records_held(bootstrap_servers: str, topic: str) -> int | None:
    """End minus beginning offset, summed over the topic's partitions; None when the broker
    does not answer in a few seconds or does not know the topic."""
    consumer = kafka_consumer(
        bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        client_id="uoom-orders-bench",
    )
    try:
        async with asyncio.timeout(_ANSWER_S):
            await started(consumer)
            try:
                await consumer.topics()  # the cluster's metadata, this topic's included
                numbers = consumer.partitions_for_topic(topic)
                if not numbers:
                    return None
                partitions = [TopicPartition(topic, n) for n in numbers]
                first = await consumer.beginning_offsets(partitions)
                end = await consumer.end_offsets(partitions)
                return sum(int(end[tp]) - int(first[tp]) for tp in partitions)
            finally:
                await consumer.stop()
    except (KafkaError, OSError, TimeoutError):
        return None
