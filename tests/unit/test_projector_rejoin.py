"""The projector leaves a group join that never ends and joins again as a new member."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.memory_read_model import InMemoryReadModelWriter
from uoom_orders.projector import OrderProjector, ProjectorConfig
from uoom_orders.projector.membership import GroupMembership


class FakeConsumer:
    def __init__(self) -> None:
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_membership_tracks_joins() -> None:
    membership = GroupMembership()
    assert membership.joining_for() >= 0  # joining from the start
    await membership.on_partitions_assigned(set())  # an empty assignment is an assignment
    assert membership.joining_for() == 0
    await membership.on_partitions_revoked(set())
    assert membership.joining_for() > 0


async def test_a_join_that_does_not_end_is_left_and_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A short session timeout keeps the random pause before joining again short.
    config = ProjectorConfig(
        bootstrap_servers="127.0.0.1:1",
        topic="orders",
        group_id="projector",
        dead_letter_topic="",
        ttl_hours=72,
        session_timeout_ms=100,
        heartbeat_interval_ms=20,
        fetch_max_wait_ms=10,
        idempotent_producer=False,
    )
    projector = OrderProjector(InMemoryReadModelWriter(), config)
    made: list[FakeConsumer] = []

    def new_consumer() -> Any:
        consumer = FakeConsumer()
        made.append(consumer)
        projector._membership = GroupMembership()
        return consumer

    monkeypatch.setattr(projector, "_new_consumer", new_consumer)
    first = FakeConsumer()
    projector._consumer = first

    # A join under the limit (3 session timeouts, at least 45 s) is left alone.
    projector._membership._joining_since = time.monotonic() - 40
    await projector._rejoin_if_stuck()
    assert (made, first.stopped, projector.stats.rejoins) == ([], False, 0)

    projector._membership._joining_since = time.monotonic() - 46
    await projector._rejoin_if_stuck()
    assert first.stopped
    assert len(made) == 1
    assert made[0].started
    assert projector._consumer is made[0]
    assert projector.stats.rejoins == 1
    # The new member is joining afresh: not stuck yet.
    await projector._rejoin_if_stuck()
    assert projector.stats.rejoins == 1
