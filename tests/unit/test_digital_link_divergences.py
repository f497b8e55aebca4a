"""The divergences from the GS1 Digital Link URI syntax standard named in issue 17, one test
each, through ``parse_gs1`` (what the checks call). Each failed on the parser before it."""

from __future__ import annotations

import pytest

from transparency.domain.errors import InvalidCode
from transparency.domain.gs1 import parse_gs1

GTIN = "09506000134352"


def test_a_fragment_is_ignored() -> None:
    code = parse_gs1(f"https://id.gs1.org/01/{GTIN}/21/ABC#/01/09506000134369")
    assert code.ais == (("01", GTIN), ("21", "ABC"))


def test_the_primary_key_is_found_from_the_end_of_the_path() -> None:
    code = parse_gs1("https://a/00/faux/00/006141411234567890")
    assert code.ais == (("00", "006141411234567890"),)


def test_a_giai_path_may_carry_a_gtin_data_attribute() -> None:
    code = parse_gs1("https://example.com/8004/9520614141234567?01=09520123456788")
    assert code.ais == (("8004", "9520614141234567"), ("01", "09520123456788"))


@pytest.mark.parametrize("query", ["10=ABC123", "21=S1", "22=V"])
def test_a_key_qualifier_in_the_query_is_refused_in_strict_mode(query: str) -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_gs1(f"https://example.com/01/{GTIN}?{query}", strict=True)
    assert caught.value.reason == "key_qualifier_in_query"


def test_a_key_qualifier_in_the_query_is_a_named_tolerance() -> None:
    code = parse_gs1(f"https://example.com/01/{GTIN}?10=ABC123&17=270101")
    assert code.ais == (("01", GTIN), ("10", "ABC123"), ("17", "270101"))
    assert code.tolerances == ("key_qualifier_in_query",)


@pytest.mark.parametrize("gtin", ["9506000134352", "506000134352", "95060005"])
def test_a_short_gtin_in_the_path_is_refused_in_strict_mode(gtin: str) -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_gs1(f"https://id.gs1.org/01/{gtin}", strict=True)
    assert caught.value.reason == "zero_suppressed_gtin"


def test_a_short_gtin_in_the_path_is_a_named_tolerance() -> None:
    code = parse_gs1("https://id.gs1.org/01/9506000134352/21/S")
    assert code.gtin == GTIN
    assert code.tolerances == ("zero_suppressed_gtin",)


def test_a_mixed_case_scheme_is_refused_in_strict_mode() -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_gs1(f"Https://id.gs1.org/01/{GTIN}", strict=True)
    assert caught.value.reason == "mixed_case_scheme"


def test_a_mixed_case_scheme_is_a_named_tolerance() -> None:
    assert parse_gs1(f"HtTp://id.gs1.org/01/{GTIN}").tolerances == ("mixed_case_scheme",)


@pytest.mark.parametrize("scheme", ["https", "http", "HTTPS", "HTTP"])
def test_an_all_lower_or_all_upper_scheme_needs_no_tolerance(scheme: str) -> None:
    code = parse_gs1(f"{scheme}://id.gs1.org/01/{GTIN}", strict=True)
    assert (code.gtin, code.tolerances) == (GTIN, ())
