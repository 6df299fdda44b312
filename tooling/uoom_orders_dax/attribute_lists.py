"""Attribute lists: DAX sends an item's non-key attribute names once, as a numbered list,
and after that only the number followed by the values in the list's order.

Ids here are a hash of the names rather than a counter: the client keeps the lists it
learnt for as long as it runs, so an endpoint restarted on the same port (or another node)
must give the same names the same id, or a client would read values under the wrong names.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence

from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.protocol import EMPTY_ATTRIBUTE_LIST_ID


def list_id(names: Sequence[str]) -> int:
    """The id of an attribute-name list: 1 for none, else 62 bits of its hash (never 0 or 1)."""
    if not names:
        return EMPTY_ATTRIBUTE_LIST_ID
    digest = hashlib.blake2b(json.dumps(list(names)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 2) | 2


class AttributeLists:
    """The lists this endpoint has numbered; shared by its nodes and connections."""

    def __init__(self, *, max_lists: int = 1_000_000) -> None:
        self._names: dict[int, tuple[str, ...]] = {EMPTY_ATTRIBUTE_LIST_ID: ()}
        self._lock = threading.Lock()
        self._max_lists = max_lists

    def define(self, names: Sequence[str]) -> int:
        """The id of `names`, remembered so that `names_of` can answer it."""
        key = tuple(str(name) for name in names)
        number = list_id(key)
        with self._lock:
            known = self._names.get(number)
            if known is not None and known != key:
                raise DaxError.internal(f"attribute list id {number} collides")
            if known is None:
                if len(self._names) >= self._max_lists:
                    raise DaxError.internal("too many distinct attribute lists")
                self._names[number] = key
        return number

    def names_of(self, number: int) -> tuple[str, ...]:
        with self._lock:
            names = self._names.get(number)
        if names is None:
            raise DaxError.validation(f"unknown attribute list id {number}")
        return names
