"""Keeps the local DynamoDB endpoint's garbage collections short as its heap grows.

moto keeps every item and every stream record as Python objects, for as long as the endpoint
runs. CPython's full collection (generation 2) walks every object the collector tracks, holding
the interpreter lock throughout: the endpoint answers nothing meanwhile. Seen in the benchmark
(`--scenarios create,lag --rounds 3`, about 11,000 orders by its end): the endpoint's full
collections took 28 ms at first and 300-514 ms by the third round, each a stall of every call
in flight, in the middle of the lag scenario's measurement (and the zipf scenario's 200,000
orders take the endpoint's heap past a gigabyte).

`freeze_survivors` moves every object alive into the permanent generation each interval
(`gc.freeze()`: a list splice, no walk), so that a full collection only walks what was
allocated since: in the same run the longest took 29 ms. Objects are still freed when their
last reference goes; only a garbage cycle formed by frozen objects is never collected (after
15,000 conditional PutItems the endpoint held 2 % more memory than without the freeze). This
is the endpoint's stand-in process only: DynamoDB itself has no such pause.
"""

from __future__ import annotations

import gc
import threading

FREEZE_EVERY_S = 1.0


def freeze_survivors(
    every_s: float = FREEZE_EVERY_S, stop: threading.Event | None = None
) -> threading.Thread:
    """Starts a daemon thread that calls `gc.freeze()` every `every_s` seconds until `stop` is
    set (never, without one: the endpoint's worker is stopped by a signal); returns it."""
    if every_s <= 0:
        raise ValueError("every_s must be positive")
    stopping = stop or threading.Event()

    def loop() -> None:
        while not stopping.wait(every_s):
            gc.freeze()

    thread = threading.Thread(target=loop, name="moto-gc-freeze", daemon=True)
    thread.start()
    return thread
