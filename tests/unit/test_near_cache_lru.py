"""The near cache's LRU against a plain model: the same keys kept, in the same order of use,
within both bounds, its byte count exact, over random sequences of stores, lookups (one by one
and many at once) and removals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from uoom.orders.v1 import order_pb2

from uoom_orders.read.near_cache import CachedOrder, _LruEntries

KEYS = st.integers(min_value=0, max_value=12)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.integers(min_value=1, max_value=400)),
        st.tuples(st.just("get"), KEYS, st.just(0)),
        st.tuples(st.just("get_many"), KEYS, KEYS),
        st.tuples(st.just("pop"), KEYS, st.just(0)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
    ),
    max_size=80,
)


def entry(size: int) -> CachedOrder:
    return CachedOrder(order_pb2.OrderSummary(), None, 0.0, size, 0, b"")


class Model:
    """Least recently used first, in a list; evicts from the front."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.items: list[tuple[int, int]] = []
        self.max_entries, self.max_bytes = max_entries, max_bytes

    def pop(self, key: int) -> None:
        self.items = [(k, s) for k, s in self.items if k != key]

    def get(self, key: int) -> int | None:
        found = [s for k, s in self.items if k == key]
        if not found:
            return None
        self.pop(key)
        self.items.append((key, found[0]))
        return found[0]

    def set(self, key: int, size: int) -> bool:
        self.pop(key)
        if size > self.max_bytes:
            return False
        self.items.append((key, size))
        while len(self.items) > self.max_entries or sum(s for _, s in self.items) > self.max_bytes:
            self.items.pop(0)
        return True


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=6), st.integers(min_value=100, max_value=1500), OPERATIONS
)
def test_the_lru_keeps_what_a_plain_model_keeps(
    max_entries: int, max_bytes: int, operations: list[tuple[str, int, int]]
) -> None:
    lru = _LruEntries(max_entries, max_bytes)
    model = Model(max_entries, max_bytes)
    for name, key, size in operations:
        if name == "set":
            assert lru.set(key, entry(size)) == model.set(key, size)
        elif name == "get":
            got = lru.get(key)
            assert (None if got is None else got.size) == model.get(key)
        elif name == "get_many":  # two keys, the same one twice when size == key
            keys = [key, size]
            many = lru.get_many(keys)
            expected = {k: s for k in keys if (s := model.get(k)) is not None}
            assert {k: e.size for k, e in many.items()} == expected
        elif name == "pop":
            lru.pop(key)
            model.pop(key)
        else:
            lru.clear()
            model.items.clear()
        assert len(lru) <= max_entries
        assert lru.bytes <= max_bytes
        assert lru.bytes == sum(s for _, s in model.items)
        assert [(k, e.size) for k, e in lru._data.items()] == model.items
