"""The resolver against the GS1-Conformant Resolver Standard 1.2.0, one test per clause.

Each test is named after the clause it checks: ``clause_2_6_2`` is section 2.6.2 of the
standard; the conformance statement (section 5) repeats its SHALLs, and GS1's resolver
test suite (gs1/GS1DL-resolver-testsuite, ``Conformance1_2.txt``) checks the same
statements against a deployed resolver. (The section numbers were matched to the
statements through a public clause-by-clause review of 1.2.x; check them against the
standard's text when it changes.) These tests drive the real app over HTTP with a
real PostgreSQL: brand links made through the API, answers read without following
redirects. A linkset is also validated against GS1's published linkset JSON schema
(gs1/linkset, ``gs1-linkset-schema.json``, kept in tests/data/gs1-resolver/).

Not tested here: 2.2's HTTPS, which is the deployment's (deploy/nginx.conf terminates
TLS), and 2.8's ``gs1:handledBy``, which concerns pattern-based redirection to other
resolvers, which this resolver does not do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.support.dl_compression import compress
from tests.support.world import World, bearer, expect
from transparency.domain import codes

GTIN_PATH = "/01/{gtin}"
DATA = Path(__file__).parent.parent / "data" / "gs1-resolver"
ROOT = "http://127.0.0.1:8000"  # the public URL of the tests' settings
VOC = "https://gs1.org/voc/"


async def add_link(
    client: httpx.AsyncClient, world: World, *, status: int = 201, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/products/{world.product_a['id']}/links", json=body, headers=bearer(world.brand_a)
    )
    return await expect(response, status)


@pytest.fixture
async def links(client: httpx.AsyncClient, world: World) -> World:
    """Product A with a product page in English and French, instructions, a lot's
    certificate and a unit's recall status; no brand default."""
    await add_link(
        client, world, link_type="gs1:pip", href="https://brand.example/en", language="en",
        title="Night serum", media_type="text/html",
    )  # fmt: skip
    await add_link(
        client, world, link_type="gs1:pip", href="https://brand.example/fr", language="fr",
        title="Sérum de nuit", media_type="text/html",
    )  # fmt: skip
    await add_link(
        client, world, link_type="gs1:instructions", href="https://brand.example/how.pdf",
        title="How to use", media_type="application/pdf", language="en",
    )  # fmt: skip
    await add_link(
        client, world, link_type="gs1:instructions", href="https://brand.example/how-lk",
        title="How to use (LK)", context="LK",
    )  # fmt: skip
    await add_link(
        client, world, link_type="gs1:certificationInfo", lot="L7",
        href="https://brand.example/cert/L7", title="Certificate of lot L7",
    )  # fmt: skip
    await add_link(
        client, world, link_type="gs1:recallStatus", serial="S1",
        href="https://brand.example/recall/S1", title="Recall status",
    )  # fmt: skip
    return world


def path(world: World, rest: str = "") -> str:
    return GTIN_PATH.format(gtin=world.product_a["gtin"]) + rest


def linkset_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/linkset+json"
    found: dict[str, Any] = response.json()
    return found


def entry(found: dict[str, Any], anchor: str) -> dict[str, Any]:
    (match,) = [e for e in found["linkset"] if e["anchor"] == anchor]
    return dict(match)


