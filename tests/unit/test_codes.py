"""The code formats: round trips, single-character changes, signatures, total parsing."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from transparency.domain import authenticity, codes, crockford, issuance, signing_keys
from transparency.domain.codes import CodeFormat, Payload
from transparency.domain.errors import InvalidCode
from transparency.domain.signing_keys import KeyStatus

SECRET = b"k" * 32
PRIVATE = SigningKey(b"p" * 32)
PUBLIC = bytes(PRIVATE.verify_key)
KEY = signing_keys.SigningKey(
    1, UUID(int=1), KeyStatus.ACTIVE, SECRET, PRIVATE, PUBLIC, datetime(2025, 1, 1, tzinfo=UTC)
)

v2_payloads = st.builds(
    Payload,
    key_id=st.integers(1, codes.MAX_KEY_ID),
    serial=st.integers(0, (1 << codes.SERIAL_BITS) - 1),
)
v1_payloads = st.builds(
    Payload,
    key_id=st.integers(1, (1 << 13) - 1),
    serial=st.integers(0, (1 << 72) - 1),
    version=st.just(1),
)
payloads = st.one_of(v2_payloads, v1_payloads)
secrets_ = st.binary(min_size=16, max_size=64)


@given(payloads, secrets_)
def test_transparency_round_trip(payload: Payload, secret: bytes) -> None:
    text = codes.sign_transparency(payload, secret)
    assert len(text) == 30
    assert text.startswith("TP")
    parsed = codes.parse(text)
    assert parsed.format is CodeFormat.TRANSPARENCY
    assert parsed.payload == payload
    assert parsed.unit_key == text
    assert codes.verify_tag(parsed, secret)
    assert not codes.verify_tag(parsed, secret + b"x")
    # The checks' fast reading says the same as parse(), in any case of letters.
    for scanned in (text, text.lower()):
        bare = codes.read_bare(scanned)
        assert bare is not None
        assert (bare.text, bare.key_id, bare.payload, bare.tag) == (
            text, payload.key_id, payload.to_bytes(), parsed.tag)  # fmt: skip
        assert codes.tag_matches(bare.payload, bare.tag, secret)
        assert not codes.tag_matches(bare.payload, bare.tag, secret + b"x")


@given(payloads, st.data())
def test_every_single_character_change_is_rejected(payload: Payload, data: st.DataObject) -> None:
    text = codes.sign_transparency(payload, SECRET)
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from(crockford.ALPHABET + "UXZ#"))
    if crockford.normalize(replacement) == crockford.normalize(text[position]):
        return
    changed = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(InvalidCode):
        codes.parse(changed)
    assert codes.read_bare(changed) is None


def test_letters_that_grow_in_upper_case_are_no_shortcut() -> None:
    """'ß'.upper() is 'SS': a 30-character text must not pass as a 31-character code."""
    text = codes.sign_transparency(Payload(7, 0), SECRET)
    position = text.find("SS", 2)
    if position < 0:  # make one: any payload whose code holds "SS"
        for serial in range(1, 200_000):
            text = codes.sign_transparency(Payload(7, serial), SECRET)
            position = text.find("SS", 2)
            if position >= 0:
                break
    sneaky = "TP0" + text[2:position] + "ß" + text[position + 2 :]
    assert len(sneaky) == 30
    assert codes.read_bare(sneaky) is None
    with pytest.raises(InvalidCode):
        codes.parse(sneaky)


@pytest.mark.parametrize(
    "payload",
    [
        Payload(7, secrets.randbits(codes.SERIAL_BITS)),
        Payload(codes.MAX_KEY_ID, secrets.randbits(codes.SERIAL_BITS)),  # version 2's top id
        Payload(7, secrets.randbits(72), version=1),
    ],
    ids=["v2", "v2-largest-key-id", "v1"],
)
def test_exhaustively_every_substitution_of_one_code(payload: Payload) -> None:
    text = codes.sign_transparency(payload, SECRET)
    for position in range(len(text)):
        for symbol in crockford.ALPHABET:
            if symbol == text[position]:
                continue
            changed = text[:position] + symbol + text[position + 1 :]
            with pytest.raises(InvalidCode) as info:
                codes.parse(changed)
            if position >= 2:  # past the prefix, the check symbol is what catches it
                assert info.value.reason == "bad_check_character"


def test_adjacent_swaps_are_rejected() -> None:
    text = codes.sign_transparency(Payload(9, secrets.randbits(codes.SERIAL_BITS)), SECRET)
    for i in range(2, len(text) - 1):
        if text[i] != text[i + 1]:
            swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            with pytest.raises(InvalidCode):
                codes.parse(swapped)


@pytest.mark.parametrize(
    "dress",
    [
        lambda t: t.lower(),
        lambda t: f"  {t}\n",
        lambda t: "]Q1" + t,
        lambda t: f"{t[:2]}-{t[2:9]}-{t[9:16]}-{t[16:23]}-{t[23:]}",
        lambda t: f"https://verify.example.com/t/{t}",
        lambda t: f"HTTPS://VERIFY.EXAMPLE.COM/T/{t}",
        lambda t: f"https://brand.example/x/y/t/{t}?src=label",
        lambda t: t.replace("1", "I").replace("0", "O"),
    ],
)
def test_what_people_and_scanners_produce_parses(dress: object) -> None:
    text = codes.sign_transparency(Payload(33, secrets.randbits(codes.SERIAL_BITS)), SECRET)
    assert callable(dress)
    assert codes.parse(dress(text)).text == text


@given(payloads)
@settings(max_examples=50)
def test_offline_round_trip_and_signature(payload: Payload) -> None:
    text = codes.sign_offline(payload, PRIVATE)
    assert len(text) == codes.OFFLINE_LENGTH
    parsed = codes.parse(text)
    assert parsed.format is CodeFormat.OFFLINE
    assert parsed.payload == payload
    assert codes.verify_offline(parsed, PUBLIC)
    assert not codes.verify_offline(parsed, bytes(SigningKey.generate().verify_key))
    assert codes.unit_key_of_offline(parsed, SECRET) == codes.sign_transparency(payload, SECRET)


def test_offline_code_fits_qr_version_10_at_m() -> None:
    import qrcode

    text = codes.sign_offline(Payload(codes.MAX_KEY_ID, (1 << codes.SERIAL_BITS) - 1), PRIVATE)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    assert qr.version <= 10


def test_a_forged_offline_signature_fails() -> None:
    payload = Payload(5, 12345)
    text = codes.sign_offline(payload, SigningKey.generate())
    assert not codes.verify_offline(codes.parse(text), PUBLIC)


@pytest.mark.parametrize("public", [b"", b"x" * 31, b"x" * 33, PUBLIC[:-1] + b"\x00"])
def test_a_public_key_of_the_wrong_size_or_value_verifies_nothing(public: bytes) -> None:
    parsed = codes.parse(codes.sign_offline(Payload(5, 12345), PRIVATE))
    assert not codes.verify_offline(parsed, public)


def test_offline_signatures_are_plain_ed25519_any_library_checks() -> None:
    """Keys are stored as 32-byte seeds: OpenSSL (`cryptography`) derives the same public key
    from one and accepts libsodium's signature, so phones and stations may use either."""
    seed = b"s" * 32
    openssl = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = openssl.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == bytes(SigningKey(seed).verify_key)
    payload = Payload(9, 987654321)
    parsed = codes.parse(codes.sign_offline(payload, SigningKey(seed)))
    assert parsed.signature is not None
    openssl.verify(parsed.signature, b"transparency/v1/offline" + payload.to_bytes())


