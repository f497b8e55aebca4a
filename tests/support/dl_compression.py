"""A compressor for tests: GS1 element strings -> a compressed Digital Link path segment.

The service only decompresses (transparency.domain.dl_compression); tests need URIs to
decompress beyond the vectors GS1's toolkit made. This writes the same bit layout without
the optimisation codes: each AI by its digits, each alphanumeric value in 7-bit ASCII,
and non-GS1 pairs after an ``F`` nibble.
"""

from __future__ import annotations

from collections.abc import Sequence

from transparency.domain import dl_compression as dlc

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _bits(value: int, width: int) -> str:
    return format(value, f"0{width}b") if width else ""


def _value(ai: str, value: str) -> str:
    out = ""
    rest = value
    for part in dlc.FORMATS[ai].split():
        kind, variable, size = part[0], ".." in part, int(part.lstrip("NX."))
        chunk, rest = (rest, "") if variable else (rest[:size], rest[size:])
        length = _bits(len(chunk), dlc._length_bits(size)) if variable else ""
        if kind == "N":
            out += length + _bits(int(chunk or "0"), dlc._value_bits(len(chunk)))
        else:
            out += "100" + length + "".join(_bits(ord(c), 7) for c in chunk)
    return out


def compress(ais: Sequence[tuple[str, str]], other: Sequence[tuple[str, str]] = ()) -> str:
    """The compressed path segment of ``ais`` (and non-GS1 ``other`` pairs)."""
    bits = ""
    for ai, value in ais:
        bits += "".join(_bits(int(d), 4) for d in ai) + _value(ai, value)
    for key, value in other:
        bits += "1111" + _bits(len(key), 7)
        bits += "".join(_bits(_BASE64.index(c), 6) for c in key)
        bits += "100" + _bits(len(value), 7) + "".join(_bits(ord(c), 7) for c in value)
    bits += "0" * (-len(bits) % 6)
    return "".join(_BASE64[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))
