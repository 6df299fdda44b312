"""The local endpoint's TransactWriteItems (uoom_orders_devstack/moto_transactions.py) leaves
what callers see unchanged: the same calls, made against moto as it is and with the
replacement in place, get the same replies and errors and leave the same items and stream
records, whether a transaction commits, is cancelled after some of its writes, or is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as moto_table

from tests.support.dynamodb_values import attribute_values, names, order_item
from tests.support.moto_in_process import Outcome, dynamodb_with_table, outcome, stream_records
from uoom_orders_devstack import moto_transactions

TABLE = "transactions-contract-order-status"
_RECORDED_AT = datetime(2026, 11, 30, 12, 0, 0, 123456)
_NEWER = "attribute_not_exists(orderId) OR version < :v"


def _put(item: dict[str, Any], condition: str | None = None, **extra: Any) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": TABLE, "Item": item, **extra}
    if condition is not None:
        put["ConditionExpression"] = condition
        put["ExpressionAttributeValues"] = {":v": {"N": item["version"]["N"]}}
    return {"Put": put}


def _key(order_id: str) -> dict[str, Any]:
    return {"orderId": {"S": order_id}}


def _set_status(order_id: str, status: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": _key(order_id),
            "UpdateExpression": "SET #s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status}},
        }
    }


def _calls(client: Any, extra: dict[str, Any]) -> list[Outcome]:
    """Transactions that commit, that are cancelled part-way (their earlier writes undone) and
    that are refused, then single writes after them."""

    def transact(*actions: dict[str, Any]) -> Outcome:
        return outcome(lambda: client.transact_write_items(TransactItems=list(actions)))

    status_is = {
        "ConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "PREPARING"}},
    }
    return [
        transact(*(_put(order_item(f"o-{n}", 1, extra), _NEWER) for n in range(5))),
        # The third put's condition fails: the first two are undone, the reasons say which.
        transact(
            _put(order_item("o-0", 2, extra), _NEWER),
            _put(order_item("o-9", 1, extra), _NEWER),
            _put(order_item("o-1", 1, {}), _NEWER, ReturnValuesOnConditionCheckFailure="ALL_OLD"),
            _put(order_item("o-2", 2, {}), _NEWER),
        ),
        # An update, a delete and a check that hold, then a put whose condition fails.
        transact(
            _set_status("o-3", "READY"),
            {"Delete": {"TableName": TABLE, "Key": _key("o-4")}},
            {"ConditionCheck": {"TableName": TABLE, "Key": _key("o-2"), **status_is}},
            _set_status("o-new", "NEW"),
            _put(order_item("o-0", 1, extra), _NEWER),
        ),
        # The same, all holding: committed.
        transact(
            _set_status("o-3", "READY"),
            {"Delete": {"TableName": TABLE, "Key": _key("o-4")}},
            {"ConditionCheck": {"TableName": TABLE, "Key": _key("o-2"), **status_is}},
            _put(order_item("o-0", 3, extra), _NEWER),
        ),
        # Refused: one item twice; an item without its key after a put (cancelled, the put
        # undone); too many actions.
        transact(_put(order_item("o-5", 1, extra)), _put(order_item("o-5", 2, extra))),
        transact(
            _put(order_item("o-6", 1, extra)),
            {"Put": {"TableName": TABLE, "Item": {"status": {"S": "NO-KEY"}}}},
        ),
        transact(*(_put(order_item(f"o-many-{n}", 1)) for n in range(101))),
        outcome(lambda: client.put_item(TableName=TABLE, Item=order_item("o-7", 1, extra))),
        outcome(lambda: client.delete_item(TableName=TABLE, Key=_key("o-1"))),
        outcome(lambda: client.scan(TableName=TABLE, ConsistentRead=True)),
    ]


def _run(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], replaced: bool
) -> tuple[list[Outcome], list[dict[str, Any]]]:
    with monkeypatch.context() as patch:
        patch.setattr(moto_table, "utcnow", lambda: _RECORDED_AT)
        if replaced:
            for owner, name, replacement in moto_transactions.replacements():
                patch.setattr(owner, name, replacement)
        with dynamodb_with_table(monkeypatch, TABLE) as client:
            outcomes = _calls(client, extra)
            return outcomes, stream_records(client, TABLE)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.dictionaries(names.map(lambda n: "x" + n), attribute_values, max_size=3))
def test_transactions_answer_store_and_record_as_moto_does(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    by_moto = _run(monkeypatch, extra, replaced=False)
    replaced = _run(monkeypatch, extra, replaced=True)
    assert replaced[0] == by_moto[0]
    assert replaced[1] == by_moto[1]


def test_the_calls_cover_commits_cancellations_and_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes, records = _run(monkeypatch, {"xa": {"S": "a"}}, replaced=True)
    kinds = [kind for kind, _ in outcomes]
    assert kinds[:4] == ["ok", "error", "error", "ok"]
    cancelled = outcomes[1][1]
    assert cancelled["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in cancelled["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed", "None"]
    assert cancelled["CancellationReasons"][2]["Item"]["version"] == {"N": "1"}
    codes = [o[1]["Error"]["Code"] for o in outcomes[4:7]]
    # moto cancels the item without its key (a KeyError as its reason), after the put before it.
    assert codes == ["ValidationException", "TransactionCanceledException", "ValidationException"]
    assert "o-6" not in {item["orderId"]["S"] for item in outcomes[-1][1]["Items"]}
    stored = {item["orderId"]["S"]: item for item in outcomes[-1][1]["Items"]}
    # Nothing of the cancelled transactions: o-9 and o-new never written, o-0 at version 3
    # from the last one that committed, o-3 READY from it, o-4 deleted by it.
    assert not {"o-9", "o-new", "o-4"} & set(stored)
    assert stored["o-0"]["version"] == {"N": "3"}
    assert stored["o-3"]["status"] == {"S": "READY"}
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}


def test_a_cancelled_transaction_leaves_no_stream_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as patch:
        for owner, name, replacement in moto_transactions.replacements():
            patch.setattr(owner, name, replacement)
        with dynamodb_with_table(monkeypatch, TABLE) as client:
            client.put_item(TableName=TABLE, Item=order_item("o-1", 2))
            before = stream_records(client, TABLE)
            with pytest.raises(ClientError, match="TransactionCanceled"):
                client.transact_write_items(
                    TransactItems=[
                        _put(order_item("o-2", 1), _NEWER),
                        _put(order_item("o-1", 1), _NEWER),
                    ]
                )
            assert stream_records(client, TABLE) == before
            assert "Item" not in client.get_item(TableName=TABLE, Key=_key("o-2"))


def test_install_replaces_each_once() -> None:
    originals = {name: getattr(owner, name) for owner, name, _ in moto_transactions.replacements()}
    owner = DynamoDBBackend
    try:
        assert moto_transactions.install() is True
        assert owner.transact_write_items is moto_transactions.transact_write_items
        serialised = {name: getattr(owner, name) for name in moto_transactions.SERIALISED_WRITES}
        assert all(
            getattr(write, "moto_write", None) is originals[name]
            for name, write in serialised.items()
        )
        assert moto_transactions.install() is True  # a second install changes nothing
        assert all(getattr(owner, n) is w for n, w in serialised.items())
    finally:
        for name, original in originals.items():
            setattr(owner, name, original)
