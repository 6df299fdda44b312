"""Read queries: validated requests in, read-model messages out, with the tier that served."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.application.ports import OrderReads, PageTokens
from uoom_orders.domain.errors import (
    FieldViolation,
    InvalidInput,
    OrderNotFound,
    VersionNotReached,
)
from uoom_orders.read.ports import ListQuery, PageCursor


@dataclass(frozen=True, slots=True)
class BatchResult:
    orders: list[order_pb2.OrderSummary]
    missing: list[UUID]
    served_by: str


@dataclass(frozen=True, slots=True)
class Page:
    orders: list[order_pb2.OrderSummary]
    next_page_token: str
    served_by: str


def _check_found(order_id: UUID, version: int | None, min_version: int) -> None:
    if version is None:
        raise OrderNotFound(
            f"order {order_id} does not exist", metadata={"order_id": str(order_id)}
        )
    if version < min_version:
        raise VersionNotReached(
            f"order {order_id} is at version {version}, below min_version {min_version}",
            metadata={"order_id": str(order_id), "current_version": str(version)},
        )


class OrderQueries:
    """Answers the read RPCs through the read path; each answer names the tier that served."""

    def __init__(self, reads: OrderReads, page_tokens: PageTokens) -> None:
        self._reads = reads
        self._tokens = page_tokens

    async def get_status(
        self, order_id: UUID, min_version: int = 0
    ) -> tuple[order_pb2.OrderSummary, str]:
        summary, tier = await self._reads.get_summary(order_id, min_version)
        _check_found(order_id, None if summary is None else summary.version, min_version)
        assert summary is not None
        return summary, tier

    async def get_details(
        self, order_id: UUID, min_version: int = 0
    ) -> tuple[order_pb2.Order, str]:
        order, tier = await self._reads.get_order(order_id, min_version)
        _check_found(order_id, None if order is None else order.version, min_version)
        assert order is not None
        return order, tier

    async def batch_get_status(self, order_ids: Sequence[UUID]) -> BatchResult:
        """Found orders and missing ids, each in order of first appearance, each once."""
        # Keyed by the ids' integers, as the read path answers: a UUID's hash is Python code.
        by_key = {i.int: i for i in order_ids}
        found, tiers = await self._reads.get_summaries(list(by_key.values()))
        keys = list(by_key)
        missing: list[UUID] = []
        if len(found) < len(keys):
            missing = [by_key[k] for k in keys if k not in found]
            keys = [k for k in keys if k in found]
        return BatchResult(
            orders=[found[k] for k in keys],
            missing=missing,
            served_by=",".join(tiers),
        )

    async def list_orders(self, query: ListQuery, page_token: str) -> Page:
        """One page, newest first; `query.after` is taken from `page_token`."""
        if page_token:
            try:
                query = replace(query, after=self._tokens.decode(query, page_token))
            except ValueError as error:  # read.page_token.InvalidPageToken
                raise InvalidInput(
                    f"invalid page_token: {error}",
                    violations=(FieldViolation("page_token", str(error)),),
                ) from error
        # One more than asked tells whether another page exists, so the last page is never empty.
        rows, tier = await self._reads.list_summaries(replace(query, limit=query.limit + 1))
        page, more = rows[: query.limit], len(rows) > query.limit
        token = ""
        if more:
            last = page[-1]
            token = self._tokens.encode(
                query,
                PageCursor(last.updated_at.ToDatetime(tzinfo=UTC), UUID(last.order_id)),
            )
        return Page(orders=page, next_page_token=token, served_by=tier)
