"""One server subprocess: started in its own session, logged to a file, stopped as a group."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol


class StackStartError(RuntimeError):
    """A local stack server did not start; the message ends with the tail of its log."""


class LocalServer(Protocol):
    """What the launcher needs of each server; a stop or restart keeps the same port."""

    name: str
    port: int
    log_path: Path

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    @property
    def is_running(self) -> bool: ...


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def start_error(what: str, log_path: Path) -> StackStartError:
    """A StackStartError for `what`, carrying the tail of the log at log_path."""
    return StackStartError(f"{what}; tail of {log_path}:\n{log_tail(log_path)}")


class ServerProcess:
    """A long-running child process in its own session, so that a stop reaches its whole tree.

    stdout and stderr are appended to `log_path`. `terminate` and `kill` are safe to call
    when the process is not running.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._user = user
        self._cwd = cwd
        self.stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._popen.pid if self._popen is not None and self.is_running else None

    @property
    def is_running(self) -> bool:
        """True while the child has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited."""
        return None if self._popen is None else self._popen.poll()

    def spawn(self) -> None:
        """Starts the child; does not wait for it to be ready."""
        if self.is_running:
            return
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
                # Setting the user here (not through runuser) keeps the server our direct child,
                # so we reap it ourselves and nothing is left to a PID 1 that may not reap.
                user=self._user,
                group=self._user,
                extra_groups=[] if self._user is not None else None,
            )
        _track(self)

    def wait_ready(self, ready: Callable[[], bool], timeout: float, interval: float = 0.02) -> None:
        """Polls `ready` until true; raises StackStartError if the child exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.returncode
            if code is not None:
                raise start_error(
                    f"{self.name} exited with status {code} while starting", self.log_path
                )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise start_error(f"{self.name} was not ready after {timeout:.0f} s", self.log_path)
            time.sleep(interval)

    def send_signal(self, signum: signal.Signals, *, group: bool = True) -> None:
        """Sends a signal to the child (and by default to its whole process group)."""
        if self._popen is None or self._popen.poll() is not None:
            return
        try:
            if group:
                os.killpg(self._popen.pid, signum)
            else:
                self._popen.send_signal(signum)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> bool:
        """Waits for the child to exit; True if it did within `timeout`."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def pause(self) -> None:
        """SIGSTOPs the group: connections stay open but nothing answers, and no state is lost."""
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONTs the group after `pause`."""
        self.send_signal(signal.SIGCONT)

    def terminate(self, timeout: float = 5.0) -> None:
        """Sends the stop signal to the group; SIGKILLs the group if it outlives `timeout`."""
        self.send_signal(self.stop_signal)
        self.resume()  # a paused process handles the stop signal only once continued
        if not self.wait(timeout) or not self._wait_group_gone(timeout):
            self.kill()

    def kill(self) -> None:
        """SIGKILLs the whole process group, reaps the child and waits until every process of
        the group has gone (a server's worker may outlive its supervisor by a moment, holding
        the port)."""
        self.send_signal(signal.SIGKILL)
        self.wait(5.0)
        self._wait_group_gone(5.0, signal.SIGKILL)

    def _wait_group_gone(self, timeout: float, signum: signal.Signals | None = None) -> bool:
        """Waits until no process of the child's group is alive (zombies have closed their
        files), sending `signum` to what is left meanwhile; True if none was by `timeout`."""
        if self._popen is None:
            return True
        group = self._popen.pid  # the child leads its own session and group
        deadline = time.monotonic() + timeout
        while group_members(group):
            if signum is not None:
                # The group id is still taken by its members, so it cannot name another group.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signum)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


# Every child still running at interpreter exit is stopped, so that a script or test run that
# crashes before its cleanup leaves no servers behind (a SIGKILLed interpreter still can).
_live: weakref.WeakSet[ServerProcess] = weakref.WeakSet()
_live_lock = threading.Lock()
_atexit_registered = False


def _track(process: ServerProcess) -> None:
    global _atexit_registered
    with _live_lock:
        _live.add(process)
        if not _atexit_registered:
            atexit.register(_stop_all)
            _atexit_registered = True


def _stop_all() -> None:
    with _live_lock:
        processes = list(_live)
    for process in processes:
        process.terminate()


class SingleProcessServer:
    """Stop, pause, resume and kill for a server that is one child process (`_process`)."""

    _process: ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it has one (for its CPU time)."""
        return None if self._process is None else self._process.pid

    @property
    def is_running(self) -> bool:
        """True while the server process runs."""
        return self._process is not None and self._process.is_running

    def stop(self, timeout: float = 5.0) -> None:
        """The process's stop signal, then SIGKILL after `timeout`."""
        if self._process is not None:
            self._process.terminate(timeout)

    def pause(self) -> None:
        """SIGSTOP: clients time out as if the server hung; `resume` brings it back intact."""
        if self._process is not None:
            self._process.pause()

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        if self._process is not None:
            self._process.resume()

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request."""
        if self._process is not None:
            self._process.kill()


def _processes() -> list[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[1].isdigit() and fields[2].isdigit():
            found.append((int(entry.name), fields[0], int(fields[1]), int(fields[2])))
    return found


def group_members(group: int) -> list[int]:
    """The processes of a process group that are still alive: not zombies, or zombies whose
    other threads are still exiting (a process's files close with its last thread)."""
    return [
        pid
        for pid, state, _, pgrp in _processes()
        if pgrp == group and (state not in "ZX" or _threads(pid) > 1)
    ]


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def descendants(root: int) -> list[int]:
    """Every process below `root` (PostgreSQL's backends, granian's worker), from /proc."""
    children: dict[int, list[int]] = {}
    for pid, _, parent, _ in _processes():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found
