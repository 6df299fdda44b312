"""What "nothing half-written" means for the write model, checked in PostgreSQL itself."""

from __future__ import annotations

import uuid

import asyncpg
from uoom.orders.v1 import order_pb2

_COUNTS = {
    "orders without items": """
        SELECT count(*) FROM orders o
        WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id)""",
    "orders whose total is not the sum of their items": """
        SELECT count(*) FROM orders o
        WHERE o.total_minor <> (SELECT sum(i.total_minor) FROM order_items i
                                WHERE i.order_id = o.order_id)""",
    "orders without one event per version 1..version": """
        SELECT count(*) FROM orders o
        WHERE (SELECT count(DISTINCT x.version) FROM outbox x WHERE x.order_id = o.order_id)
                  <> o.version
           OR (SELECT max(x.version) FROM outbox x WHERE x.order_id = o.order_id) <> o.version""",
    "events of orders that do not exist": """
        SELECT count(*) FROM outbox x
        WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = x.order_id)""",
    "orders not created by exactly one logged CreateOrder": """
        SELECT abs((SELECT count(*) FROM orders)
                   - (SELECT count(*) FROM request_log WHERE method = 'CreateOrder'))""",
}


async def write_model_problems(db: asyncpg.Connection) -> list[str]:
    """Every broken invariant, as text; empty when the write model is whole."""
    problems = []
    for what, query in _COUNTS.items():
        count = await db.fetchval(query)
        if count:
            problems.append(f"{count} {what}")
    versions = {
        row["order_id"]: row["version"]
        for row in await db.fetch("SELECT order_id, version FROM orders")
    }
    for row in await db.fetch("SELECT request_id, method, response FROM request_log"):
        answered = order_pb2.Order.FromString(row["response"])
        current = versions.get(uuid.UUID(answered.order_id))
        if current is None or current < answered.version:
            problems.append(
                f"request {row['request_id']} ({row['method']}) answered version "
                f"{answered.version} of order {answered.order_id}, which PostgreSQL lacks"
            )
    return problems
