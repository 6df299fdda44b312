"""Assembling the read path from its config: which tiers, in which order, and what runs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from uoom.orders.v1 import order_pb2

from uoom_orders.read.assembly import ReadPathConfig, page_tokens, read_path

CONFIG = ReadPathConfig(
    tiers=("near-cache", "dax", "dynamodb"),
    tier_timeout_seconds=0.25,
    postgres_timeout_seconds=3,
    breaker_failure_threshold=5,
    breaker_reset_seconds=2,
    table_prefix="assembly-",
    order_ttl_hours=72,
    kafka_bootstrap_servers=None,
    kafka_topic="orders",
    kafka_fetch_max_wait_ms=500,
    near_cache_max_entries=10,
    read_floor_max_entries=1000,
    near_cache_max_bytes=1 << 20,
    near_cache_fill_ttl_seconds=60,
    dax_endpoint=None,
    dax_threads=1,
    aws_region="us-east-1",
)


class Client:
    """Enough of an aioboto3 DynamoDB client for the write-back: it records its writes."""

    def __init__(self) -> None:
        self.meta = SimpleNamespace(events=SimpleNamespace(register=lambda *_, **__: None))
        self.written: list[str] = []

    async def put_item(self, **request: Any) -> None:
        self.written.append(request["Item"]["orderId"]["S"])


async def test_only_postgres_without_stores_for_the_other_tiers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with read_path(CONFIG, pool=None, dynamodb=None) as assembled:
        assert assembled.tiers == ["postgres"]
        assert (assembled.near_cache, assembled.near_cache_feed, assembled.write_back) == (
            None,
            None,
            None,
        )
    assert "near cache off" in caplog.text


async def test_dynamodb_comes_with_a_write_back_that_runs_while_the_path_does() -> None:
    config = dataclasses.replace(CONFIG, tiers=("dynamodb",))
    dynamodb = Client()
    summary = order_pb2.OrderSummary(
        order_id=str(uuid.uuid4()), status=order_pb2.ORDER_STATUS_PENDING, version=1
    )
    async with read_path(config, pool=None, dynamodb=dynamodb) as assembled:
        assert assembled.tiers == ["dynamodb", "postgres"]
        write_back = assembled.write_back
        assert write_back is not None
        write_back.schedule(summary, None)
    assert dynamodb.written == [summary.order_id]  # drained on exit
    write_back.schedule(summary, None)
    await asyncio.sleep(0.01)
    assert dynamodb.written == [summary.order_id]  # stopped


def test_page_tokens_without_a_secret_use_a_random_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    page_tokens(b"0123456789abcdef")
    assert caplog.text == ""
    page_tokens(b"")
    assert "PAGE_TOKEN_SECRET is not set" in caplog.text
