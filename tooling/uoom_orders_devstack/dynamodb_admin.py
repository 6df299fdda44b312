"""dynamodb-admin (npm): a web page to browse the local DynamoDB endpoint's tables, as the
reference's troubleshooting section runs it. Installed on first use with npm into the
repository's ignored `.tmp/dynamodb-admin` (never globally, never under $HOME)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from uoom_orders_devstack.ports import LOOPBACK, http_status, port_accepts
from uoom_orders_devstack.processes import ServerProcess, SingleProcessServer, StackStartError

DYNAMODB_ADMIN_VERSION = "5.3.3"
DYNAMODB_ADMIN_BIN_ENV = "DYNAMODB_ADMIN_BIN"
_INSTALL_TIMEOUT_SECONDS = 300


def repository_root() -> Path | None:
    """The checkout this tooling runs from (the folder holding scripts/setup.sh), if any."""
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "scripts" / "setup.sh").is_file() and (folder / "tooling").is_dir():
                return folder
    return None


def find_dynamodb_admin(*, install: bool = True) -> Path:
    """$DYNAMODB_ADMIN_BIN, else the repository's `.tmp/dynamodb-admin` (installed there with
    npm when missing and `install`), else `dynamodb-admin` on PATH."""
    override = os.environ.get(DYNAMODB_ADMIN_BIN_ENV)
    if override:
        return Path(override)
    root = repository_root()
    if root is not None:
        prefix = root / ".tmp" / "dynamodb-admin"
        binary = prefix / "node_modules" / ".bin" / "dynamodb-admin"
        if binary.is_file():
            return binary
        if install and shutil.which("npm") is not None:
            _npm_install(prefix, root / ".tmp" / "npm-cache")
            if binary.is_file():
                return binary
    on_path = shutil.which("dynamodb-admin")
    if on_path is not None:
        return Path(on_path)
    raise StackStartError(
        "dynamodb-admin is not installed and could not be: it needs npm (Node.js), or set "
        f"{DYNAMODB_ADMIN_BIN_ENV}"
    )


def _npm_install(prefix: Path, cache: Path) -> None:
    prefix.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"npm_config_cache": str(cache), "npm_config_update_notifier": "false"}
    done = subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
         f"dynamodb-admin@{DYNAMODB_ADMIN_VERSION}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=_INSTALL_TIMEOUT_SECONDS,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise StackStartError(f"npm install dynamodb-admin failed: {done.stderr.strip()[-2000:]}")


class DynamoDBAdmin(SingleProcessServer):
    """dynamodb-admin on 127.0.0.1:`port`, browsing `dynamodb_endpoint` (any credentials)."""

    name = "dynamodb-admin"

    def __init__(
        self,
        port: int,
        log_path: Path,
        dynamodb_endpoint: str,
        *,
        region: str = "us-east-1",
        binary: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.dynamodb_endpoint = dynamodb_endpoint
        self.region = region
        self._binary = binary
        self.start_timeout = start_timeout
        self._process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self, timeout: float | None = None) -> None:
        """Starts it (installing it first if needed) and waits until its page answers."""
        if self.is_running:
            return
        binary = self._binary or find_dynamodb_admin()
        self._process = ServerProcess(
            self.name,
            [str(binary), "--host", LOOPBACK, "--port", str(self.port),
             "--dynamo-endpoint", self.dynamodb_endpoint],
            self.log_path,
            # Its default credentials ("key"/"secret") do for a local endpoint; the region
            # must be the tables' (moto keeps tables per region).
            env=os.environ | {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region},
            cwd=self.log_path.parent,
        )  # fmt: skip
        self._process.spawn()
        self._process.wait_ready(
            lambda: port_accepts(self.port) and http_status(self.port) == 200,
            timeout or self.start_timeout,
            0.1,
        )