@given(st.text(max_size=200))
@settings(max_examples=500)
def test_parsing_is_total(text: str) -> None:
    try:
        parsed = codes.parse(text)
    except InvalidCode as exc:
        reason = exc.reason
        assert codes.read_bare(text) is None  # nothing parse refuses reads as a bare code
    else:
        reason = parsed.format.value
    assert reason


def test_gs1_serials_we_issue() -> None:
    gtin = "09506000134352"
    serial = codes.make_gs1_serial(gtin, secrets.randbits(65), SECRET)
    assert len(serial) == 20
    assert codes.verify_gs1_serial(gtin, serial, SECRET)
    assert not codes.verify_gs1_serial("09506000134369", serial, SECRET)
    assert not codes.verify_gs1_serial(gtin, serial, os.urandom(32))
    for position in range(len(serial)):
        for symbol in "0Z":
            if symbol != serial[position]:
                changed = serial[:position] + symbol + serial[position + 1 :]
                assert not codes.verify_gs1_serial(gtin, changed, SECRET)


@given(st.integers(0, (1 << 65) - 1))
def test_gs1_code_round_trip(random_value: int) -> None:
    gtin = "09506000134352"
    serial = codes.make_gs1_serial(gtin, random_value, SECRET)
    for text in (f"]d201{gtin}21{serial}", f"(01){gtin}(21){serial}",
                 f"https://id.example.com/01/{gtin}/21/{serial}"):  # fmt: skip
        parsed = codes.parse(text)
        assert parsed.format is CodeFormat.GS1
        assert (parsed.gtin, parsed.serial) == (gtin, serial)
        assert parsed.unit_key == codes.gs1_unit_key(gtin, serial)