async def test_clause_2_1_every_key_qualifier_of_a_gtin_is_supported(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.1 / 5.1: for each supported primary key, every key qualifier (22, 10, 21, 235)."""
    for rest in ("/22/2A", "/10/L7", "/21/S1", "/10/L7/21/S1", "/22/2A/10/L7/21/S1", "/235/T1"):
        response = await client.get(path(links, rest))
        assert response.status_code == 307, (rest, response.text)


async def test_clause_2_2_answers_get_head_and_options(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.2 / 5.2: HTTP 1.1 GET, HEAD and OPTIONS."""
    got = await client.get(path(links, "/21/S1"))
    assert got.status_code == 307
    head = await client.head(path(links, "/21/S1"))
    assert head.status_code == 307
    assert head.headers["location"] == got.headers["location"]
    assert head.content == b""
    linkset_head = await client.head(path(links), params={"linkType": "linkset"})
    assert linkset_head.status_code == 200
    assert linkset_head.content == b""
    options = await client.options(path(links, "/21/S1"))
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


async def test_clause_2_2_supports_cors(client: httpx.AsyncClient, links: World) -> None:
    """2.2 / 5.4: CORS, on redirects, linksets, errors and the description file alike, and
    the preflight a browser sends before asking with Accept-Language."""
    for response in (
        await client.get(path(links)),
        await client.get(path(links), params={"linkType": "linkset"}),
        await client.get("/01/123"),
        await client.get(path(links), params={"linkType": "gs1:nothing"}),
        await client.get("/.well-known/gs1resolver"),
    ):
        assert response.headers["access-control-allow-origin"] == "*", response.url
    assert "Link" in (await client.get(path(links))).headers["access-control-expose-headers"]
    preflight = await client.options(
        path(links),
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Accept-Language" in preflight.headers["access-control-allow-headers"]


async def test_clause_2_3_decompresses_a_compressed_uri(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.3 / 5.5: a compressed URI is answered as its uncompressed form. The compressed
    form of /01/{gtin}/21/S1 is made by the tests' compressor (tests/support), whose bit
    layout the unit tests hold to GS1's toolkit's vectors."""
    segment = compress([("01", links.product_a["gtin"]), ("21", "S1")])
    compressed = await client.get(f"/{segment}", params={"linkType": "gs1:recallStatus"})
    plain = await client.get(path(links, "/21/S1"), params={"linkType": "gs1:recallStatus"})
    assert compressed.status_code == 307
    assert compressed.headers["location"] == plain.headers["location"]
    assert compressed.headers["location"].startswith("https://brand.example/recall/S1")


async def test_clause_2_3_exposes_the_uncompressed_uri_as_owl_same_as(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.3 / 5.6: the uncompressed URI in the Link header, rel="owl:sameAs"."""
    segment = compress([("01", links.product_a["gtin"]), ("21", "S1")])
    response = await client.get(f"/{segment}")
    uncompressed = f"{ROOT}{path(links, '/21/S1')}"
    assert f'<{uncompressed}>; rel="owl:sameAs"' in response.headers["link"]


async def test_clause_2_3_linkset_anchors_are_the_uncompressed_uri(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.3 / 5.10: the subject of the facts presented is the uncompressed URI."""
    segment = compress([("01", links.product_a["gtin"]), ("21", "S1")])
    found = linkset_of(await client.get(f"/{segment}", params={"linkType": "linkset"}))
    assert found["linkset"][0]["anchor"] == f"{ROOT}{path(links, '/21/S1')}"


@pytest.mark.parametrize(
    "bad",
    [
        "/01/09506000134353",  # check digit
        "/01/123",  # not a GTIN
        "/01/{gtin}/21/S1/10/L7",  # qualifiers out of order
        "/01/{gtin}/17/300630",  # a data attribute in the path
        "/01/{gtin}/21",  # an AI without its value
        "/01/{gtin}?10=L7&10=L8",  # an AI twice
        "/01/{gtin}/foo",  # the test suite's own probe
    ],
)
async def test_clause_2_4_1_syntax_errors_are_400(
    client: httpx.AsyncClient, world: World, bad: str
) -> None:
    """2.4.1 / 5.7: the URI is extracted and validated; errors are 400."""
    response = await client.get(bad.format(gtin=world.product_a["gtin"]))
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/invalid-digital-link"


async def test_clause_2_4_1_no_200_for_an_error(client: httpx.AsyncClient, world: World) -> None:
    """2.4.1 / 5.9: no 200 OK with a resource that says something went wrong, whatever the
    client accepts (a browser's Accept included)."""
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for bad in ("/01/09506000134353", "/01/123/21/x", "/01/x"):
        for headers in ({}, browser, {"Accept": "application/linkset+json"}):
            response = await client.get(bad, headers=headers)
            assert response.status_code == 400, (bad, headers)
            assert response.headers["content-type"] == "application/problem+json"


async def test_clause_2_5_3_every_link_has_target_type_title_and_language(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.5.1-2.5.4 / 5.11: each link has its target, link type and title, and its
    language where it has one; the link types are full IRIs (RFC 9264)."""
    found = linkset_of(await client.get(path(links, "/10/L7/21/S1?linkType=linkset")))
    checked = 0
    for item in found["linkset"]:
        for relation, targets in item.items():
            if relation in ("anchor", "itemDescription"):
                continue
            assert relation.startswith(VOC), relation
            for target in targets:
                assert target["href"].startswith(("https://", "http://"))
                assert target["title"]
                checked += 1
    assert checked == 8  # 4 product links, the lot's, the unit's, verification, default
    pip = entry(found, f"{ROOT}{path(links)}")[f"{VOC}pip"]
    assert [(p["title"], p["hreflang"]) for p in pip] == [
        ("Night serum", ["en"]),
        ("Sérum de nuit", ["fr"]),
    ]


async def test_clause_2_5_8_exactly_one_default_link_with_a_title_only(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.5.8 / 5.14: exactly one default link for the request, with a title and no other
    attribute; 5.12: it is also listed under its descriptive link type."""
    found = linkset_of(await client.get(path(links, "/21/S1"), params={"linkType": "linkset"}))
    defaults = [e[f"{VOC}defaultLink"] for e in found["linkset"] if f"{VOC}defaultLink" in e]
    assert len(defaults) == 1
    (default,) = defaults[0]
    assert set(default) == {"href", "title"}
    verification = found["linkset"][0][f"{VOC}verificationService"]
    assert default["href"] in [v["href"] for v in verification]


async def test_clause_2_5_9_a_default_link_at_every_level(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.5.9 / 5.16: whatever the request's level, there is a default at it or above: the
    service's verification page, unless the brand chose another."""
    for rest in ("", "/10/L7", "/21/S1", "/10/L9/21/S2"):
        response = await client.get(path(links, rest))
        assert response.status_code == 307
        assert response.headers["location"] == f"{ROOT}/verify{path(links, rest)}"


async def test_clause_2_5_9_linkset_holds_every_level_up_to_the_product(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.5.9 (rule 4): a request with key qualifiers gets the links of each level up to the
    primary key, each level under its own anchor."""
    found = linkset_of(await client.get(path(links, "/10/L7/21/S1?linkType=linkset")))
    anchors = [e["anchor"] for e in found["linkset"]]
    assert anchors == [
        f"{ROOT}{path(links, '/10/L7/21/S1')}",
        f"{ROOT}{path(links, '/10/L7')}",
        f"{ROOT}{path(links)}",
    ]
    unit, lot, product = found["linkset"]
    assert unit[f"{VOC}recallStatus"][0]["href"] == "https://brand.example/recall/S1"
    assert lot[f"{VOC}certificationInfo"][0]["href"] == "https://brand.example/cert/L7"
    assert {f"{VOC}pip", f"{VOC}instructions"} <= set(product)
    other_unit = linkset_of(await client.get(path(links, "/21/S2?linkType=linkset")))
    assert f"{VOC}recallStatus" not in other_unit["linkset"][0]  # S1's, not S2's
    variant = linkset_of(await client.get(path(links, "/22/2A?linkType=linkset")))
    assert [e["anchor"] for e in variant["linkset"]] == [
        f"{ROOT}{path(links, '/22/2A')}",
        f"{ROOT}{path(links)}",
    ]
    assert f"{VOC}pip" not in variant["linkset"][0]  # the product's, listed once, under it
    assert len(variant["linkset"][1][f"{VOC}pip"]) == 2


async def test_clause_2_2_redirects_307_to_the_default_link(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.2 (3b): without anything better asked, a 307 to the default link; a brand's own
    default replaces the verification page."""
    response = await client.get(path(links, "/21/S1"))
    assert response.status_code == 307
    assert response.headers["location"] == f"{ROOT}/verify{path(links, '/21/S1')}"
    await add_link(
        client, links, link_type="gs1:pip", href="https://brand.example/start",
        title="Start", is_default=True,
    )  # fmt: skip
    response = await client.get(path(links, "/21/S1"))
    assert response.status_code == 307
    assert response.headers["location"] == "https://brand.example/start"


async def test_clause_2_6_2_redirects_to_the_requested_link_type(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.6.2 / 5.17: a requested link type that is available is where the redirect goes,
    from the most specific level that has one; the type may be written as an IRI."""
    for link_type, rest, href in (
        ("gs1:instructions", "", "https://brand.example/how.pdf"),
        ("gs1:certificationInfo", "/10/L7/21/S1", "https://brand.example/cert/L7"),
        ("gs1:recallStatus", "/21/S1", "https://brand.example/recall/S1"),
        (f"{VOC}recallStatus", "/21/S1", "https://brand.example/recall/S1"),
        ("gs1:verificationService", "/21/S1", f"{ROOT}/verify{path(links, '/21/S1')}"),
    ):
        response = await client.get(path(links, rest), params={"linkType": link_type})
        assert response.status_code == 307, (link_type, response.text)
        assert response.headers["location"].split("?")[0] == href


async def test_clause_2_6_2_unavailable_link_type_is_404(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.6.2 / 5.18: a requested link type with no link is 404, not the default."""
    for link_type, rest in (
        ("gs1:nosuchlt", ""),
        ("gs1:recallStatus", "/21/S2"),  # S1 has one; S2 does not
        ("gs1:certificationInfo", ""),  # the lot has one; the product does not
    ):
        response = await client.get(path(links, rest), params={"linkType": link_type})
        assert response.status_code == 404, (link_type, rest)
        assert response.json()["type"] == "/problems/not-found"


async def test_clause_2_6_3_language_media_type_and_context_choose_between_links(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.6.3 / 5.20: Accept-Language (SHOULD), Accept and context (MAY) pick one of several
    links of a type, and a better match than the default's own type."""
    pip = {"linkType": "gs1:pip"}
    french = await client.get(
        path(links), params=pip, headers={"Accept-Language": "fr-CA,en;q=0.5"}
    )
    assert french.headers["location"].startswith("https://brand.example/fr")
    english = await client.get(path(links), params=pip, headers={"Accept-Language": "en-GB"})
    assert english.headers["location"].startswith("https://brand.example/en")
    how = {"linkType": "gs1:instructions"}
    pdf = await client.get(path(links), params=how, headers={"Accept": "application/pdf"})
    assert pdf.headers["location"].startswith("https://brand.example/how.pdf")
    sri_lanka = await client.get(path(links), params={**how, "context": "LK"})
    assert sri_lanka.headers["location"].startswith("https://brand.example/how-lk")
    plain = await client.get(path(links), params=how)
    assert plain.headers["location"].startswith("https://brand.example/how.pdf")
    # Without a link type, language picks among the default's type: a brand default in
    # English, and its French version for a French phone.
    await add_link(
        client, links, link_type="gs1:pip", href="https://brand.example/start",
        title="Start", language="en", is_default=True,
    )  # fmt: skip
    fr = await client.get(path(links), headers={"Accept-Language": "fr"})
    assert fr.headers["location"] == "https://brand.example/fr"
    de = await client.get(path(links), headers={"Accept-Language": "de"})
    assert de.headers["location"] == "https://brand.example/start"


async def test_clause_2_9_linkset_on_link_type_linkset_or_accept(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.2 (3c), 2.9: linkType=linkset (and the older linkType=all) or an Accept of
    application/linkset+json answer the linkset, with no redirect."""
    by_query = linkset_of(await client.get(path(links), params={"linkType": "linkset"}))
    by_all = linkset_of(await client.get(path(links), params={"linkType": "all"}))
    by_accept = linkset_of(
        await client.get(path(links), headers={"Accept": "application/linkset+json"})
    )
    assert by_query == by_all == by_accept
    browser = await client.get(path(links), headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.status_code == 307  # */* is not a request for the linkset


async def test_clause_2_10_linkset_is_rfc_9264_json_valid_against_gs1_schema(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.10: application/linkset+json, as RFC 9264 defines it, valid against GS1's
    published linkset schema."""
    schema = json.loads((DATA / "gs1-linkset-schema.json").read_text())
    for rest in ("", "/10/L7", "/21/S1", "/10/L7/21/S1"):
        found = linkset_of(await client.get(path(links, rest), params={"linkType": "linkset"}))
        jsonschema.validate(found, schema)
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(found))
    broken = {"linkset": [{"anchor": found["linkset"][0]["anchor"]}]}  # no itemDescription
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


async def test_clause_2_10_links_the_json_ld_context(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.10 / 5.13: a linkset's Link header names GS1's JSON-LD context for linksets."""
    response = await client.get(path(links), params={"linkType": "linkset"})
    assert (
        "<https://ref.gs1.org/standards/resolver/linkset-context>; "
        'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    ) in response.headers["link"]


async def test_clause_2_9_link_header_points_to_the_linkset_even_when_redirecting(
    client: httpx.AsyncClient, links: World
) -> None:
    """5 (SHOULD): a Link header to the linkset on every answer, a redirect included."""
    for params in ({}, {"linkType": "gs1:pip"}, {"linkType": "linkset"}):
        response = await client.get(path(links, "/21/S1"), params=params)
        assert (
            f'<{ROOT}{path(links, "/21/S1")}?linkType=linkset>; rel="linkset"; '
            'type="application/linkset+json"'
        ) in response.headers["link"]


async def test_clause_2_12_passes_the_query_string_on(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.12 / 5.19: every key=value pair of the query goes on with the redirect."""
    response = await client.get(path(links, "/21/S1?foo=bar&17=300630&utm_source=pack"))
    assert response.headers["location"] == (
        f"{ROOT}/verify{path(links, '/21/S1')}?foo=bar&17=300630&utm_source=pack"
    )
    typed = await client.get(path(links, "?linkType=gs1:instructions&foo=bar"))
    assert typed.headers["location"] == (
        "https://brand.example/how.pdf?linkType=gs1:instructions&foo=bar"
    )


async def test_clause_2_13_tolerates_a_trailing_slash(
    client: httpx.AsyncClient, links: World
) -> None:
    """2.13 / 5.25: with or without a trailing slash, the same answer."""
    for rest in ("", "/21/S1"):
        plain = await client.get(path(links, rest))
        slashed = await client.get(path(links, rest + "/"))
        assert slashed.status_code == plain.status_code == 307
        assert slashed.headers["location"] == plain.headers["location"]


async def test_clause_2_14_recognises_the_gs1_web_vocabulary(
    client: httpx.AsyncClient, world: World
) -> None:
    """2.14 / 5.24: link types are the GS1 Web Vocabulary's, under any of its addresses;
    a brand cannot invent one."""
    for link_type in ("gs1:pip", "https://gs1.org/voc/pip", "https://ref.gs1.org/voc/pip"):
        made = await add_link(client, world, link_type=link_type, href="https://b.example/")
        assert made["link_type"] == "gs1:pip"
    refused = await add_link(
        client, world, status=422, link_type="gs1:myOwnThing", href="https://b.example/"
    )
    assert refused["errors"][0]["field"] == "link_type"


async def test_clause_3_describes_itself_at_well_known_gs1resolver(
    client: httpx.AsyncClient,
) -> None:
    """3 / 5.21-5.22: the resolver description file, with the supported primary keys and
    the JSON-LD context of its linksets."""
    response = await client.get("/.well-known/gs1resolver")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    found = response.json()
    assert found["supportedPrimaryKeys"] == ["01"]
    assert found["resolverRoot"] == ROOT
    assert found["supportedLinkType"] == [{"namespace": VOC, "prefix": "gs1:"}]
    assert found["jsonLdContextLocation"] == (
        "https://ref.gs1.org/standards/resolver/linkset-context"
    )


async def test_a_phone_lands_on_the_verdict_with_one_redirect(
    client: httpx.AsyncClient, world: World
) -> None:
    """The point of the default: the label's URI, one 307, the verdict page."""
    from tests.support.world import issue_codes, ship

    (row,) = await issue_codes(client, world, 1, fmt="gs1")
    await ship(client, world, row["symbol"])
    parsed = codes.parse(row["symbol"])
    first = await client.get(f"/01/{parsed.gtin}/21/{parsed.serial}")
    assert first.status_code == 307
    page = await client.get(first.headers["location"])
    assert page.status_code == 200
    assert 'class="verdict v-authentic"' in page.text
