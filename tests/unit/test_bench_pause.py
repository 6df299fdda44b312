"""The create scenario's pause of the relay's process: stopped in the block, continued after."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from uoom_orders_bench.scenarios import paused_process


def _state(pid: int) -> str:
    # The field after the parenthesised command name: R, S, T (stopped) ...
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, wanted: set[str]) -> str:
    deadline = time.monotonic() + 5
    while (state := _state(pid)) not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return state


@pytest.fixture
def sleeper() -> Iterator[int]:
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_the_process_is_stopped_in_the_block_and_continued_after(sleeper: int) -> None:
    with paused_process(sleeper):
        assert _wait_state(sleeper, {"T"}) == "T"
    assert _wait_state(sleeper, {"S", "R"}) in {"S", "R"}


def _fail_while_paused(pid: int) -> None:
    with paused_process(pid):
        assert _wait_state(pid, {"T"}) == "T"
        raise RuntimeError("the measurement failed")


def test_the_process_is_continued_when_the_block_fails(sleeper: int) -> None:
    with pytest.raises(RuntimeError):
        _fail_while_paused(sleeper)
    assert _wait_state(sleeper, {"S", "R"}) in {"S", "R"}


def test_no_process_no_pause() -> None:
    with paused_process(None):
        pass
