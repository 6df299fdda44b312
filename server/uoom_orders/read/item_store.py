"""The read model as a read tier, over DynamoDB's low-level API — spoken by both the aioboto3
DynamoDB client and (through `dax_client.AsyncDaxClient`) amazon-dax-client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb import capacity, items, times
from uoom_orders.dynamodb.tables import CUSTOMER_INDEX, RESTAURANT_INDEX, TableNames
from uoom_orders.read.ports import ListQuery, ListScope

BATCH_GET_LIMIT = 100  # DynamoDB's maximum keys per BatchGetItem
_UNPROCESSED_ATTEMPTS = 5
_OWNER = {
    ListScope.CUSTOMER: (CUSTOMER_INDEX, items.CUSTOMER_ID),
    ListScope.RESTAURANT: (RESTAURANT_INDEX, items.RESTAURANT_ID),
}


class ItemClient(Protocol):
    """The subset of DynamoDB's low-level client the read tier uses."""

    async def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def batch_get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def query(self, **kwargs: Any) -> dict[str, Any]: ...


class ItemReadStore:
    """Eventually consistent reads of the two tables; expired items count as absent."""

    def __init__(
        self,
        client: ItemClient,
        tables: TableNames,
        *,
        name: str,
        clock: Callable[[], float] = time.time,
        unprocessed_retry_seconds: float = 0.1,
        count_capacity: bool = False,
    ) -> None:
        """`unprocessed_retry_seconds`: how long a batch keeps asking again for UnprocessedKeys
        before it leaves them to the next tier. Keep it well inside the tier's timeout: a
        timeout throws away what the batch did find and counts as a failure of the tier.
        `count_capacity`: ask DynamoDB what each read consumed and count it (the DynamoDB tier;
        not DAX, whose cache hits consume no table capacity)."""
        self.name = name
        self._client = client
        self._tables = tables
        self._clock = clock
        self._unprocessed_retry_seconds = unprocessed_retry_seconds
        self._capacity: Mapping[str, str] = capacity.RETURN_TOTAL if count_capacity else {}

    def _counted(self, operation: str, reply: dict[str, Any]) -> dict[str, Any]:
        if self._capacity:
            capacity.count_consumed(operation, reply)
        return reply

    def _live(self, item: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if item is None or items.is_expired(item, self._clock()):
            return None
        return item

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        reply = await self._client.get_item(
            TableName=self._tables.status, Key=items.item_key(str(order_id)), **self._capacity
        )
        item = self._live(self._counted("GetItem", reply).get("Item"))
        return None if item is None else items.summary_from_item(item)

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        reply = await self._client.get_item(
            TableName=self._tables.details, Key=items.item_key(str(order_id)), **self._capacity
        )
        item = self._live(self._counted("GetItem", reply).get("Item"))
        return None if item is None else items.order_from_item(item)

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        """BatchGetItem in chunks of 100, retrying UnprocessedKeys with backoff for at most
        `unprocessed_retry_seconds`. Keys still unprocessed after that are left out: the next
        tier answers them."""
        chunks = [
            order_ids[i : i + BATCH_GET_LIMIT] for i in range(0, len(order_ids), BATCH_GET_LIMIT)
        ]
        found: dict[int, order_pb2.OrderSummary] = {}
        for result in await asyncio.gather(*(self._batch(chunk) for chunk in chunks)):
            found.update(result)
        return found

    async def _batch(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        table = self._tables.status
        request: dict[str, Any] = {
            table: {"Keys": [items.item_key(str(i)) for i in dict.fromkeys(order_ids)]}
        }
        found: dict[int, order_pb2.OrderSummary] = {}
        give_up_at = time.monotonic() + self._unprocessed_retry_seconds
        for attempt in range(_UNPROCESSED_ATTEMPTS):
            reply = self._counted(
                "BatchGetItem",
                await self._client.batch_get_item(RequestItems=request, **self._capacity),
            )
            for raw in reply.get("Responses", {}).get(table, []):
                item = self._live(raw)
                if item is not None:
                    summary = items.summary_from_item(item)
                    found[UUID(summary.order_id).int] = summary
            request = reply.get("UnprocessedKeys") or {}
            if not request:
                break
            backoff = 0.01 * 2**attempt
            # Past the budget, answer what was found rather than run into the tier's timeout,
            # which would discard it all and count against the tier's breaker.
            if time.monotonic() + backoff >= give_up_at:
                break
            await asyncio.sleep(backoff)
        return found

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        """A GSI query, newest first by (updatedAt, orderId) like PostgreSQL, walking DynamoDB
        pages until `query.limit` orders pass the filters (status, not expired) or the index
        ends.

        A GSI sorts by its range key alone: the order of items with the same `updatedAt` is
        unspecified, and an ExclusiveStartKey resumes in that order. So the page cursor is not
        a start key but a key condition (`updatedAt <=` the cursor's) with the cursor's ties at
        or above its order id skipped here; the query reads on to the end of the tie group at
        the page's edge and sorts ties by order id itself. Pages then join up exactly with
        PostgreSQL's, whichever tier serves the next one. The price: a page that starts inside
        a group of tied orders reads that group again from its start (ties are rare: the
        same microsecond for one customer or restaurant).
        """
        index, owner_attribute = _OWNER[query.scope]
        names = {"#owner": owner_attribute, "#ttl": items.TTL}
        values: dict[str, Any] = {
            ":owner": {"S": str(query.owner_id)},
            ":now": {"N": str(int(self._clock()))},
        }
        key_condition = "#owner = :owner"
        after = query.after
        after_key: tuple[str, str] | None = None
        if after is not None:
            after_key = (times.format_datetime(after.updated_at), str(after.order_id))
            names["#updated"] = items.UPDATED_AT
            values[":after"] = {"S": after_key[0]}
            key_condition += " AND #updated <= :after"
        filters = ["(attribute_not_exists(#ttl) OR #ttl >= :now)"]
        if query.status is not None:
            names["#status"] = items.STATUS
            values[":status"] = {"S": query.status.value}
            filters.append("#status = :status")
        request: dict[str, Any] = {
            "TableName": self._tables.status,
            "IndexName": index,
            "KeyConditionExpression": key_condition,
            "FilterExpression": " AND ".join(filters),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        # (updatedAt, orderId, item): fixed-width UTC times and canonical lower-case UUIDs
        # compare as strings the way PostgreSQL compares the timestamps and the UUIDs.
        found: list[tuple[str, str, items.Item]] = []
        edge: str | None = None  # updatedAt of the limit-th order in the index's order
        while True:
            request["Limit"] = max(query.limit - len(found), 1) if edge is None else query.limit
            reply = self._counted("Query", await self._client.query(**request, **self._capacity))
            for item in reply.get("Items", []):
                key = (item[items.UPDATED_AT]["S"], item[items.ORDER_ID]["S"])
                if after_key is not None and key >= after_key:
                    continue  # the cursor's own order, or a tie of it already listed
                found.append((*key, item))
            if edge is None and len(found) >= query.limit:
                edge = found[query.limit - 1][0]
            last = reply.get("LastEvaluatedKey")
            # Done at the index's end, or once past every tie of the edge's updatedAt.
            if not last or (edge is not None and last[items.UPDATED_AT]["S"] < edge):
                break
            request["ExclusiveStartKey"] = last
        found.sort(key=lambda row: (row[0], row[1]), reverse=True)
        return [items.summary_from_item(item) for _, _, item in found[: query.limit]]
