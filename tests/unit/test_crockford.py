"""Crockford base32: the encoder against a symbol-by-symbol reference, the byte tables
against the text normalisation they stand in for, the check symbol read as a syndrome."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transparency.domain import crockford


def _reference_encode(value: int, symbols: int) -> str:
    """One symbol at a time, most significant first: slow and plainly right."""
    return "".join(crockford.ALPHABET[value >> 5 * (symbols - 1 - i) & 31] for i in range(symbols))


@given(st.data(), st.integers(1, 130))
def test_encode_int_writes_every_width_as_the_reference_does(
    data: st.DataObject, symbols: int
) -> None:
    value = data.draw(st.integers(0, (1 << 5 * symbols) - 1))
    text = crockford.encode_int(value, symbols)
    assert text == _reference_encode(value, symbols)
    assert crockford.decode_int(text) == value


@pytest.mark.parametrize("symbols", [1, 6, 13, 15, 27, 28, 120, 121])
def test_encode_int_at_the_edges_of_each_width_we_use(symbols: int) -> None:
    for value in (0, 1, 31, 1 << 5 * symbols - 1, (1 << 5 * symbols) - 1):
        assert crockford.encode_int(value, symbols) == _reference_encode(value, symbols)


def test_encode_int_needs_no_base64(monkeypatch: pytest.MonkeyPatch) -> None:
    """base64.b32encode is a Python loop in 3.11 (2.7 us a code, a third of making one)."""

    def refused(*args: object) -> bytes:
        raise AssertionError("b32encode called")

    monkeypatch.setattr(base64, "b32encode", refused)
    assert crockford.encode_int(12345, 27) == _reference_encode(12345, 27)


@pytest.mark.parametrize("byte", range(256))
def test_the_byte_tables_read_each_byte_as_normalize_and_decode_int_do(byte: int) -> None:
    char = chr(byte)
    normal = crockford.normalize(char) if byte < 128 else ""
    if len(normal) == 1 and crockford.is_symbols(normal):
        value = crockford.decode_int(normal)
        assert int(bytes([crockford.DIGITS[byte]]), 32) == value
        assert chr(crockford.CANONICAL[byte]) == normal
    else:  # no symbol: a byte int() refuses, whatever else surrounds it
        assert crockford.DIGITS[byte] == ord("!")
        with pytest.raises(ValueError, match="invalid literal"):
            int(b"12" + bytes([crockford.DIGITS[byte]]) + b"34", 32)


@given(st.integers(1, 40), st.data())
def test_the_syndrome_is_even_exactly_when_the_check_symbol_is_right(
    symbols: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(0, (1 << 5 * symbols) - 1))
    check = data.draw(st.integers(0, 31))
    masks = crockford.syndrome_masks(symbols)
    whole = value << 5 | check
    even = all((whole & mask).bit_count() % 2 == 0 for mask in masks)
    assert even == (crockford.ALPHABET[check] == crockford.check_symbol(value, symbols))
    assert (
        crockford.check_symbol(value, symbols)
        == crockford.ALPHABET[crockford.check_value(value, symbols)]
    )
