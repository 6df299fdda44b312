"""The read model's two DynamoDB tables, as plain data, and their idempotent creation.

The definitions are the reference write-up's: hash key `orderId`, GSIs `CustomerStatusIndex`
and `RestaurantStatusIndex` on (owner id, `updatedAt`) projecting ALL, on-demand billing,
streams with both images, TTL on `ttl`. They are returned as CreateTable keyword arguments so
that infrastructure templates can be checked against the same data the code creates.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from uoom_orders.dynamodb import items

STATUS_TABLE = "order-status"
DETAILS_TABLE = "order-details"
CUSTOMER_INDEX = "CustomerStatusIndex"
RESTAURANT_INDEX = "RestaurantStatusIndex"
TTL_ATTRIBUTE = items.TTL


@dataclass(frozen=True, slots=True)
class TableNames:
    """The full names of the two tables for one prefix, e.g. "uoom-dev-order-status"."""

    status: str
    details: str

    @classmethod
    def for_prefix(cls, prefix: str) -> TableNames:
        return cls(status=f"{prefix}{STATUS_TABLE}", details=f"{prefix}{DETAILS_TABLE}")

    def all(self) -> tuple[str, str]:
        return (self.status, self.details)


def _index(name: str, hash_key: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": items.UPDATED_AT, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """CreateTable arguments for one of the tables (both share the reference's definition)."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": items.ORDER_ID, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (items.ORDER_ID, items.CUSTOMER_ID, items.RESTAURANT_ID, items.UPDATED_AT)
        ],
        "GlobalSecondaryIndexes": [
            _index(CUSTOMER_INDEX, items.CUSTOMER_ID),
            _index(RESTAURANT_INDEX, items.RESTAURANT_ID),
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def time_to_live_kwargs(table_name: str) -> dict[str, Any]:
    """UpdateTimeToLive arguments: CreateTable cannot enable TTL, so it is a second call."""
    return {
        "TableName": table_name,
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    }


def table_definitions(prefix: str) -> dict[str, dict[str, Any]]:
    """Table name → CreateTable arguments, for both tables of `prefix`."""
    return {name: create_table_kwargs(name) for name in TableNames.for_prefix(prefix).all()}


async def create_tables(client: Any, prefix: str, *, wait_seconds: float = 60.0) -> list[str]:
    """Creates both tables if missing, waits until ACTIVE and enables TTL; returns their names.

    Idempotent: a table that already exists is fine, and TTL is enabled on it too (a table
    created by hand or by an older version may lack it). `client` is an aioboto3 DynamoDB client.
    """
    deadline = time.monotonic() + wait_seconds
    definitions = table_definitions(prefix)
    for kwargs in definitions.values():
        try:
            await client.create_table(**kwargs)
        except ClientError as error:
            if _code(error) != "ResourceInUseException":
                raise
    for name in definitions:
        await _wait_active(client, name, deadline)
        await _enable_ttl(client, name)
    return list(definitions)


async def _wait_active(client: Any, name: str, deadline: float) -> None:
    # Polled rather than the boto waiter: aiobotocore's waiter sleeps 20 s between checks.
    while True:
        description = await client.describe_table(TableName=name)
        if description["Table"]["TableStatus"] == "ACTIVE":
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"DynamoDB table {name} did not become ACTIVE in time")
        await asyncio.sleep(0.1)


async def _enable_ttl(client: Any, name: str) -> None:
    described = await client.describe_time_to_live(TableName=name)
    current = described.get("TimeToLiveDescription", {})
    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and (
        current.get("AttributeName") == TTL_ATTRIBUTE
    ):
        return
    try:
        await client.update_time_to_live(**time_to_live_kwargs(name))
    except ClientError as error:
        # DynamoDB refuses to enable TTL twice; a concurrent creator may have won the race.
        if _code(error) != "ValidationException" or "already enabled" not in str(error):
            raise


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
