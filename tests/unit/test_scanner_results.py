"""The one call from the scanner into the domain: a decoded text becomes a parsed code."""

from __future__ import annotations

import json

from scanner.results import Result, Symbology, _parse
from transparency.domain import codes

SECRET = b"s" * 32


def test_a_transparency_code_is_parsed() -> None:
    text = codes.sign_transparency(codes.Payload(3, 99), SECRET)
    parsed = _parse(f"https://verify.example/t/{text}", "]Q1")
    assert parsed is not None
    assert parsed.text == text
    assert parsed.symbology_identifier == "]Q1"


def test_the_symbology_identifier_makes_an_element_string_gs1() -> None:
    text = "010950600013435210LOT42\x1d1726123121XYZ9"
    parsed = _parse(text, "]d2")
    assert parsed is not None
    assert (parsed.gtin, parsed.serial) == ("09506000134352", "XYZ9")
    assert [ai for ai, _ in parsed.ais] == ["01", "10", "17", "21"]


def test_text_that_is_not_a_code_parses_to_none() -> None:
    assert _parse("Hello, world", "]Q1") is None
    assert _parse("https://example.com/menu", None) is None


def test_a_result_prints_its_parsed_code() -> None:
    text = codes.sign_transparency(codes.Payload(4, 5), SECRET)
    result = Result(
        text=text,
        symbology=Symbology.QR_CODE,
        symbology_identifier="]Q1",
        corners=((0, 0), (10, 0), (10, 10), (0, 10)),
        parsed=_parse(text, "]Q1"),
    )
    line = json.loads(json.dumps(result.as_json()))
    assert line["parsed"]["code"] == text
    assert line["parsed"]["format"] == "transparency"
