"""Stopping a projector's consumer with and without leaving its group, on the real broker and
the real aiokafka: the local stack stops without LeaveGroup (`PROJECTOR_LEAVE_GROUP_ON_STOP`,
see `projector/membership.py`), production leaves. aiokafka logs each LeaveGroup it sends."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaConsumer

from tests.integration.projector_support import create_topics, unique
from uoom_orders.kafka_clients import kafka_consumer, started
from uoom_orders.projector.membership import stop_consumer
from uoom_orders_devstack import StackEndpoints

LEFT = "LeaveGroup request succeeded"


@pytest.mark.parametrize("leave_group", [True, False])
async def test_a_stopping_consumer_leaves_its_group_only_when_told_to(
    local_stack: StackEndpoints, caplog: pytest.LogCaptureFixture, leave_group: bool
) -> None:
    topic = unique("leave")
    group = unique("group")
    await create_topics(local_stack.kafka_bootstrap_servers, {topic: 2})

    def member() -> AIOKafkaConsumer:
        consumer = kafka_consumer(
            local_stack.kafka_bootstrap_servers,
            group_id=group,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
        )
        consumer.subscribe([topic])
        return consumer

    # aiokafka leaves only a generation above 0: the second member's join makes one.
    first = await started(member())
    try:
        second = await started(member())
        assert second.assignment(), "joined the group with partitions"
        with caplog.at_level(logging.INFO, logger="aiokafka"):
            await stop_consumer(second, leave_group=leave_group)
    finally:
        await first.stop()
    assert (LEFT in caplog.text) is leave_group
