"""The item read-store contract suite (test_item_read_store_contract.py), run once more with
the real amazon-dax-client (`AsyncDaxClient(AmazonDaxClient(...))`, as read/dax_client.py
builds it) against the DAX-protocol endpoint of tooling/uoom_orders_dax, which forwards to
a DynamoDB endpoint of its own (moto_server, or TEST_DYNAMODB_ENDPOINT).

The suite's tests are taken over by name, so pytest runs them here with this module's `env`;
the original module is left as it is. The failure test is this module's own: the endpoint is
stopped. Every test writes straight to DynamoDB and then reads on fresh tables, so DAX's caches
never hold anything older than what a test wrote.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import aioboto3
import pytest
from amazondax.DaxError import DaxClientError, DaxServiceError

from tests.contract import test_item_read_store_contract as suite
from tests.integration.projector_support import drop_tables
from tests.support.dax_endpoint import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    CountingDaxClient,
    dax_client,
    dax_endpoint,
    moto_dynamodb,
)
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.dynamodb.tables import TableNames, create_tables
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders.read.dax_client import AsyncDaxClient
from uoom_orders.read.item_store import ItemReadStore
from uoom_orders_dax import DaxEndpoint

pytestmark = pytest.mark.integration

Env = suite.Env
# The suite's tests, collected again here (with this module's `env`).
test_a_written_order_reads_back_exactly = suite.test_a_written_order_reads_back_exactly
test_absent_and_expired_orders_are_none = suite.test_absent_and_expired_orders_are_none
test_batches_span_chunks_and_leave_out_absent_and_expired = (
    suite.test_batches_span_chunks_and_leave_out_absent_and_expired
)
test_lists_run_newest_first_filter_and_continue_from_a_cursor = (
    suite.test_lists_run_newest_first_filter_and_continue_from_a_cursor
)


@pytest.fixture(scope="module")
def dynamodb_url() -> Iterator[str]:
    with moto_dynamodb() as url:
        yield url


@pytest.fixture(scope="module")
def dax(dynamodb_url: str) -> Iterator[DaxEndpoint]:
    with dax_endpoint(dynamodb_url) as endpoint:
        yield endpoint


class DaxEnv(Env):
    def __init__(self, store: ItemReadStore, writer: ReadModelWriter, tables: TableNames):
        super().__init__(store, writer)
        self.tables = tables


@pytest.fixture
async def env(dynamodb_url: str, dax: DaxEndpoint) -> AsyncIterator[DaxEnv]:
    prefix = f"contract-dax-{uuid.uuid4().hex[:10]}-"
    tables = TableNames.for_prefix(prefix)
    session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    async with dynamodb_client(region=REGION, endpoint=dynamodb_url, session=session) as client:
        await create_tables(client, prefix)
        # The client's constructor connects and blocks: off the event loop.
        reader = AsyncDaxClient(await asyncio.to_thread(dax_client, dax.endpoint), max_workers=2)
        try:
            store = ItemReadStore(reader, tables, name="dax-endpoint")
            yield DaxEnv(store, ReadModelWriter(client, prefix), tables)
        finally:
            reader.close()
            await drop_tables(client, tables)


async def test_a_stopped_endpoint_raises_rather_than_answering_absent(
    env: DaxEnv, dynamodb_url: str
) -> None:
    """A failure is an error for the tier (its breaker counts it), never an absent order."""
    order = suite.an_order()
    await env.put(order)
    endpoint = dax_endpoint(dynamodb_url)
    await asyncio.to_thread(endpoint.start)
    counting = CountingDaxClient(await asyncio.to_thread(dax_client, endpoint.endpoint))
    reader = AsyncDaxClient(counting, max_workers=2)
    try:
        store = ItemReadStore(reader, env.tables, name="dax-endpoint")
        assert await store.get_summary(uuid.UUID(order.order_id)) is not None
        await asyncio.to_thread(endpoint.stop)
        with pytest.raises((DaxClientError, DaxServiceError, OSError)):
            await store.get_summary(uuid.UUID(order.order_id))
        # The DAX calls ran on the adapter's own threads, never on the event loop's.
        assert counting.calls == 2
        assert all(name.startswith("dax") for name in counting.threads)
    finally:
        reader.close()
        await asyncio.to_thread(endpoint.stop)
