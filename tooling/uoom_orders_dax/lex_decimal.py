"""Numbers as DAX packs a numeric range key: bytes that sort the way the numbers do.

A header byte carries the sign and the decimal exponent (the count of digits before the
point), in four more bytes when it is large. The digits follow in groups of three, left
aligned, each group as ten bits (group + 12), and a last ten-bit terminator says how many
digits of the last group count (0 → one, 1 → two, 2 → three). A negative number stores every
field complemented, so that larger magnitudes sort first.
"""

from __future__ import annotations

from decimal import Decimal

_ZERO = 0x80
_DIGIT_OFFSET = 12  # group values 0..999 are stored as 12..1011
_SMALL_EXPONENT = 0x3E


def encode(value: Decimal) -> bytes:
    if value.is_zero():
        return bytes([_ZERO])
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "DynamoDB numbers are finite"
    negative = bool(sign)
    point = len(digits) + exponent  # digits before the decimal point
    header = bytearray()
    if -_SMALL_EXPONENT <= point < _SMALL_EXPONENT:
        header.append(0x3F - point if negative else point + 0xC0)
    else:
        big = point >= _SMALL_EXPONENT
        header.append((0x01 if big else 0x7E) if negative else (0xFE if big else 0x81))
        flip = 0x7FFFFFFF if negative else 0x80000000
        header += ((point & 0xFFFFFFFF) ^ flip).to_bytes(4, "big")

    text = "".join(str(d) for d in digits)
    used_in_last = len(text) % 3 or 3
    text += "0" * (3 - used_in_last)
    groups = [int(text[i : i + 3]) + _DIGIT_OFFSET for i in range(0, len(text), 3)]
    groups.append(used_in_last - 1)
    if negative:
        groups = [1023 - g for g in groups]
    bits = 0
    count = 0
    for group in groups:
        bits = (bits << 10) | group
        count += 10
    padding = (-count) % 8
    return bytes(header) + (bits << padding).to_bytes((count + padding) // 8, "big")


def decode(data: bytes) -> Decimal:
    if not data:
        raise ValueError("an empty numeric key")
    header = data[0]
    if header in (_ZERO, 0x7F):
        return Decimal(0)
    negative = header < _ZERO
    if header in (0x01, 0x7E, 0x81, 0xFE):
        raw = int.from_bytes(data[1:5], "big") ^ (0x7FFFFFFF if negative else 0x80000000)
        point = raw - (1 << 32) if raw & 0x80000000 else raw
        body = data[5:]
    else:
        point = 0x3F - header if negative else header - 0xC0
        body = data[1:]
    bits = int.from_bytes(body, "big")
    width = len(body) * 8
    text = ""
    while width >= 10:
        width -= 10
        group = (bits >> width) & 0x3FF
        if negative:
            group = 1023 - group
        if group < _DIGIT_OFFSET:  # the terminator
            text = text[: len(text) - 3 + group + 1]
            digits = tuple(int(c) for c in text)
            return Decimal((int(negative), digits, point - len(digits)))
        text += f"{group - _DIGIT_OFFSET:03d}"
    raise ValueError("a numeric key without its terminator")
