"""GS1 codes: round trips through every written form, strictness, and totality."""

from __future__ import annotations

import string
from datetime import date

import pytest
from biip import BiipException
from biip.checksums import gs1_standard_check_digit
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from transparency.domain import gs1
from transparency.domain.errors import InvalidCode
from transparency.domain.gs1 import (
    Gs1Code,
    bracketed,
    digital_link,
    element_string,
    is_valid_serial,
    parse_gs1,
    require_gtin_serial,
    split_symbology_identifier,
)

GTIN = "09506000134352"
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
SYMBOLOGIES = [None, "]d2", "]Q3", "]C1", "]e0"]


def with_check_digit(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


gtins = st.text(string.digits, min_size=13, max_size=13).map(with_check_digit)
set82 = st.text(SET_82, min_size=1, max_size=20)
# biip reads two-digit years in a window around today; these stay inside it until 2049.
expiries = st.dates(date(2000, 1, 1), date(2060, 12, 31)).map(lambda d: d.strftime("%y%m%d"))


@st.composite
def ai_sets(draw: st.DrawFn) -> tuple[tuple[str, str], ...]:
    ais = [("01", draw(gtins))]
    optional = [("21", draw(set82)), ("10", draw(set82)), ("17", draw(expiries))]
    ais += [pair for pair in optional if draw(st.booleans())]
    return tuple(draw(st.permutations(ais)))


@given(ai_sets(), st.sampled_from(SYMBOLOGIES), st.sampled_from(["\x1d", "^", "<GS>", "{GS}"]))
@settings(max_examples=300)
def test_element_string_round_trip(
    ais: tuple[tuple[str, str], ...], sym: str | None, sep: str
) -> None:
    text = element_string(ais)
    if sep != "\x1d":
        # A wedge scanner's spelling of GS only stands in for GS when data cannot hold it.
        assume(sep not in "".join(value for _, value in ais))
        text = text.replace("\x1d", sep)
    code = parse_gs1((sym or "") + text)
    assert code == Gs1Code(ais, "element_string", sym)


@given(ai_sets())
def test_element_string_accepts_a_leading_fnc1_and_optional_separators(
    ais: tuple[tuple[str, str], ...],
) -> None:
    every_gap = "\x1d".join(ai + value for ai, value in ais)
    assert parse_gs1("\x1d" + every_gap).ais == ais


@given(ai_sets(), st.sampled_from(SYMBOLOGIES), st.sampled_from(["", " "]))
@settings(max_examples=300)
def test_bracketed_round_trip(ais: tuple[tuple[str, str], ...], sym: str | None, gap: str) -> None:
    # Bracketed text is ambiguous when a value itself contains "(NN)"; GS1 accepts that.
    assume(not any(gs1._BRACKETED_AI.search(value) for _, value in ais))
    text = gap.join(f"({ai}){gap}{value}" for ai, value in ais)
    assert text.replace(" ", "") == bracketed(ais).replace(" ", "")
    assert parse_gs1((sym or "") + text) == Gs1Code(ais, "bracketed", sym)


@given(ai_sets(), st.sampled_from(["https://id.gs1.org", "https://Brand.Example/products/x"]))
@settings(max_examples=300)
def test_digital_link_round_trip(ais: tuple[tuple[str, str], ...], base: str) -> None:
    code = parse_gs1(digital_link(ais, base=base))
    assert code.form == "digital_link"
    assert dict(code.ais) == dict(ais)
    # The path carries the key and its qualifiers in the standard order.
    path_order = [ai for ai, _ in code.ais if ai in ("01", "10", "21")]
    assert path_order == sorted(path_order, key=["01", "10", "21"].index)


@given(gtins, set82)
def test_every_single_character_change_of_the_gtin_is_rejected(gtin: str, serial: str) -> None:
    for index in range(14):
        for digit in string.digits:
            if digit == gtin[index]:
                continue
            changed = gtin[:index] + digit + gtin[index + 1 :]
            for text in (
                element_string((("01", changed), ("21", serial))),
                bracketed((("01", changed), ("21", serial))),
                digital_link((("01", changed), ("21", serial))),
            ):
                with pytest.raises(InvalidCode) as caught:
                    parse_gs1(text)
                assert caught.value.reason == "bad_check_digit", text


ACCEPTED = [
    ("]d2010950600013435221ABC\x1d10LOT1", ("01", "21", "10"), "element_string"),
    ("\x1d010950600013435221ABC\x1d10LOT1", ("01", "21", "10"), "element_string"),
    ("010950600013435217270100^21ABC", ("01", "17", "21"), "element_string"),
    ("010950600013435221ABC{GS}10LOT1", ("01", "21", "10"), "element_string"),
    ("]C1010950600013435221ABC<GS>10LOT1\n", ("01", "21", "10"), "element_string"),
    ("(01)09506000134352(21)ABC", ("01", "21"), "bracketed"),
    ("  (01) 09506000134352 (21) ABC (17) 270100\t", ("01", "21", "17"), "bracketed"),
    ("https://id.gs1.org/01/09506000134352/21/ABC", ("01", "21"), "digital_link"),
    ("https://brand.example/products/01/09506000134352/21/A%2FB", ("01", "21"), "digital_link"),
    ("HTTPS://ID.GS1.ORG/01/09506000134352/10/L%2D1/21/1?17=270101", None, "digital_link"),
    ("https://id.gs1.org/01/09506000134352/21/%22%25%3C?17=270101&10=LOT", None, "digital_link"),
    ("]Q3https://brand.example:8443/01/9506000134352/21/x?utm_source=box  ", None, "digital_link"),
    ("http://192.0.2.1/01/09506000134352/22/V/10/L/21/S", ("01", "22", "10", "21"), "digital_link"),
    # A fragment is the browser's business, not data (gs1-syntax-engine ignores it too).
    (
        "https://id.gs1.org/01/09506000134352/21/ABC#/01/09506000134369",
        ("01", "21"),
        "digital_link",
    ),
    # A second primary key is a data attribute like any other ("?" in the syntax dictionary).
    ("https://id.gs1.org/01/09506000134352?00=106141412345678908", ("01", "00"), "digital_link"),
]


@pytest.mark.parametrize(("text", "keys", "form"), ACCEPTED)
def test_real_world_forms_are_accepted(text: str, keys: tuple[str, ...] | None, form: str) -> None:
    code = parse_gs1(text)
    assert code.form == form
    assert code.gtin == GTIN
    if keys is not None:
        assert tuple(ai for ai, _ in code.ais) == keys


def test_values_are_decoded() -> None:
    code = parse_gs1("https://id.gs1.org/01/09506000134352/21/%22%25%3C?17=270101&10=LOT")
    # (10) belongs in the path: read leniently, it goes there, and the tolerance is named.
    assert code.ais == (("01", GTIN), ("10", "LOT"), ("21", '"%<'), ("17", "270101"))
    assert code.tolerances == ("key_qualifier_in_query",)
    assert parse_gs1("https://b.example/x/01/09506000134352/21/A%2FB").serial == "A/B"
    assert parse_gs1("]d2010950600013435221ABC").symbology_identifier == "]d2"
    assert require_gtin_serial(parse_gs1("(01)09506000134352(21)ABC")) == (GTIN, "ABC")


REJECTED = [
    ("hello world", "unknown_format"),
    ("", "unknown_format"),
    ("]d2", "unknown_format"),
    ("https://example.com/about/us", "unknown_format"),
    ("ftp://id.gs1.org/01/09506000134352", "invalid_uri"),
    ("https://id.gs1.org@evil.example/01/09506000134352", "invalid_uri"),
    ("https://bad_host.example/01/09506000134352", "invalid_uri"),
    ("https://-x.example/01/09506000134352", "invalid_uri"),
    ("https://id.gs1.org:99999/01/09506000134352", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134352/21/A B", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134352/21/%ZZ", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134352/21/%FF", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134352//21/ABC", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134352/21/ABC/", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134352/ser/ABC", "invalid_uri"),
    ("https://id.gs1.org/01/09506000134353/21/ABC", "bad_check_digit"),
    ("https://id.gs1.org/01/09506000134352/21/ABC/10/LOT", "bad_key_qualifier_order"),
    ("https://id.gs1.org/01/09506000134352/21/ABC/22/V", "bad_key_qualifier_order"),
    ("https://id.gs1.org/01/09506000134352/10/L/22/V", "bad_key_qualifier_order"),
    ("https://id.gs1.org/01/09506000134352/17/270101", "bad_key_qualifier_order"),
    ("https://id.gs1.org/01/09506000134352/21/A/21/B", "duplicate_ai"),
    ("https://id.gs1.org/01/09506000134352?17=270101&17=270102", "duplicate_ai"),
    ("https://id.gs1.org/01/09506000134352?17=270101&17=270101", "duplicate_ai"),
    ("https://id.gs1.org/01/09506000134352/21/ABC?21=ABC", "conflicting_ai"),
    ("https://id.gs1.org/01/09506000134352/10/L?10=M", "conflicting_ai"),
    ("https://id.gs1.org/01/09506000134352?01=09506000134352", "conflicting_ai"),
    ("https://id.gs1.org/01/09506000134352?99999=1", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352?2100=1", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352/21/%E2%82%AC", "invalid_ai"),
    ("https://id.gs1.org/01/0950600013435%D9%A2", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352?17=270231", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352?17=271301", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352?17=2701", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352?3103=12a456", "invalid_ai"),
    ("https://id.gs1.org/01/09506000134352/21/" + "A" * 21, "invalid_ai"),
    ("0109506000134353", "bad_check_digit"),
    ("(01)09506000134353(21)ABC", "bad_check_digit"),
    ("0109506000134352" + "21" + "A" * 21, "invalid_ai"),
    ("010950600013435221AB C", "invalid_ai"),
    ("01095060001343\u06652", "invalid_ai"),
    ("0109506000134352\x1d\x1d21ABC", "invalid_ai"),
    ("010950600013435221ABC\x1d21ABC", "duplicate_ai"),
    ("010950600013435221ABC\x1d21ABD", "duplicate_ai"),
    ("(01)09506000134352(21)ABC(21)ABC", "duplicate_ai"),
    ("(01)09506000134352(17)270230", "invalid_ai"),
    ("(99999)1", "invalid_ai"),
    ("x(01)09506000134352", "unknown_format"),
    ("(01)09506000134352(21)", "invalid_ai"),
    ("9", "invalid_ai"),
]


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_strict_rejections(text: str, reason: str) -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_gs1(text)
    assert caught.value.reason == reason, caught.value.detail


def test_gtin_and_serial_are_required_only_when_asked() -> None:
    sscc = parse_gs1("https://id.gs1.org/00/106141412345678908")
    assert sscc.gtin is None
    with pytest.raises(InvalidCode) as caught:
        require_gtin_serial(sscc)
    assert caught.value.reason == "missing_gtin"
    with pytest.raises(InvalidCode) as caught:
        require_gtin_serial(parse_gs1("(01)09506000134352(10)LOT"))
    assert caught.value.reason == "missing_serial"


def test_writers() -> None:
    ais = (("01", GTIN), ("10", "L/1"), ("21", "S?x"), ("17", "270100"))
    assert element_string(ais) == "010950600013435210L/1\x1d21S?x\x1d17270100"
    assert element_string((("01", GTIN), ("17", "270100"), ("21", "S"))) == (
        "01095060001343521727010021S"
    )
    assert bracketed(ais) == "(01)09506000134352(10)L/1(21)S?x(17)270100"
    assert digital_link(ais) == "https://id.gs1.org/01/09506000134352/10/L%2F1/21/S%3Fx?17=270100"
    assert digital_link(ais[:1], base="https://b.example/p/") == (
        "https://b.example/p/01/09506000134352"
    )
    with pytest.raises(ValueError, match="primary key"):
        digital_link((("21", "S"),))


def test_split_symbology_identifier() -> None:
    assert split_symbology_identifier("]d2010950") == ("]d2", "010950")
    assert split_symbology_identifier("]Q3https://x") == ("]Q3", "https://x")
    assert split_symbology_identifier("]e0") == ("]e0", "")
    assert split_symbology_identifier("]dx01") == (None, "]dx01")
    assert split_symbology_identifier("(01)") == (None, "(01)")


@given(set82)
def test_set_82_serials_are_valid(serial: str) -> None:
    assert is_valid_serial(serial)


@pytest.mark.parametrize("serial", ["", "A" * 21, "A B", "É", "\u0665", "A\n", "a|b", "#1"])
def test_other_serials_are_not(serial: str) -> None:
    assert not is_valid_serial(serial)


def assert_total(text: str) -> None:
    try:
        result = parse_gs1(text)
    except InvalidCode:
        return
    assert isinstance(result, Gs1Code)


@given(st.text(max_size=300))
@settings(max_examples=1000)
def test_parsing_arbitrary_text_is_total(text: str) -> None:
    assert_total(text)


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_parsing_arbitrary_bytes_is_total(data: bytes) -> None:
    assert_total(data.decode("latin-1"))


PREFIXES = ["", "]d2", "\x1d", "(", "https://id.gs1.org/", "https://id.gs1.org/01/", "01", "(01)"]


@given(st.sampled_from(PREFIXES), st.text(SET_82 + "\x1d^/?&=#%()[]@: ", max_size=80))
@settings(max_examples=1000)
def test_parsing_gs1_looking_text_is_total(prefix: str, rest: str) -> None:
    assert_total(prefix + rest)


@given(ai_sets(), st.data())
@settings(max_examples=500)
def test_parsing_mutated_valid_codes_is_total(
    ais: tuple[tuple[str, str], ...], data: st.DataObject
) -> None:
    text = data.draw(st.sampled_from([element_string(ais), bracketed(ais), digital_link(ais)]))
    position = data.draw(st.integers(0, len(text)))
    operation = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    char = data.draw(st.characters())
    if operation == "insert":
        text = text[:position] + char + text[position:]
    elif operation == "delete":
        text = text[:position] + text[position + 1 :]
    else:
        text = text[:position] + char + text[position + 1 :]
    assert_total(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidCode):
        parse_gs1(b"0109506000134352")  # type: ignore[arg-type]


# The fast path for common AIs must say exactly what biip says.
_FAST_CASE_AIS = st.sampled_from(["01", "10", "21", "17", "11", "15", "240", "30", "00"])
_VALUES = st.one_of(
    st.text(alphabet="0123456789", min_size=0, max_size=16),
    st.text(alphabet='0123456789ABCxyz-/!%"', min_size=0, max_size=22),
    st.builds(
        lambda y, m, d: f"{y:02d}{m:02d}{d:02d}",
        st.integers(0, 99),
        st.integers(0, 13),
        st.integers(0, 32),
    ),
)


def _outcome(body: str, fast: bool) -> object:
    try:
        return gs1._parse_element_string(body, fast=fast)
    except InvalidCode as exc:
        return exc.reason
    except (BiipException, ValueError):
        return "invalid_ai"  # as parse_gs1 reports them


@given(st.lists(st.tuples(_FAST_CASE_AIS, _VALUES), min_size=1, max_size=4), st.booleans())
@settings(max_examples=2000)
def test_the_fast_path_agrees_with_biip(elements: list[tuple[str, str]], separate: bool) -> None:
    body = ("\x1d" if separate else "").join(ai + value for ai, value in elements)
    assert _outcome(body, fast=True) == _outcome(body, fast=False)


def test_the_fast_path_agrees_on_real_codes() -> None:
    for body in [
        "0109506000134352" + "21ABC",
        "0109506000134352" + "17261231" + "10LOT1\x1d21XYZ",
        "0109506000134353" + "21ABC",
        "0109506000134352" + "17260230" + "21A",
        "0109506000134352" + "17240229" + "21A",
        "0109506000134352" + "17261300" + "21A",
        "0109506000134352" + "21" + "A" * 21,
    ]:
        assert _outcome(body, fast=True) == _outcome(body, fast=False), body
