"""Reconciliation's writes in transactions (ReadModelWriter.replace_items) on the real local
endpoint: each item keeps its own condition, a raced item is told apart without failing the
others, and whatever a transaction cannot settle is written alone, as replace_item would."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.integration.projector_support import scan_all
from uoom_orders.dynamodb import TableNames, items
from uoom_orders.dynamodb.ports import ReadModelWriteRejected
from uoom_orders.dynamodb.writer import ReadModelWriter, Replacement


def _item(order_id: str, version: int, **extra: Any) -> items.Item:
    return {
        items.ORDER_ID: {"S": order_id},
        items.VERSION: {"N": str(version)},
        items.UPDATED_AT: {"S": f"2026-12-02T10:00:{version:02d}.000000Z"},
        "status": {"S": "PREPARING"},
        **extra,
    }


class CountingClient:
    """The real client, counting the calls each operation made."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute  # e.g. `meta`, where the writer registers its event handlers

        async def call(**request: Any) -> Any:
            self.calls[name] += 1
            return await attribute(**request)

        return call


async def test_items_into_empty_tables_go_in_transactions_of_100(
    ddb: Any, tables: TableNames
) -> None:
    client = CountingClient(ddb)
    writer = ReadModelWriter(client, tables.status.removesuffix("order-status"))
    replacements = [Replacement(tables.status, _item(f"o-{n}", 1), None) for n in range(250)]
    assert await writer.replace_items(replacements) == [True] * 250
    assert client.calls == Counter(transact_write_items=3)
    stored = await scan_all(ddb, tables.status)
    assert set(stored) == {f"o-{n}" for n in range(250)}


async def test_a_raced_item_is_reported_and_the_others_are_written(
    ddb: Any, tables: TableNames
) -> None:
    client = CountingClient(ddb)
    writer = ReadModelWriter(client, tables.status.removesuffix("order-status"))
    # Read by reconciliation: o-1 absent, o-2 at version 1; then a projection wrote both.
    read = _item("o-2", 1)
    await ddb.put_item(TableName=tables.status, Item=read)
    await ddb.put_item(TableName=tables.status, Item=_item("o-1", 5))
    projected = _item("o-2", 6)
    await ddb.put_item(TableName=tables.status, Item=projected)
    replacements = [
        Replacement(tables.status, _item("o-0", 3), None),
        Replacement(tables.status, _item("o-1", 3), None),
        Replacement(tables.status, _item("o-2", 3), items.ItemIdentity.of(read)),
        Replacement(tables.details, _item("o-2", 3), None),
        Replacement(tables.status, _item("o-3", 3), None),
    ]
    client.calls.clear()
    assert await writer.replace_items(replacements) == [True, False, False, True, True]
    # One transaction cancelled (two conditions failed), one with the other three.
    assert client.calls == Counter(transact_write_items=2)
    status = await scan_all(ddb, tables.status)
    assert {order_id: items.item_version(item) for order_id, item in status.items()} == {
        "o-0": 3,
        "o-1": 5,
        "o-2": 6,
        "o-3": 3,
    }
    assert items.item_version((await scan_all(ddb, tables.details))["o-2"]) == 3


async def test_an_item_replaced_exactly_as_read(ddb: Any, tables: TableNames) -> None:
    writer = ReadModelWriter(ddb, tables.status.removesuffix("order-status"))
    newer_than_postgres = _item("o-1", 9)
    await ddb.put_item(TableName=tables.status, Item=newer_than_postgres)
    await ddb.put_item(TableName=tables.status, Item=_item("o-2", 9))
    replacements = [
        Replacement(tables.status, _item("o-1", 4), items.ItemIdentity.of(newer_than_postgres)),
        Replacement(tables.status, _item("o-2", 4), items.ItemIdentity.of(_item("o-2", 8))),
    ]
    assert await writer.replace_items(replacements) == [True, False]
    stored = await scan_all(ddb, tables.status)
    assert (items.item_version(stored["o-1"]), items.item_version(stored["o-2"])) == (4, 9)


async def test_a_refused_item_is_refused_alone(ddb: Any, tables: TableNames) -> None:
    client = CountingClient(ddb)
    writer = ReadModelWriter(client, tables.status.removesuffix("order-status"))
    too_big = _item("o-big", 1, note={"S": "x" * 420_000})  # over DynamoDB's 400 KB
    replacements = [
        Replacement(tables.status, _item("o-1", 1), None),
        Replacement(tables.status, too_big, None),
        Replacement(tables.status, _item("o-2", 1), None),
    ]
    first, refused, last = await writer.replace_items(replacements)
    assert (first, last) == (True, True)
    assert isinstance(refused, ReadModelWriteRejected)
    # The transaction failed as a whole; each item was then written, or refused, alone.
    assert client.calls == Counter(transact_write_items=1, put_item=3)
    assert set(await scan_all(ddb, tables.status)) == {"o-1", "o-2"}
