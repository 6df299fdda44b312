"""The local stack's servers, checked over real sockets with the clients the service uses."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aioboto3
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.support.dax_endpoint import dax_client, dynamodb_client
from uoom_orders_devstack import LocalStack, StackEndpoints, StackStartError, TansuBroker
from uoom_orders_devstack import stack as stack_module
from uoom_orders_devstack.dax_endpoint import DEPLOYED_ITEM_TTL_SECONDS
from uoom_orders_devstack.kafka_broker import kafka_metadata_brokers
from uoom_orders_devstack.ports import free_port, port_accepts

# Bounds every wait below; the servers answer in milliseconds when healthy.
DEADLINE_SECONDS = 30.0


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    # An unclosed client warns from its finaliser; collecting here makes that warning (an error
    # under filterwarnings=error) belong to the test that leaked it.
    yield
    gc.collect()


def _producer(endpoints: StackEndpoints) -> AIOKafkaProducer:
    # tansu rejects aiokafka's idempotent producer (InitProducerId v0); acks="all" works.
    return AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=5000,
        retry_backoff_ms=50,
    )


async def _read_one(endpoints: StackEndpoints, tp: TopicPartition, offset: int) -> bytes | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            batches = await consumer.getmany(tp, timeout_ms=200)
            for record in batches.get(tp, []):
                value: bytes | None = record.value
                return value
        return None
    finally:
        await consumer.stop()


async def test_postgres_answers_and_the_test_database_is_migrated(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert (await conn.fetchval("SELECT current_database()")).startswith("test_")
        assert await conn.fetchval("SELECT to_regclass('public.orders') IS NOT NULL")
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 1
    finally:
        await conn.close()


async def test_each_test_gets_an_empty_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    finally:
        await conn.close()


async def test_kafka_record_round_trip(local_stack: StackEndpoints) -> None:
    topic = f"stack-check-{uuid.uuid4().hex}"
    producer = _producer(local_stack)
    await producer.start()
    try:
        sent = await asyncio.wait_for(
            producer.send_and_wait(topic, b"hello", key=b"k"), DEADLINE_SECONDS
        )
    finally:
        await producer.stop()
    tp = TopicPartition(topic, sent.partition)
    assert await _read_one(local_stack, tp, sent.offset) == b"hello"


async def test_dynamodb_endpoint_lists_and_creates_tables(local_stack: StackEndpoints) -> None:
    session = aioboto3.Session(
        aws_access_key_id=local_stack.aws_access_key_id,
        aws_secret_access_key=local_stack.aws_secret_access_key,
        region_name=local_stack.aws_region,
    )
    table = f"stack_check_{uuid.uuid4().hex}"
    async with session.client("dynamodb", endpoint_url=local_stack.dynamodb_endpoint) as ddb:
        before = await ddb.list_tables()
        assert table not in before["TableNames"]
        await ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (await ddb.describe_table(TableName=table))["Table"]["TableStatus"] != "ACTIVE":
            assert time.monotonic() < deadline, "table never became ACTIVE"
            await asyncio.sleep(0.05)
        await ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
        item = await ddb.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
        assert item["Item"]["v"] == {"N": "1"}
        assert table in (await ddb.list_tables())["TableNames"]
        await ddb.delete_table(TableName=table)


async def test_broker_restarts_on_the_same_port(stack_servers: LocalStack) -> None:
    broker = stack_servers.kafka
    if broker is None:
        pytest.skip("the broker is given from outside (TEST_KAFKA_BOOTSTRAP_SERVERS)")
    endpoints = stack_servers.endpoints
    topic = f"stack-restart-{uuid.uuid4().hex}"
    # Memory storage: the restarted broker is empty, so the topic must be created again
    # before anything produces to it (tansu loses records sent to a topic it does not know).
    broker.create_topics({topic: 1})
    tp = TopicPartition(topic, 0)
    port = broker.port
    producer = _producer(endpoints)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"before"), DEADLINE_SECONDS)
        try:
            broker.stop()
            assert not broker.is_running
            assert not port_accepts(port)
        finally:
            broker.start()  # whatever happened, leave the session's broker running
        assert broker.port == port
        assert broker.is_running
        # The same producer reconnects to the same address.
        sent = await asyncio.wait_for(producer.send_and_wait(topic, b"after"), DEADLINE_SECONDS)
    finally:
        await producer.stop()
    assert sent.partition == 0
    assert sent.offset == 0, "the restarted broker should have started empty"
    assert await _read_one(endpoints, tp, sent.offset) == b"after"


async def test_paused_broker_keeps_its_records(stack_servers: LocalStack) -> None:
    broker = stack_servers.kafka
    if broker is None:
        pytest.skip("the broker is given from outside (TEST_KAFKA_BOOTSTRAP_SERVERS)")
    endpoints = stack_servers.endpoints
    topic = f"stack-pause-{uuid.uuid4().hex}"
    broker.create_topics({topic: 1})
    tp = TopicPartition(topic, 0)
    producer = _producer(endpoints)
    await producer.start()
    try:
        first = await asyncio.wait_for(producer.send_and_wait(topic, b"kept"), DEADLINE_SECONDS)
        broker.pause()
        try:
            # The kernel still accepts connections; the broker answers nothing.
            with pytest.raises(TimeoutError):
                kafka_metadata_brokers(broker.port, timeout=0.3)
        finally:
            broker.resume()
        await asyncio.wait_for(producer.send_and_wait(topic, b"later"), DEADLINE_SECONDS)
    finally:
        await producer.stop()
    assert await _read_one(endpoints, tp, first.offset) == b"kept"


async def test_dynamodb_endpoint_restarts_on_the_same_port(stack_servers: LocalStack) -> None:
    server = stack_servers.dynamodb
    if server is None:
        pytest.skip("the DynamoDB endpoint is given from outside (TEST_DYNAMODB_ENDPOINT)")
    port = server.port
    try:
        server.kill()
        assert not server.is_running
        assert not port_accepts(port)
    finally:
        server.start()
    assert server.port == port
    endpoints = stack_servers.endpoints
    session = aioboto3.Session(
        aws_access_key_id=endpoints.aws_access_key_id,
        aws_secret_access_key=endpoints.aws_secret_access_key,
        region_name=endpoints.aws_region,
    )
    async with session.client("dynamodb", endpoint_url=endpoints.dynamodb_endpoint) as ddb:
        assert "TableNames" in await ddb.list_tables()


def test_endpoints_env_names_every_setting(local_stack: StackEndpoints) -> None:
    env = local_stack.env()
    assert env["DATABASE_URL"] == local_stack.database_url
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == local_stack.kafka_bootstrap_servers
    assert env["DYNAMODB_ENDPOINT"] == local_stack.dynamodb_endpoint
    assert {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env.keys()


def test_a_taken_port_is_retried_once_on_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(stack_module, "free_port", lambda: next(ports, None) or free_port())
        # Only the broker is started here: the other endpoints are given (and never contacted).
        with LocalStack(
            tmp_path / "stack",
            database_url="postgresql://postgres@127.0.0.1:1/orders",
            dynamodb_endpoint="http://127.0.0.1:1",
            dax=False,
        ) as stack:
            assert stack.kafka is not None
            assert stack.postgres is None
            assert stack.dynamodb is None
            assert stack.kafka.port != taken
            assert (
                stack.endpoints.admin_database_url == "postgresql://postgres@127.0.0.1:1/postgres"
            )
        assert stack.kafka is None
    assert not (tmp_path / "stack").exists()


def test_a_failed_start_reports_the_log_tail(tmp_path: Path) -> None:
    broker = TansuBroker(free_port(), tmp_path / "kafka.log", binary=Path("/bin/false"))
    with pytest.raises(StackStartError, match=r"exited with status 1(.|\n)*starting: /bin/false"):
        broker.start()
    assert not broker.is_running
    broker.stop()  # safe when not running
    broker.stop()


def test_the_dax_endpoint_fronts_the_dynamodb_endpoint_and_restarts_on_its_port(
    local_stack: StackEndpoints, tmp_path: Path
) -> None:
    """The DAX-protocol endpoint as the launcher runs it (python -m uoom_orders_dax), read
    through the real amazon-dax-client. Only it is started: the others are the session's."""
    assert "DAX_ENDPOINT" not in local_stack.env()  # the tests' own stack opts out
    ddb = dynamodb_client(local_stack.dynamodb_endpoint)
    table = f"stack_dax_{uuid.uuid4().hex}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {"pk": {"S": "a"}, "v": {"N": "1"}}
    ddb.put_item(TableName=table, Item=item)
    try:
        with LocalStack(
            tmp_path / "stack",
            database_url=local_stack.database_url,
            kafka_bootstrap_servers=local_stack.kafka_bootstrap_servers,
            dynamodb_endpoint=local_stack.dynamodb_endpoint,
        ) as stack:
            dax = stack.dax
            assert dax is not None
            assert (stack.postgres, stack.kafka, stack.dynamodb) == (None, None, None)
            endpoints = stack.endpoints
            assert endpoints.env()["DAX_ENDPOINT"] == dax.endpoint == endpoints.dax_endpoint
            assert dax.item_ttl_seconds == DEPLOYED_ITEM_TTL_SECONDS
            port = dax.port
            reader = dax_client(dax.endpoint)
            try:
                assert reader.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == item
            finally:
                reader.close()
            dax.stop()
            assert not port_accepts(port)
            dax.start()
            assert dax.port == port
            reader = dax_client(dax.endpoint)
            try:
                assert reader.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == item
            finally:
                reader.close()
        assert stack.dax is None
        assert not port_accepts(port)
        assert not (tmp_path / "stack").exists()
    finally:
        ddb.delete_table(TableName=table)
        ddb.close()
