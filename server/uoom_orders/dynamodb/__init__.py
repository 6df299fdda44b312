"""The DynamoDB read model: table definitions, the item codec and the versioned writer."""

from __future__ import annotations

from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.dynamodb.items import (
    details_item,
    is_expired,
    order_from_item,
    status_item,
    summary_from_item,
    ttl_after,
)
from uoom_orders.dynamodb.ports import (
    ProjectionWriter,
    PutResult,
    ReadModelThrottled,
    ReadModelUnavailable,
    ReadModelWriteRejected,
)
from uoom_orders.dynamodb.tables import TableNames, create_tables, table_definitions
from uoom_orders.dynamodb.writer import ReadModelWriter

__all__ = [
    "ProjectionWriter",
    "PutResult",
    "ReadModelThrottled",
    "ReadModelUnavailable",
    "ReadModelWriteRejected",
    "ReadModelWriter",
    "TableNames",
    "create_tables",
    "details_item",
    "dynamodb_client",
    "is_expired",
    "order_from_item",
    "status_item",
    "summary_from_item",
    "table_definitions",
    "ttl_after",
]
