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

import re
from functools import cache

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})
# int(text, 32) reads the digits 0-9 A-V: the same values, another spelling.
_TO_BASE32_DIGITS = str.maketrans(ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTUV")
_SYMBOLS = re.compile(f"[{ALPHABET}]*")
VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_BASE32_DIGITS = b"0123456789ABCDEFGHIJKLMNOPQRSTUV"


def _byte_table(symbols: bytes, default: int | None) -> bytes:
    """A bytes.translate table: each alphabet symbol in either case, and each alias, to the
    byte ``symbols`` holds at its value; any other byte to ``default`` (None: itself)."""
    table = bytearray(range(256)) if default is None else bytearray([default] * 256)
    for value, byte in enumerate(ALPHABET.encode()):
        table[byte] = table[byte | 0x20] = symbols[value]  # | 0x20: lower case (ASCII)
    for alias, symbol in (("I", "1"), ("L", "1"), ("O", "0")):
        table[ord(alias)] = table[ord(alias) | 0x20] = symbols[VALUE[symbol]]
    return bytes(table)


# Bytes tables for the hot path (every check reads a code): bytes.translate and int(..., 32)
# are single C calls, where str.translate looks each character up in a dict, and a regular
# expression validates before int() decodes. DIGITS makes ASCII text int()'s base-32 digits
# (any case, aliases read); every other byte becomes "!", which int() refuses, so the
# decoding is the validation. CANONICAL makes the same text its canonical symbols.
DIGITS = _byte_table(_BASE32_DIGITS, ord("!"))
CANONICAL = _byte_table(ALPHABET.encode(), None)


def normalize(text: str) -> str:
    """Upper case, aliases resolved, hyphens and spaces (human grouping) removed."""
    return text.upper().translate(_ALIASES)


def is_symbols(text: str) -> bool:
    return _SYMBOLS.fullmatch(text) is not None


def encode_int(value: int, symbols: int) -> str:
    """``value`` (< 2**(5*symbols)) as exactly ``symbols`` characters, most significant first."""
    # Each 5-bit group moved into a byte of its own (_spread), then one C call maps the
    # bytes to symbols: 0.6 us for a Transparency code, where base64.b32encode (a Python
    # loop in 3.11) and its padding took 2.7 us, a third of making a code.
    for mask, shift in _spread(symbols):
        low = value & mask
        value = low | (value ^ low) << shift
    return value.to_bytes(symbols, "big").translate(_SYMBOL_OF).decode()


_SYMBOL_OF = ALPHABET.encode().ljust(256, b"!")  # a byte's value -> its symbol


@cache
def _spread(symbols: int) -> tuple[tuple[int, int], ...]:
    """Steps that move ``symbols`` packed 5-bit groups into one byte each.

    The groups are cut in halves (from the least significant end) and each upper half
    moved up by 3 bits a group, so that it starts on a byte boundary; then each half in
    turn, until every group is alone: log2(symbols) steps of four integer operations.
    """
    block = 1
    while block < symbols:
        block *= 2
    steps = []
    while block > 1:
        half = block // 2
        mask = 0  # in each block of the step (8 * block bits apart): its lower half
        for start in range(0, symbols, block):
            mask |= ((1 << 5 * half) - 1) << 8 * start
        steps.append((mask, 3 * half))
        block = half
    return tuple(steps)


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
    return ALPHABET[check_value(value, symbols)]


def check_value(value: int, symbols: int) -> int:
    """The check symbol's value (its index in ALPHABET)."""
    m0, m1, m2, m3, m4 = _masks(symbols)  # unrolled: every code made comes here
    return (
        ((value & m0).bit_count() & 1)
        | ((value & m1).bit_count() & 1) << 1
        | ((value & m2).bit_count() & 1) << 2
        | ((value & m3).bit_count() & 1) << 3
        | ((value & m4).bit_count() & 1) << 4
    )


def syndrome_masks(symbols: int) -> tuple[int, int, int, int, int]:
    """Masks over ``symbols`` symbols followed by their check symbol, as one integer: the
    check symbol adds itself (weight 1) to the sum it should equal, so it is right exactly
    when every (value & mask) has an even number of bits set."""
    m0, m1, m2, m3, m4 = (mask << 5 | 1 << bit for bit, mask in enumerate(_masks(symbols)))
    return m0, m1, m2, m3, m4
