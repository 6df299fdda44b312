"""The shared primitives: the retry policy's bounds and the background tasks' lifetime."""

from __future__ import annotations

import asyncio
import gc

import pytest

from uoom_orders.runtime.retry import Backoff, retried
from uoom_orders.runtime.tasks import BackgroundTasks, cancel_and_wait


def test_backoff_grows_within_floor_and_cap_and_resets() -> None:
    backoff = Backoff(0.1, 1.0)
    for failure in range(1, 200):
        delay = backoff.next_delay()
        assert 0.05 <= delay <= min(1.0, 0.1 * 2 ** (failure - 1))
    assert backoff.failures == 199
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next_delay() <= 0.1


def test_backoff_refuses_a_cap_below_the_start() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(1.0, 0.5)


def _connection_error(error: BaseException) -> bool:
    return isinstance(error, ConnectionError)


async def test_retried_retries_the_chosen_errors_then_reraises() -> None:
    calls = 0
    slept: list[float] = []
    logged: list[int] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"down {calls}")

    with pytest.raises(ConnectionError, match="down 3"):
        await retried(
            down,
            0.01,
            0.02,
            retry_if=_connection_error,
            attempts=3,
            sleep=sleep,
            before_sleep=lambda state: logged.append(state.attempt_number),
        )
    # The first attempt, made outside tenacity, counts as tenacity's first.
    assert calls == 3
    assert logged == [1, 2]
    assert len(slept) == 2
    assert all(0.005 <= delay <= 0.02 for delay in slept)


async def test_retried_answers_after_a_failure_and_raises_what_it_does_not_retry() -> None:
    outcomes: list[BaseException | str] = [ConnectionError("blip"), "written"]
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await retried(flaky, 0.01, 0.02, retry_if=_connection_error, sleep=sleep) == "written"
    assert len(slept) == 1

    outcomes[:] = [ValueError("refused"), "never reached"]
    with pytest.raises(ValueError, match="refused"):
        await retried(flaky, 0.01, 0.02, retry_if=_connection_error, sleep=sleep)
    assert outcomes == ["never reached"]
    assert len(slept) == 1


async def test_a_first_attempt_that_succeeds_leaves_no_garbage_in_cycles() -> None:
    async def written() -> bool:
        return True

    gc.disable()
    try:
        gc.collect()
        for _ in range(100):
            assert await retried(written, 0.01, 0.02, retry_if=_connection_error, attempts=3)
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_background_tasks_are_cancelled_and_awaited_on_exit() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with BackgroundTasks() as tasks:
        task = tasks.spawn(work(), "work")
        await started.wait()
    assert task.done()
    assert cancelled.is_set()
    await tasks.aclose()  # safe twice


async def test_cancel_and_wait_swallows_the_tasks_failures() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task, None)
    assert task.done()


async def test_a_long_running_part_is_running_inside_and_stopped_after_even_on_error() -> None:
    from uoom_orders.runtime.lifecycle import LongRunning

    class Part(LongRunning):
        def __init__(self) -> None:
            self.events: list[str] = []

        async def start(self) -> None:
            self.events.append("start")

        async def stop(self) -> None:
            self.events.append("stop")

    part = Part()

    async def use() -> None:
        async with part as entered:
            assert entered is part
            assert part.events == ["start"]
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        await use()
    assert part.events == ["start", "stop"]
