"""When the read model may have come back without what it held, the process says so (the
projector's reconciliation walk is then brought forward): DynamoDB answers again after a check
found it down, or its status table was created again in between two checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from uoom_orders.observability.health import Component, HealthMonitor
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


def _monitor(dynamodb: _DynamoDB, calls: list[str]) -> HealthMonitor:
    return service_health(
        pool=_Pool(),
        dynamodb=dynamodb,
        dynamodb_status_table="order-status",
        read=None,
        role_tasks=[],
        servicer=None,
        service_name="uoom.orders.v1.OrderService",
        on_read_model_back=lambda: calls.append("back"),
    )


async def test_dynamodb_answering_again_after_a_failed_check_is_reported_once() -> None:
    dynamodb, calls = _DynamoDB(), list[str]()
    monitor = _monitor(dynamodb, calls)
    await monitor.check_once()
    await monitor.check_once()
    assert calls == []  # up from the start: nothing came back
    dynamodb.down = True
    await monitor.check_once()
    await monitor.check_once()
    assert calls == []
    dynamodb.down = False
    await monitor.check_once()
    await monitor.check_once()
    assert calls == ["back"]


async def test_a_table_created_again_between_two_checks_is_reported() -> None:
    dynamodb, calls = _DynamoDB(), list[str]()
    monitor = _monitor(dynamodb, calls)
    await monitor.check_once()
    dynamodb.created = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)  # lost and made again
    await monitor.check_once()
    await monitor.check_once()
    assert calls == ["back"]


async def test_on_back_names_the_component_that_works_again() -> None:
    state = {"kafka": True, "postgres": True}
    names: list[str] = []

    def check(name: str) -> Component:
        async def up() -> bool:
            return state[name]

        return Component(name, up)

    monitor = HealthMonitor(
        [check("kafka"), check("postgres")],
        servicer=None,
        service_name="s",
        on_back=names.append,
    )
    await monitor.check_once()
    state["kafka"] = False
    await monitor.check_once()
    state["kafka"] = True
    await monitor.check_once()
    assert names == ["kafka"]
