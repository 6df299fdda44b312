"""Writes orders into the DynamoDB read model: both tables, newest version wins.

Shared by the projector, the rebuild command and the read path's write-back, so all three obey
the same condition and none can put an older version over a newer one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

import aioboto3
import aiohttp
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb import capacity, items
from uoom_orders.dynamodb.client import THROTTLE_CODES, count_throttles, dynamodb_client
from uoom_orders.dynamodb.ports import (
    PutResult,
    ReadModelThrottled,
    ReadModelUnavailable,
    ReadModelWriteRejected,
)
from uoom_orders.dynamodb.tables import TableNames
from uoom_orders.runtime.retry import retried

# Errors about the request itself: the same item would fail again.
REJECTED_CODES = frozenset(
    {"ValidationException", "SerializationException", "ItemCollectionSizeLimitExceededException"}
)
# What DynamoDB answers when it cancelled a transaction; its CancellationReasons say why.
TRANSACTION_CANCELLED = "TransactionCanceledException"
# Every other failure (throttling, 5xx, connection errors, timeouts, a missing table, bad
# credentials) is about the read model, not the order: retried, then ReadModelUnavailable.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
)


def error_code(error: ClientError) -> str:
    """The DynamoDB error code of a ClientError, e.g. "ConditionalCheckFailedException"."""
    return str(error.response.get("Error", {}).get("Code", ""))


TRANSACTION_ACTIONS = 100
"""DynamoDB's limit of actions in one TransactWriteItems."""
TRANSACTION_BYTES = 4_000_000
"""What the items of one transaction may add up to (DynamoDB's limit: 4 MB), measured as their
JSON, which is larger than DynamoDB's own count of an item's size."""


@dataclass(frozen=True, slots=True)
class Replacement:
    """One item to put over exactly the item reconciliation read (`expected`; None: none)."""

    table: str
    item: items.Item
    expected: items.ItemIdentity | None


ReplaceOutcome = bool | ReadModelWriteRejected
"""True: written; False: the item changed since it was read (raced); or the item refused."""


