"""The service with DAX_ENDPOINT set, in process over the real servers, read through its gRPC
API: the real amazon-dax-client against the DAX-protocol endpoint (tooling/uoom_orders_dax) in
front of the stack's DynamoDB endpoint. A read that misses the near cache is served by DAX
(`x-served-by: dax`); a stale DAX item never goes below `min_version` nor below what the replica
answered; DAX down at start stops the start naming DAX_ENDPOINT; DAX going down later sends
reads to DynamoDB, and back to DAX when it returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.builders import create_request, update_request
from tests.integration.pipeline import Pipeline, dynamodb_item, pipeline
from tests.integration.projector_support import eventually
from tests.integration.test_read_path import served_by
from tests.support.dax_endpoint import dax_endpoint
from uoom_orders_client import order_pb2
from uoom_orders_dax import DaxEndpoint
from uoom_orders_devstack import StackEndpoints

# DAX's own default item TTL: no entry expires during a test, so staleness shows.
DAX_DEFAULT_TTL_SECONDS = 300.0


@pytest.fixture(scope="module")
def dax(local_stack: StackEndpoints) -> Iterator[DaxEndpoint]:
    with dax_endpoint(local_stack.dynamodb_endpoint, item_ttl_seconds=DAX_DEFAULT_TTL_SECONDS) as e:
        yield e


@pytest.fixture
async def stack(local_stack: StackEndpoints, database_url: str) -> AsyncIterator[Pipeline]:
    async with pipeline(local_stack, database_url) as running:
        yield running


async def _version_in_dynamodb(stack: Pipeline, order_id: str, version: int) -> bool:
    item = await dynamodb_item(stack, order_id)
    return item is not None and int(item["version"]["N"]) == version


async def test_a_read_that_misses_the_near_cache_is_served_by_dax(
    stack: Pipeline, dax: DaxEndpoint
) -> None:
    first = await stack.start_api(DAX_ENDPOINT=dax.endpoint)
    assert first.service.read is not None
    assert first.service.read.tiers == ["near-cache", "dax", "dynamodb", "postgres"]
    order = (await first.client.create_order(create_request())).order
    await eventually(lambda: _version_in_dynamodb(stack, order.order_id, 1), "projection")
    late = await stack.start_api(DAX_ENDPOINT=dax.endpoint)  # its feed never saw the event
    assert await served_by(late.client, order.order_id) == ("dax", 1)
    assert await served_by(late.client, order.order_id) == ("near-cache", 1)


async def test_a_stale_dax_item_never_goes_below_min_version_or_what_was_answered(
    stack: Pipeline, dax: DaxEndpoint
) -> None:
    writer = await stack.start_api(DAX_ENDPOINT=dax.endpoint)
    order = (await writer.client.create_order(create_request())).order
    await eventually(lambda: _version_in_dynamodb(stack, order.order_id, 1), "projection")
    reader = await stack.start_api(DAX_ENDPOINT=dax.endpoint)
    assert await served_by(reader.client, order.order_id) == ("dax", 1)  # DAX now holds v1

    await writer.client.update_order_status(
        update_request(order.order_id, order_pb2.ORDER_STATUS_CONFIRMED)
    )
    # The projector writes straight to DynamoDB: DAX's item cache still holds version 1.
    await eventually(lambda: _version_in_dynamodb(stack, order.order_id, 2), "projection")

    fresh = await stack.start_api(DAX_ENDPOINT=dax.endpoint)  # no near-cache entry, no floor
    # What a caller without min_version sees on such a replica: DAX's older version, for up
    # to the item TTL (the version is still one this replica never went back from).
    assert await served_by(fresh.client, order.order_id) == ("dax", 1)
    # A caller that saw version 2 says so: DAX's copy is passed over.
    assert await served_by(fresh.client, order.order_id, min_version=2) == ("dynamodb", 2)
    # From then on this replica never answers less than 2, whoever asks.
    for _ in range(3):
        tier, version = await served_by(fresh.client, order.order_id)
        assert version == 2, tier


async def test_dax_down_at_start_degrades_to_dynamodb_and_dax_serves_once_it_is_up(
    stack: Pipeline, local_stack: StackEndpoints
) -> None:
    """A cache that is down must not keep a replica from starting (a DAX outage during a
    deploy would otherwise become a capacity outage): reads go to the next tier meanwhile."""
    endpoint = dax_endpoint(local_stack.dynamodb_endpoint)
    await asyncio.to_thread(endpoint.start)
    address = endpoint.endpoint
    await asyncio.to_thread(endpoint.stop)
    started = time.monotonic()
    api = await stack.start_api(DAX_ENDPOINT=address, READ_TIERS="dax,dynamodb")
    assert time.monotonic() - started < 15
    try:
        order = (await api.client.create_order(create_request())).order
        await eventually(lambda: _version_in_dynamodb(stack, order.order_id, 1), "projection")
        for _ in range(5):
            assert await served_by(api.client, order.order_id) == ("dynamodb", 1)
        await asyncio.to_thread(endpoint.start)  # the same port, now answering

        async def dax_serves() -> bool:
            return await served_by(api.client, order.order_id) == ("dax", 1)

        await eventually(dax_serves, "DAX to serve once it is up", timeout=20, interval=0.2)
    finally:
        await asyncio.to_thread(endpoint.stop)


async def test_dax_down_later_sends_reads_to_dynamodb_and_back_when_it_returns(
    stack: Pipeline, local_stack: StackEndpoints
) -> None:
    endpoint = dax_endpoint(local_stack.dynamodb_endpoint)
    await asyncio.to_thread(endpoint.start)
    try:
        api = await stack.start_api(DAX_ENDPOINT=endpoint.endpoint, READ_TIERS="dax,dynamodb")
        order = (await api.client.create_order(create_request())).order
        await eventually(lambda: _version_in_dynamodb(stack, order.order_id, 1), "projection")

        async def tier_is(tier: str) -> bool:
            return await served_by(api.client, order.order_id) == (tier, 1)

        await eventually(lambda: tier_is("dax"), "DAX to serve it")
        await asyncio.to_thread(endpoint.stop)
        # No failed call: every read is answered, by DynamoDB, while DAX is away.
        for _ in range(10):
            assert await served_by(api.client, order.order_id) == ("dynamodb", 1)
        await asyncio.to_thread(endpoint.start)  # same port; its caches start empty
        await eventually(lambda: tier_is("dax"), "DAX to serve again", timeout=15, interval=0.1)
    finally:
        await asyncio.to_thread(endpoint.stop)
