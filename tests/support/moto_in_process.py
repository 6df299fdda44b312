"""moto's DynamoDB in this process (no server): for contract tests of the local endpoint's
replacements of moto's own steps, which run inside moto's handler either way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from uoom_orders.dynamodb.tables import create_table_kwargs


@contextlib.contextmanager
def dynamodb_with_table(monkeypatch: pytest.MonkeyPatch, table: str) -> Iterator[Any]:
    """A boto3 DynamoDB client on an in-process moto holding `table` (the service's definition)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_kwargs(table))
        yield client


Outcome = tuple[str, Any]
"""("ok", the reply) or ("error", the error's response), ResponseMetadata left out."""


def outcome(call: Callable[[], Any]) -> Outcome:
    """What a boto3 call answered, comparable across runs."""
    try:
        reply = call()
    except ClientError as error:
        return "error", {k: v for k, v in error.response.items() if k != "ResponseMetadata"}
    return "ok", {k: v for k, v in reply.items() if k != "ResponseMetadata"}


def stream_records(client: Any, table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream, without their random ids."""
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    for record in records:
        record.pop("eventID")  # random
    return records  # type: ignore[no-any-return]
