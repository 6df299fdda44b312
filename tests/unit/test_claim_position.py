"""Where the relay's next claim may start after a committed one (relay/outbox_store.py)."""

from __future__ import annotations

from uoom_orders.relay.outbox_store import ClaimPosition, position_after_claim

LIMIT = 3


def test_a_full_claim_that_took_nothing_knows_nothing() -> None:
    # Its rows may all be held back behind one older transaction: no id bounds them yet.
    assert position_after_claim(None, [], LIMIT, horizon=50) is None


def test_a_full_claim_bounds_the_ids_up_to_the_highest_it_took() -> None:
    assert position_after_claim(None, [4, 7], LIMIT, horizon=50) == ClaimPosition(7, 50)
    # A full batch too: any eligible row left over has a higher id.
    assert position_after_claim(None, [4, 7, 9], LIMIT, horizon=50) == ClaimPosition(9, 50)


def test_a_claim_that_took_nothing_moves_only_the_horizon() -> None:
    assert position_after_claim(ClaimPosition(9, 40), [], LIMIT, 50) == ClaimPosition(9, 50)


def test_a_claim_that_took_what_there_was_moves_both() -> None:
    start = ClaimPosition(9, 40)
    # A straggler below last_id and a newer row above it: not a full batch.
    assert position_after_claim(start, [5, 12], LIMIT, 50) == ClaimPosition(12, 50)
    # Only stragglers: the last id stays.
    assert position_after_claim(start, [5, 6], LIMIT, 50) == ClaimPosition(9, 50)


def test_a_full_batch_reaching_past_last_id_moves_both() -> None:
    assert position_after_claim(ClaimPosition(9, 40), [5, 10, 11], LIMIT, 50) == ClaimPosition(
        11, 50
    )


def test_a_full_batch_of_stragglers_keeps_the_old_position() -> None:
    # Eligible rows may remain between 8 and 9 with an xid from 40 on: only 40 is known.
    start = ClaimPosition(9, 40)
    assert position_after_claim(start, [5, 6, 8], LIMIT, 50) is start
