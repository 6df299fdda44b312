"""Page tokens are opaque, authenticated, and bound to their query."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from uoom_orders.domain.order import OrderStatus
from uoom_orders.read.page_token import InvalidPageToken, PageTokenCodec
from uoom_orders.read.ports import ListQuery, ListScope, PageCursor

KEY = b"k" * 32
CURSOR = PageCursor(datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())


def query(**changes: object) -> ListQuery:
    base = {
        "scope": ListScope.CUSTOMER,
        "owner_id": uuid.UUID(int=7),
        "status": None,
        "limit": 20,
        "after": None,
    }
    return ListQuery(**(base | changes))  # type: ignore[arg-type]


def test_round_trip() -> None:
    codec = PageTokenCodec(KEY)
    assert codec.decode(query(), codec.encode(query(), CURSOR)) == CURSOR


def test_a_token_of_another_key_is_refused() -> None:
    token = PageTokenCodec(b"x" * 32).encode(query(), CURSOR)
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(KEY).decode(query(), token)


def test_an_altered_token_is_refused() -> None:
    codec = PageTokenCodec(KEY)
    raw = bytearray(base64.urlsafe_b64decode(codec.encode(query(), CURSOR) + "=="))
    raw[-5] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidPageToken):
        codec.decode(query(), altered)


@pytest.mark.parametrize("garbage", ["", "!!!", "abc", "x" * 500])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(KEY).decode(query(), garbage)


@pytest.mark.parametrize(
    "other",
    [
        {"scope": ListScope.RESTAURANT},
        {"owner_id": uuid.UUID(int=8)},
        {"status": OrderStatus.PENDING},
    ],
)
def test_a_token_only_continues_its_own_query(other: dict[str, object]) -> None:
    codec = PageTokenCodec(KEY)
    token = codec.encode(query(), CURSOR)
    with pytest.raises(InvalidPageToken, match="different query"):
        codec.decode(query(**other), token)
    assert codec.decode(query(limit=5), token) == CURSOR  # page size may change


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokenCodec(b"short")
