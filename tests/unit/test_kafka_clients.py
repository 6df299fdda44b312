"""The Kafka client factory: the options every client shares, and a start that cleans up."""

from __future__ import annotations

import pytest

from uoom_orders.kafka_clients import kafka_admin, kafka_consumer, kafka_producer, started


async def test_a_consumer_never_commits_by_itself_and_takes_the_options_given() -> None:
    consumer = kafka_consumer(
        "127.0.0.1:1",
        group_id="projector",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        client_id="uoom-orders-projector",
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    try:
        assert consumer._enable_auto_commit is False
        assert consumer._group_id == "projector"
        assert consumer._auto_offset_reset == "earliest"
        assert consumer._fetch_max_wait_ms == 20
        assert (consumer._session_timeout_ms, consumer._heartbeat_interval_ms) == (3000, 500)
        assert consumer._client._client_id == "uoom-orders-projector"
    finally:
        await consumer.stop()


async def test_options_left_out_keep_aiokafkas_defaults() -> None:
    consumer = kafka_consumer(
        "127.0.0.1:1", group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=500
    )
    try:
        assert consumer._session_timeout_ms == 10_000
        assert consumer._max_poll_interval_ms == 300_000
    finally:
        await consumer.stop()


async def test_a_producer_waits_for_every_in_sync_replica() -> None:
    producer = kafka_producer("127.0.0.1:1", enable_idempotence=False, client_id="relay")
    try:
        assert producer._sender._acks == -1  # acks="all"
        assert producer._txn_manager is None  # not idempotent: the local broker refuses it
        assert producer.client._client_id == "relay"
    finally:
        await producer.stop()


async def test_an_admin_client_takes_its_timeout() -> None:
    admin = kafka_admin("127.0.0.1:1", client_id="topics", request_timeout_ms=1234)
    try:
        assert admin._client._request_timeout_ms == 1234
    finally:
        await admin.close()


class Client:
    def __init__(self, fails: bool) -> None:
        self.fails = fails
        self.stopped = False

    async def start(self) -> None:
        if self.fails:
            raise ConnectionError("no broker")

    async def stop(self) -> None:
        self.stopped = True
        raise RuntimeError("a stop that fails must not hide why the start failed")


async def test_a_client_that_fails_to_start_is_stopped_and_the_start_error_raised() -> None:
    failing = Client(fails=True)
    with pytest.raises(ConnectionError):
        await started(failing)
    assert failing.stopped
    working = Client(fails=False)
    assert await started(working) is working
    assert not working.stopped
