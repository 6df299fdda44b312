"""When the read model may have come back without what it held, the process says so (the
projector's reconciliation walk is then brought forward): its status table was created again
between two checks that reached it; an endpoint that was only unreachable is not reported."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from uoom_orders.observability.health import HealthMonitor
from uoom_orders.observability.service_health import service_health


class _Pool:
    async def fetchval(self, query: str) -> int:
        return 1


class _DynamoDB:
    """describe_table answers with the table's creation time, or fails while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.created = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    async def describe_table(self, TableName: str) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("endpoint gone")
        return {"Table": {"TableName": TableName, "CreationDateTime": self.created}}


def _health(dynamodb: _DynamoDB, **hooks: Any) -> HealthMonitor:
    return service_health(
        pool=_Pool(),
        dynamodb=dynamodb,
        dynamodb_status_table="order-status",
        read=None,
        role_tasks=[],
        servicer=None,
        service_name="uoom.orders.v1.OrderService",
        **hooks,
    )


def _monitor(dynamodb: _DynamoDB, calls: list[tuple[float, float]]) -> HealthMonitor:
    return _health(
        dynamodb, on_read_model_back=lambda created, reached: calls.append((created, reached))
    )


async def test_dynamodb_answering_again_with_the_same_table_is_not_reported() -> None:
    dynamodb, calls = _DynamoDB(), list[tuple[float, float]]()
    monitor = _monitor(dynamodb, calls)
    await monitor.check_once()
    dynamodb.down = True
    await monitor.check_once()
    dynamodb.down = False
    await monitor.check_once()
    assert monitor.up["dynamodb"]
    assert calls == []


async def test_a_table_created_again_while_the_endpoint_was_down_is_reported_once() -> None:
    dynamodb, calls = _DynamoDB(), list[tuple[float, float]]()
    monitor = _monitor(dynamodb, calls)
    before = time.time()
    await monitor.check_once()
    reached = time.time()
    dynamodb.down = True
    await monitor.check_once()
    dynamodb.down, dynamodb.created = False, datetime(2026, 11, 30, 9, 5, tzinfo=UTC)
    await monitor.check_once()
    await monitor.check_once()
    # When it happened, for the schedule, and when the old table was last reached: the
    # orders changed since may still be on their way to the projectors.
    assert [created for created, _ in calls] == [dynamodb.created.timestamp()]
    assert before <= calls[0][1] <= reached


async def test_a_table_created_again_between_two_checks_is_reported() -> None:
    dynamodb, calls = _DynamoDB(), list[tuple[float, float]]()
    monitor = _monitor(dynamodb, calls)
    await monitor.check_once()
    dynamodb.created = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)  # lost and made again
    await monitor.check_once()
    await monitor.check_once()
    assert [created for created, _ in calls] == [dynamodb.created.timestamp()]


async def test_dynamodb_answering_again_after_failed_checks_is_said_once() -> None:
    dynamodb, reachable = _DynamoDB(), list[str]()
    monitor = _health(dynamodb, on_read_model_reachable=lambda: reachable.append("again"))
    await monitor.check_once()
    assert reachable == []  # the first check is no return
    dynamodb.down = True
    await monitor.check_once()
    await monitor.check_once()
    dynamodb.down = False
    await monitor.check_once()
    await monitor.check_once()
    assert reachable == ["again"]
