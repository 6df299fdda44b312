"""Exponential backoff with jitter, for retry loops that must also wake on stop."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays initial, 2 * initial, ... capped at `maximum`, each jittered into [d/2, d].

    "Equal jitter": several relays failing together spread their retries, yet none retries
    at once (a floor of half the delay), which full jitter would allow.
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        multiplier: float = 2.0,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < initial <= maximum")
        self._initial = initial
        self._maximum = maximum
        self._multiplier = multiplier
        self._random = random_fraction
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset: the failures in a row."""
        return self._attempts

    def next_delay(self) -> float:
        """The next delay in seconds; each call grows it until the cap."""
        # Cap the exponent too, so a long outage cannot overflow the float.
        exponent = min(self._attempts, 64)
        delay = min(self._maximum, self._initial * self._multiplier**exponent)
        self._attempts += 1
        return delay / 2 + self._random() * delay / 2

    def reset(self) -> None:
        """Back to the initial delay (after a success)."""
        self._attempts = 0
