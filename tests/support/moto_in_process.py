"""moto's DynamoDB in this process (no server): for contract tests of the local endpoint's
replacements of moto's own steps, which run inside moto's handler either way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
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
