"""ReplaceItems' handling of what a transaction answers, with a scripted client: a reason other
than a failed condition sends that item alone, an answer it cannot read sends them all alone,
and an unreachable read model raises once every write has ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.ports import ReadModelUnavailable
from uoom_orders.dynamodb.writer import ReadModelWriter, Replacement


def _replacement(order_id: str) -> Replacement:
    item: items.Item = {items.ORDER_ID: {"S": order_id}, items.VERSION: {"N": "1"}}
    return Replacement("t", item, None)


def _cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class ScriptedClient:
    """Answers each TransactWriteItems with the next of `transactions` (an exception is
    raised, anything else returned) and each PutItem with `put`."""

    def __init__(self, transactions: list[Any], put: Callable[[], Any] = dict) -> None:
        self._transactions = transactions
        self._put = put
        self.sent: list[list[str]] = []
        self.put_alone: list[str] = []
        self.meta = _Meta()

    async def transact_write_items(self, **request: Any) -> Any:
        self.sent.append([a["Put"]["Item"][items.ORDER_ID]["S"] for a in request["TransactItems"]])
        answer = self._transactions.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def put_item(self, **request: Any) -> Any:
        self.put_alone.append(request["Item"][items.ORDER_ID]["S"])
        return self._put()


class _Meta:
    class events:
        @staticmethod
        def register(*_: Any, **__: Any) -> None:
            pass


def _writer(client: ScriptedClient) -> ReadModelWriter:
    return ReadModelWriter(
        client, "p-", attempts=2, backoff_seconds=0.001, max_backoff_seconds=0.001
    )


async def test_a_conflict_is_written_alone_and_the_rest_sent_again() -> None:
    client = ScriptedClient([_cancelled("None", "TransactionConflict", "None"), {}])
    replacements = [_replacement(f"o-{n}") for n in range(3)]
    assert await _writer(client).replace_items(replacements) == [True, True, True]
    assert client.sent == [["o-0", "o-1", "o-2"], ["o-0", "o-2"]]
    assert client.put_alone == ["o-1"]


async def test_an_answer_without_a_reason_per_item_sends_each_alone() -> None:
    client = ScriptedClient([_cancelled("None")])
    replacements = [_replacement(f"o-{n}") for n in range(3)]
    assert await _writer(client).replace_items(replacements) == [True, True, True]
    assert sorted(client.put_alone) == ["o-0", "o-1", "o-2"]


async def test_the_last_item_left_is_not_a_transaction_of_one() -> None:
    client = ScriptedClient([_cancelled("ConditionalCheckFailed", "None")])
    replacements = [_replacement("o-0"), _replacement("o-1")]
    assert await _writer(client).replace_items(replacements) == [False, True]
    assert client.sent == [["o-0", "o-1"]]
    assert client.put_alone == ["o-1"]


async def test_an_unreachable_read_model_raises_once_every_write_ended() -> None:
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    def put() -> Any:
        raise unreachable

    client = ScriptedClient([unreachable], put=put)
    replacements = [_replacement(f"o-{n}") for n in range(3)]
    with pytest.raises(ReadModelUnavailable):
        await _writer(client).replace_items(replacements)
    # Each item was tried alone, each as often as the writer's attempts allow.
    assert sorted(client.put_alone) == ["o-0", "o-0", "o-1", "o-1", "o-2", "o-2"]
