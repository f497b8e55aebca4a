"""The resolver's rules without a database: choosing a link, the linkset, checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from transparency.domain import resolver as r
from transparency.domain.errors import InvalidInput, NotFound

ROOT = "https://id.example"
EN = r.Link("pip", "https://b.example/en", "Page", ("en",), "text/html")
FR = r.Link("pip", "https://b.example/fr", "Page FR", ("fr",), "text/html")
PDF = r.Link("instructions", "https://b.example/how.pdf", "How", (), "application/pdf")
LK = r.Link("instructions", "https://b.example/lk", "How LK", (), None, "LK")
CERT = r.Link("certificationInfo", "https://b.example/cert", "Cert")
RECALL = r.Link("recallStatus", "https://b.example/recall", "Recall")
VERIFY = r.Link(r.VERIFICATION, f"{ROOT}/verify/01/1/21/S", "Verify", ("en", "fr"), "text/html",
                is_default=True)  # fmt: skip


def entries(*unit: r.Link) -> list[r.Entry]:
    return [
        r.Entry(f"{ROOT}/01/1/10/L/21/S", "unit", (RECALL, *unit, VERIFY)),
        r.Entry(f"{ROOT}/01/1/10/L", "lot", (CERT,)),
        r.Entry(f"{ROOT}/01/1", "product", (EN, FR, PDF, LK)),
    ]


def want(query: str = "", accept: str | None = None, language: str | None = None) -> r.Wanted:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    return r.wanted([(k, v) for k, v in pairs], accept, language)


@pytest.mark.parametrize(
    ("query", "accept", "language", "expected"),
    [
        ("", None, None, VERIFY),  # the default
        ("", "*/*", "fr", VERIFY),  # nothing better of the default's type
        ("linkType=gs1:pip", None, None, EN),  # first made, on equal terms
        ("linkType=gs1:pip", None, "fr-BE, en;q=0.4", FR),
        ("linkType=gs1:pip", None, "de, en;q=0.2", EN),
        ("linkType=https://gs1.org/voc/pip", None, "fr", FR),
        ("linkType=gs1:instructions", None, None, PDF),  # no context asked: the plain one
        ("linkType=gs1:instructions&context=LK", None, None, LK),
        ("linkType=gs1:instructions", "application/pdf", None, PDF),
        ("linkType=gs1:certificationInfo", None, None, CERT),  # walks up to the lot
        ("linkType=gs1:recallStatus", None, None, RECALL),
    ],
)
def test_choose(query: str, accept: str | None, language: str | None, expected: r.Link) -> None:
    assert r.choose(entries(), want(query, accept, language)) == expected


def test_the_most_specific_level_wins() -> None:
    unit_pip = r.Link("pip", "https://b.example/unit", "Unit page", ("de",))
    chosen = r.choose(entries(unit_pip), want("linkType=gs1:pip", language="fr"))
    assert chosen == unit_pip  # the unit has a page: the product's French one is higher up


def test_an_unavailable_link_type_is_not_found() -> None:
    for query in ("linkType=gs1:smpc", "linkType=gs1:nosuchlt", "linkType=whatever"):
        with pytest.raises(NotFound):
            r.choose(entries(), want(query))


def test_a_brand_default_replaces_the_service_default_and_language_picks_its_variant() -> None:
    start = r.Link("pip", "https://b.example/start", "Start", ("en",), is_default=True)
    levels = [
        r.Entry("u", "unit", (RECALL, replace(VERIFY, is_default=False))),
        r.Entry("p", "product", (EN, FR, start)),
    ]
    assert r.choose(levels, want()) == start
    assert r.choose(levels, want(language="fr")) == FR
    assert r.choose(levels, want(language="de")) == start


@pytest.mark.parametrize(
    ("query", "accept", "linkset"),
    [
        ("linkType=linkset", None, True),
        ("linkType=all", None, True),
        ("", "application/linkset+json", True),
        ("", "text/html, application/linkset+json;q=0.5", True),
        ("", "application/linkset+json;q=0", False),
        ("", "*/*", False),
        ("", "text/html,application/xhtml+xml,*/*;q=0.8", False),
        ("linkType=gs1:pip", "application/linkset+json", False),  # the type is asked for
    ],
)
def test_when_the_linkset_is_wanted(query: str, accept: str | None, linkset: bool) -> None:
    assert want(query, accept).linkset is linkset


def test_linkset_shape() -> None:
    found = r.linkset(entries())
    unit, lot, product = found["linkset"]
    assert [e["anchor"] for e in found["linkset"]] == [
        f"{ROOT}/01/1/10/L/21/S",
        f"{ROOT}/01/1/10/L",
        f"{ROOT}/01/1",
    ]
    assert unit[f"{r.GS1_VOC}defaultLink"] == [{"href": VERIFY.href, "title": "Verify"}]
    assert f"{r.GS1_VOC}defaultLink" not in lot
    assert f"{r.GS1_VOC}defaultLink" not in product
    assert unit[f"{r.GS1_VOC}verificationService"] == [
        {"href": VERIFY.href, "title": "Verify", "hreflang": ["en", "fr"], "type": "text/html"}
    ]
    assert product[f"{r.GS1_VOC}instructions"][1] == {
        "href": LK.href,
        "title": "How LK",
        "context": ["LK"],
    }
    assert product["itemDescription"] == "product"


def test_query_is_passed_on_before_a_fragment() -> None:
    assert r.with_query("https://a.example/p", "") == "https://a.example/p"
    assert r.with_query("https://a.example/p", "x=1&y=2") == "https://a.example/p?x=1&y=2"
    assert r.with_query("https://a.example/p?a=b", "x=1") == "https://a.example/p?a=b&x=1"
    assert r.with_query("https://a.example/p#top", "x=1") == "https://a.example/p?x=1#top"


def test_link_header() -> None:
    plain = r.link_header(f"{ROOT}/01/1", context=False, same_as=None)
    assert plain == (
        f'<{ROOT}/01/1?linkType=linkset>; rel="linkset"; type="application/linkset+json"'
    )
    full = r.link_header(f"{ROOT}/01/1", context=True, same_as=f"{ROOT}/01/1")
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in full
    assert full.endswith(f'<{ROOT}/01/1>; rel="owl:sameAs"')


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("link_type", {"link_type": "pip"}),  # a bare term is not an IRI or CURIE
        ("link_type", {"link_type": "gs1:inventedHere"}),
        ("link_type", {"link_type": "https://schema.org/pip"}),
        ("href", {"href": "http://b.example/"}),  # https only
        ("href", {"href": "javascript:alert(1)"}),
        ("href", {"href": "https://b.example/a b"}),
        ("title", {"title": "x" * 201}),
        ("language", {"language": "english"}),
        ("language", {"language": "zh-Hant"}),  # refused by GS1's linkset schema
        ("media_type", {"media_type": "html"}),
        ("context", {"context": "a b"}),
    ],
)
def test_check_link_refuses(field: str, kwargs: dict[str, str]) -> None:
    fields = {"link_type": "gs1:pip", "href": "https://b.example/p", "title": None,
              "language": None, "media_type": None, "context": None, **kwargs}  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        r.check_link(**fields)  # type: ignore[arg-type]
    assert caught.value.extra["errors"][0]["field"] == field


def test_check_link_normalises() -> None:
    link = r.check_link("https://ref.gs1.org/voc/pip", "https://b.example/p", " ", "FR-be",
                        "text/html", "BE")  # fmt: skip
    assert link == r.Link("pip", "https://b.example/p", "Product information page", ("fr-BE",),
                          "text/html", "BE")  # fmt: skip


def test_description_file() -> None:
    found = r.description(ROOT, "Transparency")
    assert found["resolverRoot"] == ROOT
    assert found["supportedPrimaryKeys"] == ["01"]
    assert found["jsonLdContextLocation"] == r.LINKSET_CONTEXT
