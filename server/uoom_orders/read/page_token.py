"""AIP-158 page tokens: opaque to clients, authenticated so they cannot be forged.

A token holds the last order of a page as (updated_at, order_id), which every tier can
continue from, and the query it belongs to, so it cannot be replayed against another one. The
same codec makes the restaurant board's resume tokens (purpose "board"): a time and an order,
bound to the board's query, never accepted as a page token nor the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from uuid import UUID

from uoom_orders.read.ports import ListQuery, PageCursor

_MAC_BYTES = 16


class InvalidPageToken(ValueError):
    """The token was not made by this service for this query."""


class PageTokenCodec:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("page token key must be at least 16 bytes")
        self._key = key

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    @staticmethod
    def _binding(query: ListQuery, purpose: str) -> str:
        binding = f"{query.scope.value}:{query.owner_id}:{query.status or ''}"
        return binding if purpose == "page" else f"{purpose}|{binding}"

    def encode(self, query: ListQuery, cursor: PageCursor, *, purpose: str = "page") -> str:
        body = json.dumps(
            [self._binding(query, purpose), cursor.updated_at.isoformat(), str(cursor.order_id)],
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).decode().rstrip("=")

    def decode(self, query: ListQuery, token: str, *, purpose: str = "page") -> PageCursor:
        """The cursor in `token`; raises InvalidPageToken if it is forged, altered or foreign."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as error:
            raise InvalidPageToken("not a page token of this service") from error
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidPageToken("not a page token of this service")
        try:
            binding, updated_at, order_id = json.loads(body)
            cursor = PageCursor(datetime.fromisoformat(updated_at), UUID(order_id))
        except (ValueError, TypeError) as error:
            raise InvalidPageToken("not a page token of this service") from error
        if binding != self._binding(query, purpose):
            raise InvalidPageToken("the page token belongs to a different query")
        return cursor
