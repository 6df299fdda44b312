"""How many bytes of metadata an error costs a gRPC client, counted as its limits count them.

A client refuses a response whose metadata exceeds `grpc.max_metadata_size` (8 KiB by default;
above it calls start to fail) or the hard limit (16 KiB). Each entry costs its name, its value as
sent (binary `-bin` values in base64, `grpc-message` percent-encoded) and 32 bytes (HPACK's
per-entry overhead, which gRPC's accounting includes).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

DEFAULT_SOFT_LIMIT = 8 * 1024
ENTRY_OVERHEAD = 32


def percent_encoded(message: str) -> bytes:
    """grpc-message on the wire: bytes outside printable ASCII, and '%', as %XX."""
    out = bytearray()
    for byte in message.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != ord("%"):
            out.append(byte)
        else:
            out += f"%{byte:02X}".encode()
    return bytes(out)


def trailers_size(
    code: int, message: str, trailing_metadata: Iterable[tuple[str, str | bytes]]
) -> int:
    """Bytes the status and trailing metadata cost against the client's metadata limit."""
    size = len("grpc-status") + len(str(code)) + ENTRY_OVERHEAD
    size += len("grpc-message") + len(percent_encoded(message)) + ENTRY_OVERHEAD
    for key, value in trailing_metadata:
        raw = value if isinstance(value, bytes) else value.encode()
        wire = base64.b64encode(raw) if key.endswith("-bin") else raw
        size += len(key) + len(wire) + ENTRY_OVERHEAD
    return size
