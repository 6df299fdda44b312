"""Request bytes to messages, without letting a caller's garbage become a server error.

grpc decodes a request with the deserializer it is given; one that raises makes grpc log an
ERROR with a traceback and answer UNKNOWN. These deserializers turn undecodable bytes into an
`UndecodableRequest` instead, which the servicer answers INVALID_ARGUMENT (MALFORMED_REQUEST).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message


@dataclass(frozen=True, slots=True)
class UndecodableRequest:
    """Stands for a request whose bytes are not the method's request message."""

    size: int
    error: str


def tolerant_deserializer(
    message_class: type[Message],
) -> Callable[[bytes], Message | UndecodableRequest]:
    """`message_class.FromString`, except that bytes it cannot decode become an
    UndecodableRequest."""
    decode = message_class.FromString

    def deserialize(data: bytes) -> Message | UndecodableRequest:
        try:
            return decode(data)
        except Exception as error:  # DecodeError, or whatever else a parser may raise
            return UndecodableRequest(len(data), str(error) or type(error).__name__)

    return deserialize
