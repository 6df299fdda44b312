"""A watch's mailbox: every change in order while it keeps up; past its limit the newest
version of each order, the rest counted; never the final status dropped."""

from __future__ import annotations

import uuid

import pytest

from tests.support.watch_changes import change
from uoom_orders.watch.mailbox import Mailbox

A, B, C = (str(uuid.uuid4()) for _ in range(3))


def versions(box: Mailbox) -> list[tuple[str, int]]:
    return [(c.order_id, c.version) for c in box.take_all()]


def test_under_the_limit_every_change_waits_in_order() -> None:
    box = Mailbox(limit=4)
    for version in (2, 3, 4):
        box.put(change(A, version))
    assert versions(box) == [(A, 2), (A, 3), (A, 4)]
    assert box.coalesced == 0
    assert len(box) == 0


def test_past_the_limit_one_order_keeps_only_its_newest_version() -> None:
    box = Mailbox(limit=2)
    for version in range(2, 7):
        box.put(change(A, version))
    taken = box.take_all()
    assert [(c.order_id, c.version) for c in taken] == [(A, 6)]
    assert taken[0].terminal  # DELIVERED: the final status is what stays
    assert box.coalesced == 4
    assert not box.overflowed


def test_memory_stays_bounded_however_many_versions_come() -> None:
    box = Mailbox(limit=3)
    for version in range(1, 10_000):
        box.put(change(A if version % 2 else B, 2 + version % 4))
        assert len(box) <= 3
    assert not box.overflowed


def test_coalescing_keeps_each_order_at_the_place_of_its_newest_arrival() -> None:
    box = Mailbox(limit=3)
    box.put(change(A, 2))
    box.put(change(B, 2))
    box.put(change(A, 3))
    box.put(change(C, 2))  # past the limit: A's 2 goes, A stays after B
    assert versions(box) == [(B, 2), (A, 3), (C, 2)]
    assert box.coalesced == 1


def test_a_late_older_version_never_replaces_a_newer_one() -> None:
    box = Mailbox(limit=1)
    box.put(change(A, 6))
    box.put(change(A, 3))  # a duplicate from the past
    assert versions(box) == [(A, 6)]


def test_a_correction_replaces_whatever_waits_and_what_follows_it_stays_a_correction() -> None:
    box = Mailbox(limit=1)
    box.put(change(A, 5))
    box.put(change(A, 3, corrected=True))
    box.put(change(A, 4))
    [only] = box.take_all()
    assert (only.version, only.corrected) == (4, True)


def test_more_orders_than_the_limit_overflow() -> None:
    box = Mailbox(limit=2)
    box.put(change(A, 2))
    box.put(change(B, 2))
    assert not box.overflowed
    box.put(change(C, 2))
    assert box.overflowed


def test_a_mailbox_holds_at_least_one_change() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Mailbox(limit=0)