# ---------------------------------------------------------------- version 2, version 1 kept

# Made by the first release's codes.py (version 1 only), key id 7, serial 123456789, under
# SECRET and PRIVATE: what is printed on labels already in the field.
V1_CODE = "TP807000000000XDWT59MQ0KJ75TQ5"
V1_OFFLINE = (
    "TPS807000000000XDWT5F6N904ZXXTY8QHSQCMPX0BWS2G7536NGPAZ4GCRWERGQDRGDKH32G4J88CT3F14AGBGFM30S"
    "FH7SJ2BM17JN3WXNJG6XYZ1S4XGEAG2X"
)


def _v1_sign(key_id: int, serial: int, secret: bytes) -> str:
    """Version 1 as the first release encoded it, copied here so that no change to
    codes.py can move both sides at once."""
    packed = (1 << 85) | (key_id << 72) | serial
    digest = hmac.digest(secret, b"transparency/v1/tag" + packed.to_bytes(11, "big"), "sha256")
    value = (packed << 48) | int.from_bytes(digest[:6], "big")
    return "TP" + crockford.encode_int(value, 27) + crockford.check_symbol(value, 27)


def test_new_codes_are_version_2_with_a_million_key_ids_in_30_characters() -> None:
    assert Payload(1, 0).version == codes.VERSION == 2
    assert codes.MAX_KEY_ID >= 1_000_000
    assert codes.TAG_BITS == 48
    largest = Payload(codes.MAX_KEY_ID, (1 << codes.SERIAL_BITS) - 1)
    text = codes.sign_transparency(largest, SECRET)
    assert len(text) == codes.TRANSPARENCY_LENGTH == 30
    assert codes.parse(text).payload == largest
    bare = codes.read_bare(text)
    assert bare is not None
    assert bare.key_id == codes.MAX_KEY_ID
    for key_id, serial in ((0, 0), (codes.MAX_KEY_ID + 1, 0), (1, 1 << codes.SERIAL_BITS)):
        with pytest.raises(ValueError, match="must"):
            Payload(key_id, serial)


