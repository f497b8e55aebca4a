"""The Digital Link parser against GS1's reference implementation's own test vectors.

tests/data/gs1-syntax-engine/dl_vectors.json holds every case of gs1-syntax-engine's
``test_dl_parseDLuri``, ``test_dl_testValidateDLpathAIseq`` and ``test_dl_generateDLuri``
(src/c-lib/dl.c; Apache-2.0, see LICENSE-NOTE.md there), with the encoder options each was
run under. A parse vector passes when we accept exactly what it accepts, with the same AI
data. Strict mode is held to each vector as run; lenient mode to the default-mode vectors,
and it may differ from them only by a named tolerance.

Each disagreement is listed below with its reason, so a change in agreement either way
fails a test: the counts are the figures the README quotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from transparency.domain import gs1
from transparency.domain.digital_link import parse_digital_link
from transparency.domain.errors import InvalidCode

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data/gs1-syntax-engine/dl_vectors.json").read_text()
)
PARSE: list[dict[str, Any]] = VECTORS["parse"]

_ALPHAS = "convenience alphas (/gtin/, /ser/) are deprecated by the standard; not read"
_UNKNOWN = "unknown AIs are refused: a verification service cannot check their values"
# Keyed by the vector's line in dl.c.
STRICT_DIVERGENCES = {
    1437: _ALPHAS,  # run with permitConvenienceAlphas on
    1438: _ALPHAS,
    1439: _ALPHAS,
    1767: _UNKNOWN,  # run with permitUnknownAIs on and unknown AIs allowed as attributes
}
LENIENT_DIVERGENCES = {
    **STRICT_DIVERGENCES,
    1344: "mixed_case_scheme",
    1454: "zero_suppressed_gtin",
    1464: "zero_suppressed_gtin",
    1474: "zero_suppressed_gtin",
    1489: "zero_suppressed_gtin",
    1499: "zero_suppressed_gtin",
    1730: "key_qualifier_in_query",
}
GENERATE_DIVERGENCES = {
    # The reference drops an AI repeated with the same value; gs1.digital_link refuses any
    # repeat (parse_gs1 refuses them too, see gs1._refuse_duplicates).
    2184: "repeated AI refused",
    2185: "repeated AI refused",
    2186: "repeated AI refused",
    2187: "repeated AI refused",
    2206: _UNKNOWN,
}


def _ours(uri: str, *, strict: bool) -> tuple[bool, str, tuple[str, ...]]:
    try:
        link = parse_digital_link(uri, strict=strict)
    except InvalidCode:
        return False, "", ()
    return True, "^" + gs1.element_string(link.ais(), separator="^"), link.tolerances


def _agrees(case: dict[str, Any], *, strict: bool) -> bool:
    ok, data, _ = _ours(case["uri"], strict=strict)
    return ok == case["ok"] and (not ok or data == case["element_string"])


def _strict_for(case: dict[str, Any]) -> bool:
    # A vector run with zero-suppressed GTINs permitted is the reference's lenient mode.
    return "zero_suppressed_gtin" not in case["options"]


@pytest.mark.parametrize("case", PARSE, ids=lambda case: f"dl.c:{case['line']}")
def test_parse_vector_strict(case: dict[str, Any]) -> None:
    agrees = _agrees(case, strict=_strict_for(case))
    assert agrees is (case["line"] not in STRICT_DIVERGENCES), case


DEFAULT_MODE = [case for case in PARSE if not case["options"]]


@pytest.mark.parametrize("case", DEFAULT_MODE, ids=lambda case: f"dl.c:{case['line']}")
def test_parse_vector_lenient_differs_only_by_a_named_tolerance(case: dict[str, Any]) -> None:
    ok, _, tolerances = _ours(case["uri"], strict=False)
    if case["line"] in LENIENT_DIVERGENCES:
        assert ok
        assert not case["ok"]
        assert tolerances == (LENIENT_DIVERGENCES[case["line"]],)
    else:
        assert _agrees(case, strict=False), case


def test_agreement_figures() -> None:
    strict = sum(_agrees(case, strict=_strict_for(case)) for case in PARSE)
    lenient = sum(_agrees(case, strict=False) for case in DEFAULT_MODE)
    assert (len(PARSE), strict) == (120, 116)
    assert (len(DEFAULT_MODE), lenient) == (102, 95)


# A valid value for each primary key; "1" is one for every key qualifier but (7040).
KEY_VALUES = {
    "00": "006141411234567890", "01": "09520123456788", "253": "1231231231232",
    "255": "0614141000012", "401": "12345678", "402": "12345678901234560",
    "414": "9520123456788", "415": "9520123456788", "417": "9520123456788",
    "8003": "09520123456788", "8004": "9520614141234567", "8006": "095201234567880102",
    "8010": "02001234", "8013": "1987654Ad4X4bL5ttr2310c2K",
    "8017": "123456789012345675", "8018": "123456789012345675",
}  # fmt: skip


@pytest.mark.parametrize("case", VECTORS["path_sequences"], ids=lambda c: "/".join(c["ais"]))
def test_valid_key_qualifier_sequences(case: dict[str, Any]) -> None:
    key, *qualifiers = case["ais"]
    path = "".join(f"/{ai}/{'1ABC' if ai == '7040' else '1'}" for ai in qualifiers)
    link = parse_digital_link(f"https://a/{key}/{KEY_VALUES[key]}{path}", strict=True)
    assert [ai for ai, _ in link.ais()] == case["ais"]


def test_every_primary_key_has_a_sequence_vector() -> None:
    assert {case["ais"][0] for case in VECTORS["path_sequences"]} | {"415"} == set(KEY_VALUES)


@pytest.mark.parametrize("case", VECTORS["generate"], ids=lambda case: f"dl.c:{case['line']}")
def test_generate_vector(case: dict[str, Any]) -> None:
    base = case["stem"] or "https://id.gs1.org"
    ok = case["ok"] and case["line"] not in GENERATE_DIVERGENCES
    if ok:
        assert gs1.digital_link(gs1.parse_gs1(case["bracketed"]).ais, base=base) == case["uri"]
    else:
        with pytest.raises((InvalidCode, ValueError)):
            gs1.digital_link(gs1.parse_gs1(case["bracketed"]).ais, base=base)
