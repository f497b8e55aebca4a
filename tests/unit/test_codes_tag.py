"""The tag check's fast path: HMAC from reused keyed states, byte tables for reading.

Each is held to what it replaces: RFC 2104's HMAC as hmac.digest computes it, and
``parse``'s reading of every single-byte change to a code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transparency.domain import codes
from transparency.domain.codes import CodeFormat, Payload
from transparency.domain.errors import InvalidCode

DOMAIN = b"transparency/v1/tag"


@given(st.binary(max_size=200), st.binary(min_size=11, max_size=11))
def test_the_tag_is_rfc_2104_hmac_sha256_for_keys_of_any_length(
    secret: bytes, payload: bytes
) -> None:
    """Keys longer than SHA-256's 64-byte block are hashed first, shorter ones padded."""
    digest = hmac.digest(secret, DOMAIN + payload, "sha256")
    assert codes._tag_digest(payload, secret) == digest
    tag = int.from_bytes(digest[:6], "big")
    assert codes.tag_matches(payload, tag, secret)
    assert not codes.tag_matches(payload, tag ^ 1, secret)


def test_checks_reuse_the_keyed_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HMAC is keyed anew per check: the key's padded states are made once per secret
    (hmac.digest re-keyed and looked the digest up for each of them: 1.26 us a tag where
    the reused states take 0.53 us)."""
    # raising=False: the old code had no table, and fails below for what it did instead
    monkeypatch.setattr(codes, "_keyed", {}, raising=False)  # none left by other tests
    secret = os.urandom(32)
    texts = [codes.sign_transparency(Payload(5, serial), secret) for serial in range(50)]
    made: list[bytes] = []
    sha256 = hashlib.sha256

    def counted(data: bytes = b"") -> Any:
        made.append(data)
        return sha256(data)

    def refused(*args: object, **kwargs: object) -> Any:
        raise AssertionError("HMAC keyed for a single check")

    monkeypatch.setattr(hashlib, "sha256", counted)
    monkeypatch.setattr(hmac, "digest", refused)
    monkeypatch.setattr(hmac, "new", refused)
    fresh = os.urandom(32)  # a secret no state was made for yet
    fresh_texts = [codes.sign_transparency(Payload(6, serial), fresh) for serial in range(50)]
    assert len(made) == 2  # inner and outer state, once
    for text in texts + fresh_texts:
        bare = codes.read_bare(text)
        assert bare is not None
        assert codes.tag_matches(bare.payload, bare.tag, fresh if bare.key_id == 6 else secret)
    assert len(made) == 2


def test_the_keyed_states_kept_are_bounded() -> None:
    """A process that meets many keys keeps at most _KEYED_MAX secrets' states."""
    payload = Payload(1, 1).to_bytes()
    for _ in range(2 * codes._KEYED_MAX + 3):
        codes._tag_digest(payload, os.urandom(32))
        assert len(codes._keyed) <= codes._KEYED_MAX


SECRET = b"t" * 32


@pytest.mark.parametrize("position", range(codes.TRANSPARENCY_LENGTH))
def test_read_bare_says_what_parse_says_of_every_ascii_byte_at_every_position(
    position: int,
) -> None:
    text = codes.sign_transparency(Payload(77, 123456789), SECRET)
    for byte in range(128):
        changed = text[:position] + chr(byte) + text[position + 1 :]
        bare = codes.read_bare(changed)
        try:
            parsed = codes.parse(changed)
        except InvalidCode:
            assert bare is None, changed
            continue
        if parsed.format is not CodeFormat.TRANSPARENCY:
            assert bare is None, changed
            continue
        assert bare is not None, changed
        assert parsed.payload is not None
        assert (bare.text, bare.key_id, bare.payload, bare.tag) == (
            parsed.text,
            parsed.payload.key_id,
            parsed.payload.to_bytes(),
            parsed.tag,
        )
        assert codes.tag_matches(bare.payload, bare.tag, SECRET) == (parsed.text == text)


@given(
    st.integers(1, codes.MAX_KEY_ID),
    st.lists(st.integers(0, (1 << codes.SERIAL_BITS) - 1), max_size=20),
    st.binary(min_size=16, max_size=64),
)
def test_signing_serials_makes_what_sign_transparency_makes(
    key_id: int, serials: list[int], secret: bytes
) -> None:
    assert codes.sign_serials(key_id, serials, secret) == [
        codes.sign_transparency(Payload(key_id, serial), secret) for serial in serials
    ]


@pytest.mark.parametrize(
    ("key_id", "serial"), [(0, 0), (codes.MAX_KEY_ID + 1, 0), (1, -1), (1, 1 << codes.SERIAL_BITS)]
)
def test_signing_serials_refuses_what_a_payload_refuses(key_id: int, serial: int) -> None:
    with pytest.raises(ValueError, match="must"):
        Payload(key_id, serial)
    with pytest.raises(ValueError, match="must"):
        codes.sign_serials(key_id, [5, serial], SECRET)
