"""The local DynamoDB endpoint's collector: survivors frozen, so a full collection stays short."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from uoom_orders_devstack.moto_heap import freeze_survivors


def test_survivors_move_to_the_permanent_generation_until_stopped() -> None:
    kept = [[index] for index in range(1_000)]  # tracked objects that stay alive
    stop = threading.Event()
    thread = freeze_survivors(0.01, stop)
    try:
        deadline = time.monotonic() + 5
        while gc.get_freeze_count() < len(kept):
            assert time.monotonic() < deadline, "nothing was frozen within 5 s"
            time.sleep(0.01)
        # A full collection no longer walks them, and they are still alive and intact.
        gc.collect()
        assert kept[999] == [999]
    finally:
        stop.set()
        thread.join(timeout=5)
        gc.unfreeze()
    assert not thread.is_alive()
    assert thread.daemon  # never holds the endpoint's worker up when it is stopped


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        freeze_survivors(0)
