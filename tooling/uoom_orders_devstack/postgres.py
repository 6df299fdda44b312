"""A throwaway PostgreSQL cluster from the machine's own binaries."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from uoom_orders_devstack.ports import LOOPBACK, port_accepts
from uoom_orders_devstack.processes import ServerProcess, StackStartError, start_error

_SUPERUSER = "postgres"
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def find_postgres_bindir() -> Path:
    """The folder of initdb and postgres: the newest /usr/lib/postgresql/*/bin, else pg_config's."""
    versions: list[tuple[int, Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if bindir.parent.name.isdigit() and (bindir / "initdb").is_file():
            versions.append((int(bindir.parent.name), bindir))
    if versions:
        return max(versions)[1]
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        bindir = Path(out.stdout.strip())
        if out.returncode == 0 and (bindir / "initdb").is_file():
            return bindir
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    raise StackStartError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, pg_config or "
        "initdb on PATH); install them, e.g. `apt-get install -y postgresql`"
    )


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """True when every parent of `path` can be entered by uid/gid (mode bits only, no ACLs)."""
    for folder in path.resolve().parents:
        st = folder.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


class PostgresServer:
    """A PostgreSQL cluster in `cluster_dir`, listening on 127.0.0.1:`port` with trust auth.

    When running as root (initdb and postgres refuse root) every command runs as the `postgres`
    user, in a folder that user owns with mode 700. The postmaster is our own child process, not
    daemonised through `pg_ctl start`, so that we reap it ourselves: on machines whose PID 1 does
    not reap orphans, a daemonised postmaster would stay a zombie, and a zombie's pid in
    postmaster.pid stops the next start after a kill.
    """

    name = "postgresql"

    def __init__(
        self,
        cluster_dir: Path,
        port: int,
        *,
        databases: tuple[str, ...] = ("orders",),
        bindir: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        for database in databases:
            if not _DATABASE_NAME.fullmatch(database):
                raise ValueError(f"not a plain database name: {database!r}")
        self.cluster_dir = cluster_dir
        self.port = port
        self.data_dir = cluster_dir / "data"
        self.log_path = cluster_dir / "server.log"
        self._databases = databases
        self._bindir = bindir
        self.start_timeout = start_timeout
        self._user = _SUPERUSER if os.geteuid() == 0 else None
        self._process: ServerProcess | None = None

    def dsn(self, database: str = "postgres") -> str:
        """The connection URL of `database` on this cluster."""
        return f"postgresql://{_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (its backends are its children)."""
        return None if self._process is None else self._process.pid

    @property
    def is_running(self) -> bool:
        """True while the postmaster runs."""
        return self._process is not None and self._process.is_running

    def start(self, timeout: float | None = None) -> None:
        """Creates the cluster on first use, starts the postmaster and creates the databases."""
        if self.is_running:
            return
        bindir = self._bindir or find_postgres_bindir()
        self._prepare_folder()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bindir, timeout or self.start_timeout)
        self._process = ServerProcess(
            self.name,
            [
                str(bindir / "postgres"),
                "-D", str(self.data_dir),
                "-k", str(self.cluster_dir),
                "-p", str(self.port),
                "-c", f"listen_addresses={LOOPBACK}",
                # fsync and full-page writes are off ONLY because this is a throwaway dev/test
                # cluster: a crash of the machine may lose or corrupt it. synchronous_commit
                # stays on: with it off, a PostgreSQL crash loses acknowledged commits whose
                # events the relay has already published (visibility precedes durability).
                "-c", "fsync=off",
                "-c", "synchronous_commit=on",
                "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            self.log_path,
            user=self._user,
            cwd=self.cluster_dir,
            stop_signal=signal.SIGINT,  # fast shutdown, what `pg_ctl stop -m fast` sends
        )  # fmt: skip
        self._process.spawn()
        self._process.wait_ready(self._accepts_connections, timeout or self.start_timeout)
        self._create_databases(bindir)

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (what `pg_ctl stop -m fast` sends), immediate if it takes too long."""
        process = self._process
        if process is None or not process.is_running:
            return
        process.send_signal(process.stop_signal, group=False)
        if not process.wait(timeout):
            self.kill()

    def kill(self) -> None:
        """Stops abruptly, like a crash: immediate shutdown, no checkpoint, recovery at next start.

        SIGQUIT rather than SIGKILL: a SIGKILLed postmaster leaves its backends orphaned.
        """
        process = self._process
        if process is None or not process.is_running:
            return
        process.send_signal(signal.SIGQUIT, group=False)
        if not process.wait(10.0):
            process.kill()

    def _prepare_folder(self) -> None:
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        if self._user is None:
            self.cluster_dir.chmod(0o700)
            return
        entry = pwd.getpwnam(self._user)
        os.chown(self.cluster_dir, entry.pw_uid, entry.pw_gid)
        self.cluster_dir.chmod(0o700)
        if not _traversable_by(self.cluster_dir, entry.pw_uid, entry.pw_gid):
            raise StackStartError(
                f"user {self._user!r} cannot reach {self.cluster_dir}: every parent folder must "
                "be traversable by it (use a base folder under /tmp)"
            )

    def _initdb(self, bindir: Path, timeout: float) -> None:
        log_path = self.cluster_dir / "initdb.log"
        with log_path.open("ab") as log:
            done = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data_dir),
                    "-U", _SUPERUSER,
                    "--auth=trust",
                    "-E", "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cluster_dir,
                user=self._user,
                group=self._user,
                extra_groups=[] if self._user is not None else None,
                timeout=timeout,
                check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise start_error(f"initdb failed with status {done.returncode}", log_path)

    def _accepts_connections(self) -> bool:
        # The postmaster writes "ready" on line 8 of postmaster.pid once it accepts connections;
        # this is what `pg_ctl -w` waits for.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready" and port_accepts(self.port)

    def _create_databases(self, bindir: Path) -> None:
        for database in self._databases:
            exists = self._psql(bindir, f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
            if exists.strip() != "1":
                self._psql(bindir, f'CREATE DATABASE "{database}"')

    def _psql(self, bindir: Path, sql: str) -> str:
        # A clean client environment: PG* variables of the caller must not redirect psql.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        done = subprocess.run(
            [str(bindir / "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
             "-d", self.dsn(), "-c", sql],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise StackStartError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout
