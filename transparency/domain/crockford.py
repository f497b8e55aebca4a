"""Crockford base32 and a GF(32) check symbol.

The alphabet (0-9 A-Z without I L O U) survives people and QR alphanumeric mode. Decoding
is case-insensitive and reads I and L as 1 and O as 0, as Crockford specifies.

The check symbol is c = sum(alpha^(i+1) * v_i) over GF(32) (alpha a root of x^5 + x^2 + 1).
Multiplication by a non-zero field element is a bijection, so changing any one symbol
always changes c: every single substitution is detected, and, because
alpha^i != alpha^(i+1), so is every swap of two adjacent different symbols. The sum is
linear over GF(2), so it is computed on the packed integer with five parity masks.
"""

from __future__ import annotations

import base64
import re
from functools import cache

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RFC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = str.maketrans(_RFC, ALPHABET)
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})
# int(text, 32) reads the digits 0-9 A-V: the same values, another spelling.
_TO_BASE32_DIGITS = str.maketrans(ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTUV")
_SYMBOLS = re.compile(f"[{ALPHABET}]*")
VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


def normalize(text: str) -> str:
    """Upper case, aliases resolved, hyphens and spaces (human grouping) removed."""
    return text.upper().translate(_ALIASES)


def is_symbols(text: str) -> bool:
    return _SYMBOLS.fullmatch(text) is not None


def encode_int(value: int, symbols: int) -> str:
    """``value`` (< 2**(5*symbols)) as exactly ``symbols`` characters, most significant first."""
    # Left-align into whole 40-bit groups so the C base32 encoder does the work.
    groups = -(-symbols // 8)
    padded = value << (groups * 40 - symbols * 5)
    text = base64.b32encode(padded.to_bytes(groups * 5, "big")).decode()
    return text[:symbols].translate(_TO_CROCKFORD)


def decode_int(text: str) -> int:
    """The integer encoded by ``text`` (already normalised symbols)."""
    return int(text.translate(_TO_BASE32_DIGITS), 32)


def _gf_mul(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= 0b100101  # x^5 + x^2 + 1
    return product


@cache
def _masks(symbols: int) -> tuple[int, ...]:
    """Parity masks: bit j of the check symbol is the parity of (value & masks[j])."""
    weights = []
    alpha_power = 1
    for _ in range(symbols):
        alpha_power = _gf_mul(alpha_power, 2)
        weights.append(alpha_power)
    masks = [0] * 5
    for position in range(symbols):  # position 0 is the most significant symbol
        shift = (symbols - 1 - position) * 5
        for bit in range(5):
            contribution = _gf_mul(weights[position], 1 << bit)
            for j in range(5):
                if contribution >> j & 1:
                    masks[j] |= 1 << (shift + bit)
    return tuple(masks)


def check_symbol(value: int, symbols: int) -> str:
    """The check symbol of the ``symbols``-character encoding of ``value``."""
    m0, m1, m2, m3, m4 = _masks(symbols)  # unrolled: every check of every scan comes here
    return ALPHABET[
        ((value & m0).bit_count() & 1)
        | ((value & m1).bit_count() & 1) << 1
        | ((value & m2).bit_count() & 1) << 2
        | ((value & m3).bit_count() & 1) << 3
        | ((value & m4).bit_count() & 1) << 4
    ]