class ReadModelWriter:
    """PutItem into both tables under `attribute_not_exists(orderId) OR version < :v`.

    The condition also lets the same version replace an item whose `ttl` has passed: DynamoDB
    deletes expired items up to two days late and readers ignore them meanwhile, so without
    it a write-back could not revive an expired order until the deletion happened.

    `client` is an aioboto3 low-level DynamoDB client; its botocore retry config (see
    `client.dynamodb_config`) retries each call first, then this writer retries the call up to
    `attempts` times by the service's retry policy before giving up. Use `open` for a writer
    that owns its client; close it with `aclose` or `async with`.
    """

    _CONDITION = (
        f"attribute_not_exists({items.ORDER_ID}) OR {items.VERSION} < :v"
        f" OR ({items.VERSION} = :v AND #ttl < :now)"
    )
    # TTL is a DynamoDB reserved word.
    _NAMES: ClassVar[dict[str, str]] = {"#ttl": items.TTL}

    def __init__(
        self,
        client: Any,
        table_prefix: str,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.05,
        max_backoff_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._client = client
        self.tables = TableNames.for_prefix(table_prefix)
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._clock = clock
        self._owned: AsyncExitStack | None = None
        count_throttles(client)

    @classmethod
    async def open(
        cls,
        *,
        region: str,
        table_prefix: str,
        endpoint: str | None = None,
        max_retries: int = 3,
        timeout_ms: int = 5000,
        session: aioboto3.Session | None = None,
        attempts: int = 3,
    ) -> ReadModelWriter:
        """A writer with its own client (closed by `aclose`)."""
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            dynamodb_client(
                region=region,
                endpoint=endpoint,
                max_retries=max_retries,
                timeout_ms=timeout_ms,
                session=session,
            )
        )
        writer = cls(client, table_prefix, attempts=attempts)
        writer._owned = stack
        return writer

    @property
    def client(self) -> Any:
        """The DynamoDB client writes go through."""
        return self._client

    async def aclose(self) -> None:
        """Closes the client if this writer opened it; safe to call twice."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()

    async def __aenter__(self) -> ReadModelWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def put_order(self, order: order_pb2.Order, ttl_epoch: int) -> PutResult:
        """Writes both tables concurrently; see `ProjectionWriter.put_order`."""
        status = items.status_item(order, ttl_epoch)
        details = items.details_item(order, ttl_epoch)
        values = {":v": {"N": str(order.version)}, ":now": {"N": str(int(self._clock()))}}
        outcomes = await asyncio.gather(
            self._put(self.tables.status, status, values),
            self._put(self.tables.details, details, values),
            return_exceptions=True,
        )
        status_written, details_written = outcomes
        if isinstance(status_written, bool) and isinstance(details_written, bool):
            return PutResult(order.order_id, order.version, status_written, details_written)
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for error in errors:
            if not isinstance(error, Exception):  # cancellation and the like pass through
                raise error
        # One table unreachable and the other refusing the item: retry later rather than
        # dead-letter an event that may well apply once the read model is back.
        # A table out of reach says more than one throttling: it is reported first.
        unavailable = sorted(
            (error for error in errors if isinstance(error, ReadModelUnavailable)),
            key=lambda error: isinstance(error, ReadModelThrottled),
        )
        raise (unavailable or errors)[0]

    async def put_status(self, summary: order_pb2.OrderSummary, ttl_epoch: int) -> bool:
        """Writes the order-status item alone; see `ProjectionWriter.put_status`."""
        values = {":v": {"N": str(summary.version)}, ":now": {"N": str(int(self._clock()))}}
        return await self._put(self.tables.status, items.status_item(summary, ttl_epoch), values)

    async def replace_item(
        self, table: str, item: items.Item, expected: items.ItemIdentity | None
    ) -> bool:
        """Puts `item` over exactly the item reconciliation read (`expected`; None: there was
        none), whatever the versions; False when it changed meanwhile (a projection raced)."""
        return await self._call("PutItem", table, **_replacing(Replacement(table, item, expected)))

    async def replace_items(
        self, replacements: Sequence[Replacement], in_flight: asyncio.Semaphore | None = None
    ) -> list[ReplaceOutcome]:
        """`replace_item` for each, in transactions of up to 100 items (TransactWriteItems):
        what one request per item costs (signing, a round trip, the endpoint's handling of a
        call) is paid once per transaction, and each item keeps its own condition. The
        outcomes are in the order given; raises ReadModelUnavailable as `replace_item` does.

        A transaction is all or nothing: when DynamoDB cancels it, its reasons say which items'
        conditions failed (those raced: False), and the others are sent again without them.
        An item cancelled for another reason (a conflict with another write, throttling, a
        refused item), and every item of a transaction that failed as a whole, is written
        alone, as `replace_item` writes it. A transactional write consumes twice the write
        units of a PutItem: reconciliation repairs are rare, and a rebuild writes each order
        once. `in_flight`, when given, is held by each request (a transaction or a write
        alone) while it is made.
        """
        slot = in_flight or nullcontext()

        async def alone_write(replacement: Replacement) -> bool:
            async with slot:
                return await self.replace_item(
                    replacement.table, replacement.item, replacement.expected
                )

        outcomes: dict[int, ReplaceOutcome] = {}
        for chunk in transaction_runs(replacements):
            alone = await self._transact(replacements, chunk, outcomes, slot)
            if alone:
                # Every write ends before a failure is raised: none is left running.
                written = await asyncio.gather(
                    *(alone_write(replacements[i]) for i in alone), return_exceptions=True
                )
                for index, outcome in zip(alone, written, strict=True):
                    if isinstance(outcome, BaseException) and not isinstance(
                        outcome, ReadModelWriteRejected
                    ):
                        raise outcome
                    outcomes[index] = outcome
        return [outcomes[index] for index in range(len(replacements))]

    async def _transact(
        self,
        replacements: Sequence[Replacement],
        chunk: list[int],
        outcomes: dict[int, ReplaceOutcome],
        slot: AbstractAsyncContextManager[Any],
    ) -> list[int]:
        """Writes `chunk` (indexes into `replacements`) in transactions until each item is
        written or raced (its outcome set); returns those left to write alone."""
        pending: list[int] = chunk
        alone: list[int] = []
        while len(pending) > 1:
            actions = [{"Put": _replacing(replacements[i])} for i in pending]
            try:
                async with slot:
                    # botocore gives each a ClientRequestToken: a retry of one that committed
                    # succeeds without writing again.
                    reply = await self._client.transact_write_items(
                        TransactItems=actions, **capacity.RETURN_TOTAL
                    )
            except ClientError as error:
                reasons = error.response.get("CancellationReasons")
                if error_code(error) != TRANSACTION_CANCELLED or len(reasons or ()) != len(pending):
                    return alone + pending
                again = []
                for index, reason in zip(pending, reasons, strict=True):
                    code = reason.get("Code") if isinstance(reason, dict) else None
                    if code == "None":
                        again.append(index)  # fine, but cancelled with the others
                    elif code == "ConditionalCheckFailed":
                        capacity.count_condition_failed(
                            "TransactWriteItems", replacements[index].table
                        )
                        outcomes[index] = False
                    else:
                        alone.append(index)
                pending = again
                continue
            except _TRANSPORT_ERRORS:
                return alone + pending  # written or not, each alone finds out
            capacity.count_consumed("TransactWriteItems", reply)
            for index in pending:
                outcomes[index] = True
            return alone
        return alone + pending

    async def delete_item(self, table: str, order_id: str, expected: items.ItemIdentity) -> bool:
        """Deletes exactly the item reconciliation read; False when it changed meanwhile."""
        condition, names, values = _exactly(expected)
        return await self._call(
            "DeleteItem",
            table,
            TableName=table,
            Key=items.item_key(order_id),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    async def _put(self, table: str, item: items.Item, values: items.Item) -> bool:
        return await self._call(
            "PutItem",
            table,
            TableName=table,
            Item=item,
            ConditionExpression=self._CONDITION,
            ExpressionAttributeNames=self._NAMES,
            ExpressionAttributeValues=values,
        )

    async def _call(self, operation: str, table: str, **request: Any) -> bool:
        """One conditional write (`operation`: PutItem or DeleteItem) with the writer's
        retries: True when written, False when the condition failed; raises
        ReadModelWriteRejected or ReadModelUnavailable. What it consumed is counted."""
        call = self._client.put_item if operation == "PutItem" else self._client.delete_item
        try:
            return await retried(
                lambda: _write_once(call, operation, table, request),
                self._backoff_seconds,
                self._max_backoff_seconds,
                retry_if=_transient,
                attempts=self._attempts,
            )
        except _Transient as error:
            failure = error.__cause__
            throttled = isinstance(failure, ClientError) and error_code(failure) in THROTTLE_CODES
            unavailable = ReadModelThrottled if throttled else ReadModelUnavailable
            raise unavailable(
                f"{table}: no write after {self._attempts} attempts: {failure!r}"
            ) from failure


class _Transient(Exception):
    """A failure about the read model, not the item: worth another attempt."""


def _transient(error: BaseException) -> bool:
    return isinstance(error, _Transient)


async def _write_once(call: Any, operation: str, table: str, request: dict[str, Any]) -> bool:
    try:
        capacity.count_consumed(operation, await call(**request, **capacity.RETURN_TOTAL))
        return True
    except ClientError as error:
        code = error_code(error)
        if code == "ConditionalCheckFailedException":
            capacity.count_condition_failed(operation, table)
            return False  # the item is not (any longer) what the condition expects
        if code in REJECTED_CODES:
            raise ReadModelWriteRejected(f"{table}: {code}: {error}") from error
        raise _Transient from error
    except ParamValidationError as error:
        # botocore refused the request before sending it: the item is malformed.
        raise ReadModelWriteRejected(f"{table}: {error}") from error
    except _TRANSPORT_ERRORS as error:
        raise _Transient from error


def _exactly(
    expected: items.ItemIdentity | None,
) -> tuple[str, dict[str, str], items.Item]:
    """A condition that holds only for the item `expected` describes (None: no item)."""
    if expected is None:
        return "attribute_not_exists(#id)", {"#id": items.ORDER_ID}, {}
    return (
        "#v = :expected_version AND #u = :expected_updated_at",
        {"#v": items.VERSION, "#u": items.UPDATED_AT},
        {
            ":expected_version": {"N": str(expected.version)},
            ":expected_updated_at": {"S": expected.updated_at},
        },
    )


def _replacing(replacement: Replacement) -> dict[str, Any]:
    """The put of a repair, as a PutItem's parameters or a transaction's Put action."""
    condition, names, values = _exactly(replacement.expected)
    put: dict[str, Any] = {
        "TableName": replacement.table,
        "Item": replacement.item,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
    }
    if values:
        put["ExpressionAttributeValues"] = values
    return put


def transaction_runs(replacements: Sequence[Replacement]) -> list[list[int]]:
    """The replacements' indexes in runs that fit one transaction each (count and size)."""
    runs: list[list[int]] = []
    run: list[int] = []
    size = 0
    for index, replacement in enumerate(replacements):
        item_size = len(json.dumps(replacement.item, separators=(",", ":")))
        if run and (len(run) == TRANSACTION_ACTIONS or size + item_size > TRANSACTION_BYTES):
            runs.append(run)
            run, size = [], 0
        run.append(index)
        size += item_size
    if run:
        runs.append(run)
    return runs
