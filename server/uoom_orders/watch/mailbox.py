"""The changes waiting to be sent to one watch: bounded, coalescing past its limit.

Up to `limit` changes wait in the order they came. Past it, the waiting changes are coalesced:
only the newest version of each order stays, at the place of its newest arrival, and the
versions it replaced are counted. A change never replaces a newer one of the same order, except
a reconciliation event (it applies whatever the version), and what replaces a correction stays
a correction. So the newest version of every order always waits — an order's final status is
never dropped. When even one change per order exceeds the limit (a board whose reader stopped
reading while many of its orders changed), the mailbox has overflowed: the watch must end, and
its caller resumes from what it has.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from uoom_orders.watch.change import Change


class Mailbox:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a mailbox holds at least one change, not {limit}")
        self._limit = limit
        self._waiting: deque[Change] = deque()
        # Versions replaced by newer ones of the same order, in all.
        self.coalesced = 0
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, change: Change) -> None:
        if len(self._waiting) < self._limit:
            self._waiting.append(change)
            return
        self._coalesce(change)
        if len(self._waiting) > self._limit:
            self.overflowed = True

    def take_all(self) -> list[Change]:
        """Every waiting change, oldest first; the mailbox is empty afterwards."""
        taken = list(self._waiting)
        self._waiting.clear()
        return taken

    def _coalesce(self, arriving: Change) -> None:
        newest: dict[str, Change] = {}
        for change in (*self._waiting, arriving):
            held = newest.get(change.order_id)
            if held is None:
                newest[change.order_id] = change
                continue
            self.coalesced += 1
            if change.replaces_any or change.version >= held.version:
                if held.corrected and not change.corrected and change.summary is not None:
                    change = dataclasses.replace(change, corrected=True)
                del newest[change.order_id]  # re-inserted last: the place of its arrival
                newest[change.order_id] = change
        self._waiting = deque(newest.values())
