"""Parsers of environment values: each takes the raw text and returns the value or raises
ValueError with a message for the operator (the caller adds the variable's name)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

READ_TIER_NAMES = ("near-cache", "dax", "dynamodb")
ROLE_NAMES = ("api", "relay", "projector")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
TRACE_EXPORTERS = ("otlp", "console", "none")


def text(raw: str) -> str:
    return raw


class int_between:
    """An integer within bounds; `accepts` says so for the settings table."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.accepts = f"integer {low:,} to {high:,}"

    def __call__(self, raw: str) -> int:
        value = int(raw)
        if not self.low <= value <= self.high:
            raise ValueError(f"must be between {self.low} and {self.high}")
        return value


def positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def postgres_url(raw: str) -> str:
    if urlparse(raw).scheme not in ("postgres", "postgresql"):
        raise ValueError("expected postgresql://user@host:port/database")
    return raw


def http_url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("expected http(s)://host:port")
    return raw


def dax_url(raw: str) -> str:
    # The reference writes a bare host:port; amazon-dax-client wants dax:// or daxs://.
    if "://" not in raw:
        raw = f"dax://{raw}"
    parsed = urlparse(raw)
    if parsed.scheme not in ("dax", "daxs") or not parsed.hostname:
        raise ValueError("expected dax://host:8111 or daxs://host:9111")
    return raw


def host_ports(raw: str) -> str:
    for part in raw.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected host:port[,host:port...]")
    return raw


def table_prefix(raw: str) -> str:
    if not all(c.isalnum() or c in "-_." for c in raw) or len(raw) > 200:
        raise ValueError("letters, digits, '-', '_' and '.' only")
    return raw


def read_tiers(raw: str) -> tuple[str, ...]:
    """A comma list of near-cache, dax, dynamodb (in that order), or "none"."""
    if raw.lower() == "none":
        return ()
    tiers = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [t for t in tiers if t not in READ_TIER_NAMES]
    if unknown:
        raise ValueError(f"unknown tier {unknown[0]!r}; known: {', '.join(READ_TIER_NAMES)}")
    if list(tiers) != sorted(tiers, key=READ_TIER_NAMES.index) or len(set(tiers)) != len(tiers):
        raise ValueError("tiers go fastest first, each once: near-cache, dax, dynamodb")
    return tiers


def roles(raw: str) -> tuple[str, ...]:
    """A comma list of api, relay, projector (each once)."""
    chosen = tuple(dict.fromkeys(r.strip() for r in raw.split(",") if r.strip()))
    unknown = [r for r in chosen if r not in ROLE_NAMES]
    if not chosen or unknown:
        raise ValueError(f"a comma list of {', '.join(ROLE_NAMES)}")
    return chosen


def readable_file(raw: str) -> str:
    try:
        with open(raw, "rb"):
            pass
    except OSError as error:
        raise ValueError(f"cannot read the file: {error.strerror}") from error
    return raw


def topic(raw: str) -> str:
    if len(raw) > 249 or not all(c.isalnum() or c in "._-" for c in raw):
        raise ValueError("up to 249 letters, digits, '.', '_' or '-'")
    return raw


def boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def secret(raw: str) -> bytes:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw.encode()


def one_of(*choices: str, lower: bool = True) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower() if lower else raw.upper()
        if value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return value

    return parse


def trace_exporters(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    unknown = [name for name in names if name not in TRACE_EXPORTERS]
    if unknown:
        raise ValueError(f"unknown exporter {unknown[0]!r}; use otlp, console or none")
    return names
