"""What the service's DynamoDB calls cost: the capacity DynamoDB reports, counted by operation
and table.

Every call that can report it asks for it (`RETURN_TOTAL`: the table and its indexes, one
figure). A conditional write that DynamoDB refuses reports nothing, yet is charged (at least
one write unit): it is counted apart. On the local endpoint (moto) the figures are moto's
fixed stand-ins (PutItem 1, GetItem 0.5, one per key of a BatchGetItem, 1 per Query or Scan
page), not DynamoDB's item-size and index arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uoom_orders.dynamodb.tables import DETAILS_TABLE, STATUS_TABLE
from uoom_orders.observability.metrics import DYNAMODB_CONDITION_FAILED, DYNAMODB_CONSUMED_CAPACITY

RETURN_TOTAL: Mapping[str, str] = {"ReturnConsumedCapacity": "TOTAL"}
"""The request parameter that makes DynamoDB report what a call consumed."""


def table_label(table_name: str) -> str:
    """The table as metrics name it: without the deployment's prefix (bounded label values)."""
    for table in (STATUS_TABLE, DETAILS_TABLE):
        if table_name.endswith(table):
            return table
    return "other"


def count_consumed(operation: str, reply: Mapping[str, Any]) -> None:
    """Counts the ConsumedCapacity of a reply (one entry, or one per table of a batch)."""
    consumed = reply.get("ConsumedCapacity")
    entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    for entry in entries:
        units = entry.get("CapacityUnits") if isinstance(entry, Mapping) else None
        if isinstance(units, int | float) and units > 0:
            DYNAMODB_CONSUMED_CAPACITY.labels(
                operation=operation, table=table_label(str(entry.get("TableName", "")))
            ).inc(units)


def count_condition_failed(operation: str, table_name: str) -> None:
    """Counts a conditional write DynamoDB refused (charged, but reported by no reply)."""
    DYNAMODB_CONDITION_FAILED.labels(operation=operation, table=table_label(table_name)).inc()
