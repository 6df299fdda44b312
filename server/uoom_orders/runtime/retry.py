"""The one retry policy: exponential backoff with jitter, from tenacity.

Every retry in the service (relay, projector, read-model writes, near-cache feed, PostgreSQL
LISTEN) waits by this policy. Delays grow from `initial` by doubling up to `cap`; each is drawn
uniformly between `initial / 2` and that bound. The jitter keeps replicas hit by the same outage
from retrying in step; the floor keeps a failing loop from spinning.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity
from tenacity.wait import wait_base

T = TypeVar("T")


def backoff_policy(initial: float, cap: float) -> wait_base:
    """The wait strategy, for `tenacity.AsyncRetrying(wait=...)`."""
    if not 0 < initial <= cap:
        raise ValueError("need 0 < initial <= cap")
    return tenacity.wait_random_exponential(multiplier=initial, max=cap, min=initial / 2)


async def retried(
    call: Callable[[], Awaitable[T]],
    initial: float,
    cap: float,
    *,
    retry_if: Callable[[BaseException], bool],
    attempts: int | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    before_sleep: Callable[[tenacity.RetryCallState], Any] | None = None,
) -> T:
    """Awaits `call()` until it returns, retrying the failures `retry_if` accepts by the policy,
    at most `attempts` calls in all (None: no limit); the last error is re-raised when they run
    out or `retry_if` refuses it. `sleep` lets a loop wake early on stop.

    The first attempt is made here, outside tenacity, whose per-call state is about thirty
    objects in reference cycles (the retrying object, its thread-local statistics, a future with
    a lock). A call spans several young collections, so most of that garbage waited for a full
    one: on the projector's path (four retried calls an event) those took up to 56 ms of CPU.
    Tenacity is built only after a failure, its retry and stop conditions included (some of
    them are cycles too), and takes that failure as its own first attempt: waits, attempts and
    `before_sleep` count as if it had made it.
    """
    try:
        return await call()
    except Exception as error:
        failure: Exception | None = error

    async def attempt() -> T:
        nonlocal failure
        if failure is not None:
            error, failure = failure, None
            raise error
        return await call()

    options: dict[str, Any] = {}
    if sleep is not None:
        options["sleep"] = sleep
    if before_sleep is not None:
        options["before_sleep"] = before_sleep
    retrying = tenacity.AsyncRetrying(
        wait=backoff_policy(initial, cap),
        retry=tenacity.retry_if_exception(retry_if),
        stop=tenacity.stop_never if attempts is None else tenacity.stop_after_attempt(attempts),
        reraise=True,
        **options,
    )
    return await retrying(attempt)


class Backoff:
    """The same policy for loops that are not one retried call (a feed that reconnects, a relay
    that polls): `next_delay()` after each failure, `reset()` after a success."""

    def __init__(self, initial: float, cap: float) -> None:
        self._wait = backoff_policy(initial, cap)
        self._state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
        self._failures = 0

    @property
    def failures(self) -> int:
        """Delays handed out since the last reset: the failures in a row."""
        return self._failures

    def next_delay(self) -> float:
        self._failures += 1
        # Bounded exponent: a long outage cannot overflow the float.
        self._state.attempt_number = min(self._failures, 64)
        return float(self._wait(self._state))

    def reset(self) -> None:
        self._failures = 0
