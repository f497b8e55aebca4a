"""The one call from the scanner into the service's domain: ``results._parse``."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from scanner import results
from scanner.results import Result, Symbology


class InvalidCode(Exception):
    pass


class FakeParsed:
    def __init__(self, text: str) -> None:
        self.text = text

    def as_json(self) -> dict[str, Any]:
        return {"code": self.text}


def fake_parse(text: str) -> FakeParsed:
    if "TP" not in text:
        raise InvalidCode("unknown_format")
    return FakeParsed(text)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    results._domain_modules.cache_clear()
    yield
    results._domain_modules.cache_clear()


@pytest.fixture
def fake_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    codes = types.ModuleType("transparency.domain.codes")
    errors = types.ModuleType("transparency.domain.errors")
    codes.parse = fake_parse  # type: ignore[attr-defined]
    errors.InvalidCode = InvalidCode  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "transparency.domain.codes", codes)
    monkeypatch.setitem(sys.modules, "transparency.domain.errors", errors)


@pytest.mark.usefixtures("fake_domain")
def test_the_symbology_identifier_is_prefixed() -> None:
    parsed = results._parse("TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD", "]Q1")
    assert parsed is not None
    assert parsed.as_json() == {"code": "]Q1TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD"}
    no_identifier = results._parse("TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD", None)
    assert no_identifier is not None
    assert no_identifier.as_json() == {"code": "TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD"}


@pytest.mark.usefixtures("fake_domain")
def test_text_that_is_not_a_code_parses_to_none() -> None:
    assert results._parse("http://example.com", "]Q1") is None


@pytest.mark.usefixtures("fake_domain")
def test_a_result_prints_its_parsed_code() -> None:
    parsed = results._parse("TP1", None)
    result = Result("TP1", Symbology.QR_CODE, None, ((0, 0),), parsed)
    assert result.as_json()["parsed"] == {"code": "TP1"}


def test_without_the_domain_module_nothing_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transparency.domain.codes", None)  # import fails
    assert results._parse("TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD", "]Q1") is None
