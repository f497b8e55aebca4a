"""transparency.domain.digital_link: the URI taken apart, put back, strict and lenient."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.cli import run
from transparency.domain import gs1
from transparency.domain.digital_link import TOLERANCES, DigitalLink, parse_digital_link
from transparency.domain.errors import InvalidCode

GTIN = "09506000134352"


def test_the_parts_of_a_uri() -> None:
    link = parse_digital_link(
        f"https://brand.example/p/01/{GTIN}/10/L%2F1/21/S?17=270101&linkType=gs1:pip&x#top"
    )
    assert link == DigitalLink(
        stem="https://brand.example/p",
        primary=("01", GTIN),
        qualifiers=(("10", "L/1"), ("21", "S")),
        attributes=(("17", "270101"),),
        extra=(("linkType", "gs1:pip"), ("x", "")),
        tolerances=(),
    )
    assert link.ais() == (("01", GTIN), ("10", "L/1"), ("21", "S"), ("17", "270101"))
    assert link.uri() == f"https://brand.example/p/01/{GTIN}/10/L%2F1/21/S?17=270101"
    assert (
        link.uri("https://id.gs1.org/") == f"https://id.gs1.org/01/{GTIN}/10/L%2F1/21/S?17=270101"
    )


def test_the_canonical_uri_corrects_every_tolerance() -> None:
    link = parse_digital_link("Https://b.example/01/9506000134352?21=S")
    assert link.tolerances == (
        "mixed_case_scheme",
        "zero_suppressed_gtin",
        "key_qualifier_in_query",
    )
    assert set(link.tolerances) == set(TOLERANCES)
    canonical = link.uri()
    assert canonical == f"https://b.example/01/{GTIN}/21/S"
    assert parse_digital_link(canonical, strict=True).ais() == link.ais()


def test_plus_is_a_space_in_the_query_and_itself_in_the_path() -> None:
    link = parse_digital_link(f"https://a/01/{GTIN}/22/A+B?99=X%2BY")
    assert link.qualifiers == (("22", "A+B"),)
    assert link.attributes == (("99", "X+Y"),)
    with pytest.raises(InvalidCode):  # a space is not in GS1 character set 82
        parse_digital_link(f"https://a/01/{GTIN}?99=X+Y")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (f"https://a/01/{GTIN}/235/T/21/S", "bad_key_qualifier_order"),  # sequences don't mix
        (f"https://a/01/{GTIN}/235/T?21=S", "invalid_ai"),  # (21) is not a data attribute
        ("https://a/414/9520123456788/254/X/7040/1ABC", "bad_key_qualifier_order"),
        ("https://a/00/006141411234567890?21=S", "invalid_ai"),
        (f"https://a/01/{GTIN}?999=1", "invalid_ai"),
        (f"https://a/01/{GTIN}?99=", "invalid_uri"),
        (f"https://a/01/{GTIN}/21/S?21=S", "conflicting_ai"),
        (f"ftp://a/01/{GTIN}", "invalid_uri"),
        (f"https://a/01/{GTIN}/21/S/", "invalid_uri"),
        ("https://a/about/us", "unknown_format"),
        ("https://a", "unknown_format"),
    ],
)
def test_refused(uri: str, reason: str) -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_digital_link(uri)
    assert caught.value.reason == reason


def test_the_gs1_code_of_a_uri_carries_its_tolerances() -> None:
    code = gs1.parse_gs1("]Q1https://a/01/9506000134352/21/S  ")
    assert (code.form, code.gtin, code.serial) == ("digital_link", GTIN, "S")
    assert code.tolerances == ("zero_suppressed_gtin",)
    assert gs1.parse_gs1(f"(01){GTIN}(21)S", strict=True).tolerances == ()


serials = st.text(st.sampled_from("ABCxyz019!\"%&'()*+,-./:;<=>?_"), min_size=1, max_size=20)


@given(serials, serials)
def test_written_then_read_strictly_gives_the_same_ais(lot: str, serial: str) -> None:
    ais = (("01", GTIN), ("10", lot), ("21", serial), ("17", "270101"))
    uri = gs1.digital_link(ais, base="https://brand.example/x")
    link = parse_digital_link(uri, strict=True)
    assert link.ais() == (ais[0], ais[1], ais[2], ais[3])
    assert link.uri() == uri


def _codegen_parse(*args: str, stdin: str = "") -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    status = run(["parse", *args], stdin=io.StringIO(stdin), stdout=out)
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


def test_codegen_parse_strict_prints_the_tolerances_and_exits_1() -> None:
    status, [line] = _codegen_parse("--strict", "https://b.example/01/9506000134352/21/S")
    assert status == 1
    assert (line["ok"], line["gtin"], line["tolerances"]) == (True, GTIN, ["zero_suppressed_gtin"])


def test_codegen_parse_strict_exits_0_for_a_uri_as_the_standard_writes_it() -> None:
    status, [line] = _codegen_parse("--strict", f"https://b.example/01/{GTIN}/21/S")
    assert (status, line["tolerances"]) == (0, [])


def test_codegen_parse_lenient_lists_tolerances_and_exits_0() -> None:
    status, [line] = _codegen_parse(f"HTTPs://b.example/01/{GTIN}?21=S")
    assert status == 0
    assert line["tolerances"] == ["mixed_case_scheme", "key_qualifier_in_query"]
    assert line["serial"] == "S"


def test_codegen_parse_strict_an_error_outranks_a_tolerance() -> None:
    texts = f"https://b.example/01/9506000134352\nnope\nhttps://b.example/01/{GTIN}\n"
    status, lines = _codegen_parse("--strict", "-", stdin=texts)
    assert status == 2
    assert [line["ok"] for line in lines] == [True, False, True]