def test_a_version_1_code_of_the_first_release_still_parses_and_verifies() -> None:
    v1 = Payload(7, 123456789, version=1)
    assert _v1_sign(7, 123456789, SECRET) == V1_CODE
    parsed = codes.parse(V1_CODE)
    assert parsed.payload == v1
    assert codes.verify_tag(parsed, SECRET)
    assert codes.sign_transparency(v1, SECRET) == V1_CODE
    bare = codes.read_bare(V1_CODE.lower())
    assert bare is not None
    assert (bare.text, bare.key_id) == (V1_CODE, 7)
    assert codes.tag_matches(bare.payload, bare.tag, SECRET)
    offline = codes.parse(V1_OFFLINE)
    assert offline.payload == v1
    assert codes.verify_offline(offline, PUBLIC)
    assert codes.unit_key_of_offline(offline, SECRET) == V1_CODE


@given(st.integers(1, (1 << 13) - 1), st.integers(0, (1 << 72) - 1), secrets_)
def test_every_version_1_code_reads_as_the_first_release_wrote_it(
    key_id: int, serial: int, secret: bytes
) -> None:
    text = _v1_sign(key_id, serial, secret)
    parsed = codes.parse(text)
    assert parsed.payload == Payload(key_id, serial, version=1)
    assert codes.verify_tag(parsed, secret)
    bare = codes.read_bare(text)
    assert bare is not None
    assert bare.key_id == key_id
    assert codes.tag_matches(bare.payload, bare.tag, secret)


def test_a_tag_or_signature_made_for_one_version_verifies_nothing_in_the_other() -> None:
    v1, v2 = Payload(7, 5, version=1), Payload(7, 5)
    crossed = codes.parse(codes.encode_transparency(v2, codes.tag_of(v1, SECRET)))
    assert not codes.verify_tag(crossed, SECRET)
    signature = codes.parse(codes.sign_offline(v1, PRIVATE)).signature
    assert signature is not None
    assert not codes.verify_offline(codes.parse(codes.encode_offline(v2, signature)), PUBLIC)


@pytest.mark.parametrize("version", [0, 3])
def test_a_version_we_never_issued_is_refused(version: int) -> None:
    value = ((version << 85) | (7 << codes.SERIAL_BITS) | 5) << 48 | 12345
    text = "TP" + crockford.encode_int(value, 27) + crockford.check_symbol(value, 27)
    assert codes.read_bare(text) is None
    with pytest.raises(InvalidCode) as info:
        codes.parse(text)
    assert info.value.reason == "unsupported_version"


def test_issuance_makes_version_2_codes_from_63_random_bits() -> None:
    made = issuance.generate("transparency", codes.MAX_KEY_ID, SECRET, "09506000134352", 2000)
    payloads = [codes.parse(text).payload for text in made]
    assert all(p is not None and p.version == 2 and p.key_id == codes.MAX_KEY_ID for p in payloads)
    serials = [p.serial for p in payloads if p is not None]
    assert len(set(serials)) == 2000
    # The serial's top bit is drawn too (none of 2,000 having it: a chance of 2**-2000).
    assert any(serial >> (codes.SERIAL_BITS - 1) for serial in serials)


@given(payloads)
def test_grouped_codes_read_aloud_in_fours_and_parse_back_with_spaces_or_hyphens(
    payload: Payload,
) -> None:
    text = codes.sign_transparency(payload, SECRET)
    printed = codes.grouped(text)
    assert printed.split() == [text[i : i + 4] for i in range(0, 30, 4)]
    key = replace(KEY, id=payload.key_id)
    for typed in (printed, printed.replace(" ", "-"), printed.lower(), f" {printed} "):
        assert codes.parse(typed).text == text
        # The check every scan gets, at a station or a customer's, takes it back too.
        checked = authenticity.check(typed, {payload.key_id: key}.get)
        assert (checked.unit_key, checked.reason) == (text, None)


def test_grouped_gs1_text_breaks_between_element_strings_and_parses_back() -> None:
    text = "(01)09506000134352(10)LOT42(17)261231(21)XYZ9"
    assert codes.grouped(text) == "(01)09506000134352 (10)LOT42 (17)261231 (21)XYZ9"
    assert codes.parse(codes.grouped(text)).text == codes.parse(text).text
    assert codes.grouped("not a code") == "not a code"
