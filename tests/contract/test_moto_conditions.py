"""The local endpoint's kept condition parses (uoom_orders_devstack/moto_conditions.py) decide
every conditional write as a fresh parse would, and moto's checks of the names and values a
request declares still see what the expression uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.comparisons import ConditionExpressionParser

from tests.support.moto_in_process import dynamodb_with_table
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders_devstack import moto_conditions

TABLE = "contract-order-status"


@pytest.fixture
def memo_and_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    moto_parse = ConditionExpressionParser.parse
    original = getattr(moto_parse, "moto_parse", moto_parse)
    monkeypatch.setattr(ConditionExpressionParser, "parse", original)
    memo = moto_conditions.install(moto_conditions.ParseMemo(max_entries=8))
    assert memo is not None
    with dynamodb_with_table(monkeypatch, TABLE) as client:
        yield memo, client


def _put(client: Any, order_id: str, version: int, ttl: int, now: int) -> bool:
    """The service's conditional write; True when it was applied."""
    try:
        client.put_item(
            TableName=TABLE,
            Item={
                "orderId": {"S": order_id},
                "version": {"N": str(version)},
                "ttl": {"N": str(ttl)},
            },
            ConditionExpression=ReadModelWriter._CONDITION,
            ExpressionAttributeNames=ReadModelWriter._NAMES,
            ExpressionAttributeValues={":v": {"N": str(version)}, ":now": {"N": str(now)}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


_writes = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=12
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=_writes)
def test_conditional_writes_are_decided_as_with_fresh_parses(
    memo_and_client: tuple[Any, Any], writes: list[tuple[int, int, int]]
) -> None:
    memo, client = memo_and_client
    order_id = f"order-{len(writes)}-{writes[0]}"
    client.delete_item(TableName=TABLE, Key={"orderId": {"S": order_id}})
    stored: tuple[int, int] | None = None
    for version, ttl, now in writes:
        expected = (
            stored is None or stored[0] < version or (stored[0] == version and stored[1] < now)
        )
        assert _put(client, order_id, version, ttl, now) is expected, (stored, version, ttl, now)
        if expected:
            stored = (version, ttl)
    assert memo.hits + memo.misses >= 2 * len(writes)  # moto parses each condition twice


def test_a_kept_parse_still_reports_what_the_expression_uses(
    memo_and_client: tuple[Any, Any],
) -> None:
    memo, client = memo_and_client
    for _ in range(2):  # the second time, from the memo
        with pytest.raises(client.exceptions.ClientError) as unused:
            client.put_item(
                TableName=TABLE,
                Item={"orderId": {"S": "o"}, "version": {"N": "1"}},
                ConditionExpression="attribute_not_exists(orderId)",
                ExpressionAttributeNames={"#unused": "ttl"},
            )
        assert "unused" in str(unused.value).lower()
    assert memo.hits > 0
    assert _put(client, "o", 1, 0, 0) is True
    assert _put(client, "o", 1, 0, 0) is False


def test_the_memo_is_bounded() -> None:
    memo = moto_conditions.ParseMemo(max_entries=3)
    moto_parse = getattr(
        ConditionExpressionParser.parse, "moto_parse", ConditionExpressionParser.parse
    )
    for n in range(10):
        parser = ConditionExpressionParser("version < :v", {}, {":v": {"N": str(n)}})
        memo.parse(parser, moto_parse)
    assert len(memo._parses) == 3
    assert memo.misses == 10
