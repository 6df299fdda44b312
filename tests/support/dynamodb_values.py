"""DynamoDB items for contract tests of the local endpoint's replacements of moto's steps: an
order's status item, and hypothesis strategies for attribute values of every type, nested, to
feed through both paths."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

names = st.text(string.ascii_letters, min_size=1, max_size=6)
numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.decimals(-(10**6), 10**6, places=4, allow_nan=False, allow_infinity=False).map(
        lambda d: str(d.normalize()) if d != 0 else "0"
    ),
)
scalars = st.one_of(
    st.text(max_size=12).filter(bool).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    st.binary(min_size=1, max_size=12).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=4).map(
        lambda s: {"SS": sorted(s)}
    ),
    st.sets(st.integers(-1000, 1000), min_size=1, max_size=4).map(
        lambda s: {"NS": sorted(str(n) for n in s)}
    ),
    st.sets(st.binary(min_size=1, max_size=4), min_size=1, max_size=3).map(
        lambda s: {"BS": sorted(s)}
    ),
)
attribute_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: {"L": items}),
        st.dictionaries(names, inner, max_size=4).map(lambda m: {"M": m}),
    ),
    max_leaves=12,
)


def order_item(order_id: str, version: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A status item of the read model's shape (key, owners, update time, version, TTL)."""
    return {
        "orderId": {"S": order_id},
        "customerId": {"S": "customer-1"},
        "restaurantId": {"S": "restaurant-1"},
        "updatedAt": {"S": f"2026-11-30T12:00:0{version % 10}.000000Z"},
        "status": {"S": "PREPARING"},
        "version": {"N": str(version)},
        "ttl": {"N": "1900000000"},
        **(extra or {}),
    }
