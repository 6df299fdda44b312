"""The local endpoint's cheaper puts (uoom_orders_devstack/moto_writes.py) leave what callers
see unchanged: the same calls, made against moto as it is and with the replacements in place,
get the same replies and errors and leave the same items and stream records, for random
attribute values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.models import dynamo_type as moto_types
from moto.dynamodb.models import table as moto_table
from moto.dynamodb.responses import DynamoHandler

from tests.support.dynamodb_values import attribute_values, names, order_item
from tests.support.moto_in_process import Outcome, dynamodb_with_table, outcome, stream_records
from uoom_orders_devstack import moto_writes

TABLE = "writes-contract-order-status"
_CONDITION = "attribute_not_exists(orderId) OR version < :v"
# A record's creation time, the same in every run: its digits count in the record's SizeBytes.
_RECORDED_AT = datetime(2026, 11, 30, 12, 0, 0, 123456)


def _calls(client: Any, extra: dict[str, Any]) -> list[Outcome]:
    """Every kind of PutItem the service and its tools make, and some they never should."""

    def put(item: dict[str, Any], **kwargs: Any) -> Outcome:
        return outcome(lambda: client.put_item(TableName=TABLE, Item=item, **kwargs))

    conditional = {
        "ConditionExpression": _CONDITION,
        "ExpressionAttributeValues": {":v": {"N": "2"}},
    }
    return [
        put(order_item("o-1", 1, extra), ReturnConsumedCapacity="TOTAL"),
        put(order_item("o-1", 2, extra), ReturnValues="ALL_OLD", **conditional),
        put(
            order_item("o-1", 2, extra),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ReturnConsumedCapacity="TOTAL",
            **conditional,
        ),
        put(order_item("o-1", 2, {}), **conditional),
        put(order_item("o-2", 1, extra), ReturnValues="ALL_OLD"),
        put(order_item("o-2", 3, {}), ReturnValues="ALL_OLD", ReturnConsumedCapacity="INDEXES"),
        put(order_item("o-3", 1, extra), ReturnValues="ALL_NEW"),
        put(order_item("", 1, extra)),
        put(order_item("o-3", 1, extra), ExpressionAttributeNames={"#unused": "status"}),
        put(order_item("o-3", 1, extra), Expected={"version": {"Exists": False}}),
        # Empty sets: refused outside the keys at any depth; a key attribute is not checked.
        put(order_item("o-4", 1, {**extra, "xe": {"M": {"a": {"SS": []}}}})),
        put(order_item("o-4", 1, {**extra, "xf": {"NS": []}})),
        put({**order_item("o-4", 1, extra), "customerId": {"SS": []}}),
        outcome(
            lambda: client.update_item(
                TableName=TABLE,
                Key={"orderId": {"S": "o-3"}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": "READY"}},
            )
        ),
        outcome(lambda: client.delete_item(TableName=TABLE, Key={"orderId": {"S": "o-2"}})),
        outcome(lambda: client.scan(TableName=TABLE, ConsistentRead=True)),
    ]


def _near_the_size_limit(client: Any, extra: dict[str, Any]) -> list[Outcome]:
    """Items a few bytes either side of moto's item size limit, in one attribute or spread over
    many (each refused, if at all, at the attribute that crosses it)."""

    def put(item: dict[str, Any]) -> Outcome:
        return outcome(lambda: client.put_item(TableName=TABLE, Item=item))

    base = order_item("o-big", 1, extra)
    base_size = sum(len(k.encode()) + _size(v) for k, v in base.items())
    room = moto_writes.ITEM_SIZE_LIMIT - base_size - len(b"xfill")
    outcomes = [put({**base, "xfill": {"S": "f" * (room + delta)}}) for delta in (-1, 0, 1, 2)]
    spread = dict(base)
    for n in range(100):
        spread[f"xpart{n:02d}"] = {"S": "p" * 4_600}
        if n % 10 == 9 or 86 <= n <= 89:
            outcomes.append(put(dict(spread)))
    return outcomes


def _size(value: dict[str, Any]) -> int:
    return moto_types.DynamoType(value).size()


Calls = Callable[[Any, dict[str, Any]], list[Outcome]]


def _run(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], replaced: bool, calls: Calls = _calls
) -> tuple[list[Outcome], list[dict[str, Any]]]:
    with monkeypatch.context() as patch:
        patch.setattr(moto_table, "utcnow", lambda: _RECORDED_AT)
        patch.setattr(moto_writes, "utcnow", lambda: _RECORDED_AT)
        if replaced:
            for owner, name, replacement in moto_writes.REPLACEMENTS:
                patch.setattr(owner, name, replacement)
        with dynamodb_with_table(monkeypatch, TABLE) as client:
            outcomes = calls(client, extra)
            return outcomes, stream_records(client, TABLE)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.dictionaries(names.map(lambda n: "x" + n), attribute_values, max_size=4))
def test_puts_answer_and_record_as_moto_does(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    by_moto = _run(monkeypatch, extra, replaced=False)
    replaced = _run(monkeypatch, extra, replaced=True)
    assert replaced[0] == by_moto[0]
    assert replaced[1] == by_moto[1]


def test_the_calls_cover_successes_refusals_and_every_stream_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes, records = _run(monkeypatch, {"xa": {"S": "a"}}, replaced=True)
    kinds = [kind for kind, _ in outcomes]
    assert kinds.count("ok") >= 6
    assert kinds.count("error") >= 4
    refused = outcomes[2][1]
    assert refused["Error"]["Code"] == "ConditionalCheckFailedException"
    assert refused["Item"]["version"] == {"N": "2"}  # what ALL_OLD on failure hands back
    assert outcomes[1][1]["Attributes"]["version"] == {"N": "1"}  # ALL_OLD on success
    assert outcomes[0][1]["ConsumedCapacity"]["TableName"] == TABLE
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}
    assert all(r["dynamodb"]["SizeBytes"] > 1 for r in records)


def test_items_at_the_size_limit_are_stored_or_refused_as_moto_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = {"xa": {"M": {"b": {"L": [{"N": "1"}, {"SS": ["x", "y"]}]}}}}
    by_moto = _run(monkeypatch, extra, replaced=False, calls=_near_the_size_limit)
    replaced = _run(monkeypatch, extra, replaced=True, calls=_near_the_size_limit)
    assert replaced == by_moto
    kinds = [kind for kind, _ in replaced[0]]
    # One attribute: two sizes fit, two do not; many: up to the 87th or so, then refused.
    assert kinds[:4] == ["ok", "ok", "error", "error"]
    assert "ok" in kinds[4:]
    assert kinds[-1] == "error"
    assert "size" in str(replaced[0][-1][1]).lower()


def test_install_replaces_all_three_once() -> None:
    moto_put = getattr(DynamoHandler.put_item, "moto_put_item", DynamoHandler.put_item)
    moto_record = moto_table.StreamRecord
    moto_init = moto_types.Item.__init__
    try:
        assert moto_writes.install() is True
        assert DynamoHandler.put_item is moto_writes.put_item
        assert moto_table.StreamRecord is moto_writes.StreamRecord
        assert moto_types.Item.__init__ is moto_writes.item_init
        assert moto_writes.install() is True  # a second install changes nothing
        assert moto_writes.put_item.moto_put_item is moto_put  # type: ignore[attr-defined]
    finally:
        setattr(DynamoHandler, "put_item", moto_put)  # noqa: B010
        setattr(moto_table, "StreamRecord", moto_record)  # noqa: B010
        setattr(moto_types.Item, "__init__", moto_init)  # noqa: B010
