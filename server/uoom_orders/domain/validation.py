"""A collector that checks fields against the contract's rules and turns every broken rule into
a field violation, so the caller sees them all at once.

The rules themselves (limits and their wording in the contract) are in `contract_rules.py`.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from uuid import UUID

from uoom_orders.domain import contract_rules as rules
from uoom_orders.domain.errors import FieldViolation, InvalidInput

# Only the canonical spelling; `re` character classes here are ASCII, so no other digits match.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CHANNEL = re.compile(r"[A-Za-z0-9._-]+")
_CURRENCY = re.compile(r"[A-Z]{3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # exactly Unicode category Cc

# How much of a caller's value an error quotes back (after escaping to printable ASCII).
ECHO_MAX_CHARS = 40
# How many violations the error's message names (all of them go to the details).
MESSAGE_VIOLATIONS = 3


def echo(value: str) -> str:
    """`value` quoted for an error message: printable ASCII (other characters escaped as in
    Python literals), at most ECHO_MAX_CHARS of it, then its length when it was cut."""
    pieces: list[str] = []
    used = 0
    shown = 0
    for char in value:
        piece = "\\'" if char == "'" else ascii(char)[1:-1]
        if used + len(piece) > ECHO_MAX_CHARS:
            break
        pieces.append(piece)
        used += len(piece)
        shown += 1
    quoted = "'" + "".join(pieces) + "'"
    if shown < len(value):
        quoted += f"... ({len(value)} characters)"
    return quoted


# The length of a UUID's canonical spelling; longer or shorter strings are never remembered.
_UUID_TEXT_LENGTH = 36
_UUID_LENGTH_ONLY = frozenset({_UUID_TEXT_LENGTH})


@functools.lru_cache(maxsize=8192)
def _parsed_uuid(value: str) -> UUID | None:
    return UUID(value) if _CANONICAL_UUID.fullmatch(value) else None


def canonical_uuid(value: str) -> UUID | None:
    """The UUID `value` spells in canonical form, else None.

    The last few thousand ids parsed are remembered (at most 8,192 strings of 36 characters):
    reads ask for the same hot orders again and again, and `UUID()` is Python code, ten times
    over in a batch read (UUIDs are immutable, so sharing one is safe)."""
    return _parsed_uuid(value) if len(value) == _UUID_TEXT_LENGTH else None


def canonical_uuids(values: list[str]) -> list[UUID | None]:
    """`canonical_uuid` of each value, in C while every value has a UUID's length and is
    remembered (a batch read of hot orders): only the cache's misses run Python."""
    if set(map(len, values)) <= _UUID_LENGTH_ONLY:
        return list(map(_parsed_uuid, values))
    return list(map(canonical_uuid, values))


class Violations:
    """Collects every broken rule of a request, so the caller sees them all at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if not self._items:
            return
        named = "; ".join(f"{v.field}: {v.description}" for v in self._items[:MESSAGE_VIOLATIONS])
        count = len(self._items)
        more = count - MESSAGE_VIOLATIONS
        message = f"invalid request ({count} field violation{'s' if count > 1 else ''}): {named}"
        if more > 0:
            message += f"; and {more} more"
        raise InvalidInput(message, violations=tuple(self._items))

    def uuid(self, field: str, value: str, rule: rules.UuidField = rules.ID) -> UUID | None:
        """The UUID in `value`, or None after recording why it is not one in canonical form."""
        if not value:
            if rule.required:
                self.add(field, f"required: a UUID such as {rules.UUID_EXAMPLE}")
            return None
        parsed = canonical_uuid(value)
        if parsed is None:
            self.add(field, uuid_problem(value))
        return parsed

    def text(self, field: str, value: str, rule: rules.TextField) -> str:
        """`value` trimmed; records a violation when blank, too long or with control characters."""
        stripped = value.strip()
        if not stripped:
            self.add(field, "required: must not be empty or only whitespace")
        elif len(stripped) > rule.max_len:
            self.add(field, f"at most {rule.max_len} characters, got {len(stripped)}")
        elif _CONTROL.search(stripped):
            self.add(field, "must not contain control characters")
        return stripped

    def channel(self, field: str, value: str, rule: rules.ChannelId) -> str:
        if not value:
            return rule.default
        if len(value) > rule.max_len or not _CHANNEL.fullmatch(value):
            self.add(
                field,
                f"1..{rule.max_len} characters of letters, digits, '.', '_' or '-', "
                f"got {echo(value)}",
            )
        return value

    def currency(self, field: str, value: str) -> str:
        if not _CURRENCY.fullmatch(value):
            self.add(field, f"three upper-case letters A-Z such as USD, got {echo(value)}")
        return value

    def int_range(self, field: str, value: int, rule: rules.IntRange) -> int:
        if not rule.low <= value <= rule.high:
            self.add(field, f"must be between {rule.low} and {rule.high}, got {value}")
        return value

    def coordinate(self, field: str, value: float, rule: rules.Coordinate) -> float:
        """`value`, with magnitudes below COORDINATE_ZERO_BELOW as 0 (DynamoDB cannot store
        them); records a violation when it is not a finite number within ±limit."""
        if not math.isfinite(value) or not -rule.limit <= value <= rule.limit:
            self.add(field, f"must be between -{rule.limit} and {rule.limit}, got {value!r}")
            return value
        if abs(value) < rules.COORDINATE_ZERO_BELOW:
            return 0.0
        return value

    def future_time(self, field: str, value: datetime | None, now: datetime) -> datetime | None:
        if value is not None and value <= now:
            self.add(field, "must be in the future")
        return value

    def non_negative(self, field: str, value: int) -> int:
        if value < 0:
            self.add(field, f"must not be negative, got {value}")
        return value

    def page_size(self, field: str, value: int, rule: rules.PageSize = rules.PAGE_SIZE) -> int:
        """AIP-158: 0 means the default, above the maximum is capped, negative is invalid."""
        if value < 0:
            self.add(field, f"must not be negative, got {value}")
            return rule.default
        if value == 0:
            return rule.default
        return min(value, rule.maximum)


def uuid_problem(value: str) -> str:
    """Why `value`, which is not a canonical UUID, is refused."""
    try:
        UUID(value)
    except ValueError:
        return f"not a UUID such as {rules.UUID_EXAMPLE}, got {echo(value)}"
    # Python (and others) would read it as a UUID; the contract takes one spelling only.
    return (
        "not a UUID in canonical form (lower-case hex in groups of 8-4-4-4-12 joined by "
        f"hyphens, e.g. {rules.UUID_EXAMPLE}), got {echo(value)}"
    )
