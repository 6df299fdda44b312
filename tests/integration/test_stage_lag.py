"""Each stage of the pipeline exports its lag, from timestamps the events carry, on real servers:
commit → Kafka acknowledgement (relay), publication → near-cache apply (every API replica's
feed) and publication → read-model write (projector). The broker (tansu) must keep the
records' timestamps for the last two: this checks it does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from tests.builders import create_request, update_request
from tests.integration.pipeline import Pipeline, dynamodb_item, pipeline
from tests.integration.projector_support import eventually
from uoom_orders_client import order_pb2, order_service_pb2
from uoom_orders_devstack import StackEndpoints

STAGES = (
    "outbox_publish_lag_seconds",
    "near_cache_feed_lag_seconds",
    "projector_write_lag_seconds",
)
# Generous: the machine is shared. The point is that a lag is counted and sane, not its size.
SANE_MEAN_SECONDS = 10.0


@pytest.fixture
async def stack(local_stack: StackEndpoints, database_url: str) -> AsyncIterator[Pipeline]:
    async with pipeline(local_stack, database_url) as running:
        yield running


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def snapshot() -> dict[str, tuple[float, float]]:
    return {stage: (sample(f"{stage}_count"), sample(f"{stage}_sum")) for stage in STAGES}


async def test_every_stage_counts_each_event_with_a_sane_lag(stack: Pipeline) -> None:
    api = await stack.start_api()
    before = snapshot()
    order = (await api.client.create_order(create_request())).order
    await api.client.update_order_status(
        update_request(order.order_id, order_pb2.ORDER_STATUS_CONFIRMED)
    )

    async def visible_everywhere() -> bool:
        reply, info = await api.client.get_order_status_with_metadata(
            order_service_pb2.GetOrderStatusRequest(order_id=order.order_id)
        )
        item = await dynamodb_item(stack, order.order_id)
        return (
            info.served_by == "near-cache"
            and reply.order.version == 2
            and item is not None
            and int(item["version"]["N"]) == 2
        )

    await eventually(visible_everywhere, "version 2 in the near cache and the read model")
    # Each stage counts an event once it is done with it, and version 2 can reach the near
    # cache by a read (filled from the read model) before the feed applies its event: wait for
    # every count, not only for what a read shows. The relay and the feed see both events; the
    # projector may fold them into one write.
    wanted = {stage: 1 if stage == "projector_write_lag_seconds" else 2 for stage in STAGES}
    await eventually(
        lambda: all(_counted(before, stage, n) for stage, n in wanted.items()),
        "every stage's count",
    )
    after = snapshot()
    for stage in STAGES:
        count = after[stage][0] - before[stage][0]
        total = after[stage][1] - before[stage][1]
        assert count >= wanted[stage], stage
        assert 0 <= total / count < SANE_MEAN_SECONDS, stage


def _counted(before: dict[str, tuple[float, float]], stage: str, at_least: int) -> bool:
    return sample(f"{stage}_count") - before[stage][0] >= at_least
