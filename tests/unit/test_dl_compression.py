"""Compressed GS1 Digital Link URIs: GS1's own vectors, then round trips of many values.

Each vector's compressed segment was made by GS1's toolkit (GS1DigitalLinkToolkit.js, as
shipped with gs1/GS1_DigitalLink_Resolver_CE), with and without its optimisation codes
(``compressGS1DigitalLink(uri, false, stem, false, optimise, compressOther)``); the first
two are also the examples of GS1's documentation and of the gs1-compression package.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.dl_compression import compress
from transparency.domain import gs1
from transparency.domain.digital_link import parse_digital_link
from transparency.domain.dl_compression import FORMATS, TABLE_OPT, TABLE_P, decompress
from transparency.domain.errors import InvalidCode

G = "09506000134352"
VECTORS: list[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = [
    ("ARHKVAdpQg", (("01", "09780345418913"),), ()),
    ("QUCO_anbfA", (("414", "0614141123452"),), ()),
    ("DgnYUc1gmji3NU0IREGFDTK2LJm", (("01", "05412345000013"), ("7003", "1903061658"),
                                     ("10", "ABC&+123")), ()),
    ("AQnYUc1gmiERBhQ0ytiyZuAGOLc1TQ", (("01", "05412345000013"), ("10", "ABC&+123"),
                                        ("7003", "1903061658")), ()),
    ("DBFKk4XBoI1XgkY", (("01", G), ("21", "ABC123")), ()),
    ("ARFKk4XBoEKNV4JG", (("01", G), ("21", "ABC123")), ()),
    ("GhFKk4XBoMRfcLTWsV7JJZW", (("01", G), ("10", "L7"), ("21", "S-1/2"), ("17", "300630")), ()),
    ("ARFKk4XBoCDEX2LpLKxDC01rFey", (("01", G), ("10", "L7"), ("17", "300630"),
                                     ("21", "S-1/2")), ()),
    ("DBFKk4XBoOmmu2_HPXfnoAIQYgow5JQ", (("01", G), ("21", "0123456789ABCDEFGHJK")), ()),
    ("ARFKk4XBoELpprtvxz1356ACEGIKMOSU", (("01", G), ("21", "0123456789ABCDEFGHJK")), ()),
    ("CxFKk4XBoMstFvGw", (("01", G), ("10", "lot42")), ()),
    ("ARFKk4XBoCDLLRbxs", (("01", G), ("10", "lot42")), ()),
    ("GhFKk4XBoIdXjHjlmf43kSEVGIGABeg", (("01", G), ("10", "ABC"), ("21", "xyz"),
                                         ("17", "261231"), ("22", "2A"), ("3103", "000189")), ()),
    ("ARFKk4XBoCCHV4Ln-N5Cx45ZkSEVGIGABeg", (("01", G), ("10", "ABC"), ("17", "261231"),
                                             ("21", "xyz"), ("22", "2A"), ("3103", "000189")), ()),
    ("DBFKk4XBoM1j1cTUviJYp5E8qXoHz82Lrhp4eDutmYHE", (("01", G), ("21", "serial")),
     (("linkType", "gs1:pip"), ("utm", "x"))),
    ("ARFKk4XBoEKFQ-BkYG_wgDf_sFyMuzZvQV9_LZk", (("01", G), ("21", "A1")),
     (("k", "v"), ("Ab_9", "Hello World"))),
]  # fmt: skip


@pytest.mark.parametrize(("segment", "ais", "other"), VECTORS)
def test_gs1_toolkit_vectors_decompress(
    segment: str, ais: tuple[tuple[str, str], ...], other: tuple[tuple[str, str], ...]
) -> None:
    found = decompress(segment)
    assert found.ais == ais
    assert found.other == other


def test_a_vector_is_the_uri_gs1_names() -> None:
    found = decompress("GhFKk4XBoIdXjHjlmf43kSEVGIGABeg")
    uri = gs1.digital_link(found.ais, base="https://example.com")
    assert uri == "https://example.com/01/09506000134352/22/2A/10/ABC/21/xyz?17=261231&3103=000189"
    assert parse_digital_link(uri).uri() == uri


@pytest.mark.parametrize(
    "segment",
    [
        "",  # nothing
        "AR",  # shorter than one element
        "ARHKVAdp",  # (01) cut short
        "ab!cd",  # not base64url
        "_____________",  # a non-GS1 key longer than the segment
        "7777777777",  # 0xEF: no optimisation code, no AI
    ],
)
def test_what_is_not_a_compressed_uri_is_refused(segment: str) -> None:
    with pytest.raises(InvalidCode):
        decompress(segment)


def test_the_tables_cover_each_other() -> None:
    """Every AI an optimisation code names has a format; every table entry is well formed."""
    for run in TABLE_OPT.values():
        assert all(ai in FORMATS for ai in run)
    for ai, layout in FORMATS.items():
        assert TABLE_P[ai[:2]] == len(ai), ai
        for part in layout.split():
            assert part[0] in "NX", (ai, layout)
            assert part.lstrip("NX.").isdigit(), (ai, layout)


_SERIAL = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._/!'()*+,:;=%&",
    min_size=1,
    max_size=20,
)


@given(serial=_SERIAL, lot=st.one_of(st.none(), _SERIAL), key=st.text("abcxyzXYZ_-0", min_size=1))
def test_round_trip(serial: str, lot: str | None, key: str) -> None:
    ais = [("01", G), *([("10", lot)] if lot else []), ("21", serial)]
    other = [(key, "v a")]
    found = decompress(compress(ais, other))
    assert list(found.ais) == ais
    assert list(found.other) == other
