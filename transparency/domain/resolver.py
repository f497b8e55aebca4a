"""The GS1-Conformant resolver's rules: which link answers a request, and the linkset.

A GS1 Digital Link URI names a product (01), a lot of it (01 + 10) or a unit (01 + 21).
Brands attach links to each level, each typed with a term of the GS1 Web Vocabulary
(``gs1:pip``, ``gs1:instructions``, ...). A request walks up from its own level to the
product's (GS1-Conformant Resolver 1.2.0, 2.5.9): the most specific level that has a link
of the requested type answers, and within a level the link whose context, language and
media type best match the request (2.6.3). Without a requested type, the answer is the
default link, or the link of the default's type that matches the request better (a
French page when the phone asks for French). The service's own verification page
(``gs1:verificationService``) is the default unless a brand chose another, so a phone
that opens a label lands on the verdict with one redirect.

The linkset (RFC 9264 JSON, ``application/linkset+json``) holds every level from the
request up to the product, each under its own anchor, link relations written as full
IRIs of the GS1 Web Vocabulary, and the one default link under ``gs1:defaultLink`` with
its target and title only (2.5.8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from transparency.domain.errors import InvalidInput, NotFound

GS1_VOC = "https://gs1.org/voc/"
# The GS1 Web Vocabulary has been published under these addresses; a request may use any.
_VOC_PREFIXES = (
    "gs1:",
    "https://gs1.org/voc/",
    "http://gs1.org/voc/",
    "https://ref.gs1.org/voc/",
    "https://www.gs1.org/voc/",
)
LINKSET_MEDIA_TYPE = "application/linkset+json"
# The JSON-LD context GS1 publishes for linksets (unchanged since 1.0.0).
LINKSET_CONTEXT = "https://ref.gs1.org/standards/resolver/linkset-context"
JSON_LD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LINKSET_VALUES = frozenset({"linkset", "all"})  # "all": the name before 1.0.0, still read
VERIFICATION = "verificationService"
DEFAULT_LINK = "defaultLink"

# GS1 Web Vocabulary link types (https://ref.gs1.org/voc/?show=linktypes) a brand may use,
# with the title a link gets when its brand gives none.
LINK_TYPES: dict[str, str] = {
    "activityIdeas": "Activity ideas",
    "allergenInfo": "Allergen information",
    "brandHomepageClinical": "Information for professionals about this brand",
    "brandHomepagePatient": "Information for patients about this brand",
    "careersInfo": "Careers information",
    "certificationInfo": "Certification information",
    "consumerHandlingStorageInfo": "Consumer handling and storage information",
    "disassemblyInfo": "Product disassembly",
    "epcis": "EPCIS repository",
    "epil": "Electronic patient information leaflet",
    "eventsInfo": "Events information",
    "faqs": "Frequently asked questions",
    "handlingEndOfLife": "End-of-life handling",
    "hasRetailers": "Retailers",
    "homepage": "Brand home page",
    "ingredientsInfo": "Ingredients information",
    "instructions": "Instructions",
    "jws": "JSON Web Signature",
    "leaveReview": "Leave a review",
    "locationInfo": "Location information",
    "logisticsInfo": "Logistics information",
    "masterData": "Master data",
    "menuInfo": "Menu information",
    "nutritionalInfo": "Nutritional information",
    "openingHoursInfo": "Opening hours",
    "paymentLink": "Make a payment",
    "pip": "Product information page",
    "productPassport": "Product passport",
    "promotion": "Promotion",
    "purchaseSuppliesOrAccessories": "Supplies and accessories",
    "quickStartGuide": "Quick start guide",
    "recallStatus": "Recall status",
    "recipeInfo": "Recipes",
    "recyclingInfo": "Recycling",
    "registerProduct": "Register this product",
    "registryEntry": "Registry entry",
    "relatedVideo": "Related video",
    "repairInfo": "Repair information",
    "reuseInfo": "Re-use information",
    "review": "Reviews",
    "safetyInfo": "Safety information",
    "scheduleTime": "Book a time",
    "serviceInfo": "Service information",
    "smartLabel": "SmartLabel",
    "smpc": "Summary of product characteristics",
    "socialMedia": "Social media",
    "sorting": "Sorting for recycling",
    "statisticInfo": "Statistics",
    "support": "Support",
    "sustainabilityInfo": "Sustainability and recycling",
    "traceability": "Traceability information",
    "tutorial": "Tutorial",
    "userAgreement": "Agreement",
    VERIFICATION: "Verify this product",
    "whatsInTheBox": "What's in the box",
}

# The linkset schema GS1 publishes accepts "ll" and "ll-CC" only, so a link's language is
# that part of BCP 47: a language and an optional region.
_LANGUAGE = re.compile(r"[a-z]{2}(-[A-Z]{2})?")
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_CONTEXT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HREF = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s<>\"'{}|\\^`]*)?")


class Level(StrEnum):
    """How much of a GTIN's Digital Link a link is for."""

    PRODUCT = "product"  # /01/{gtin}
    LOT = "lot"  # /01/{gtin}/10/{lot}
    UNIT = "unit"  # /01/{gtin}/21/{serial}


@dataclass(frozen=True, slots=True)
class Link:
    """A typed link from an identified thing to a resource (a brand's, or the service's)."""

    link_type: str  # a term of LINK_TYPES: "pip"
    href: str
    title: str
    languages: tuple[str, ...] = ()
    media_type: str | None = None
    context: str | None = None
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class BrandLink:
    """A link a brand keeps, with what it is attached to."""

    id: UUID
    brand_id: UUID
    gtin: str
    level: Level
    lot: str | None
    serial: str | None
    link: Link
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One level of a request: its anchor (the uncompressed URI), what it names, its links."""

    anchor: str
    description: str
    links: tuple[Link, ...]


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a request asks of the resolver, from its query string and headers."""

    link_type: str | None = None  # a LINK_TYPES term, or any other text (matches nothing)
    linkset: bool = False
    languages: tuple[tuple[str, float], ...] = ()
    media_types: tuple[tuple[str, float], ...] = ()
    context: str | None = None


# ---------------------------------------------------------------- link types and checks


def link_type_term(text: str) -> str | None:
    """The GS1 Web Vocabulary term ``text`` names (``gs1:pip``, or its IRI), or None."""
    for prefix in _VOC_PREFIXES:
        if text.startswith(prefix):
            term = text[len(prefix) :]
            return term if term in LINK_TYPES else None
    return None


def link_type_iri(term: str) -> str:
    return GS1_VOC + term


def check_link(
    link_type: str,
    href: str,
    title: str | None,
    language: str | None,
    media_type: str | None,
    context: str | None,
) -> Link:
    """A brand's link from what it typed, each field checked (``InvalidInput`` names it)."""
    term = link_type_term(link_type)
    if term is None:
        raise InvalidInput(
            f"{link_type!r} is not a GS1 Web Vocabulary link type (such as gs1:pip)",
            field="link_type",
        )
    if len(href) > 2000 or not _HREF.fullmatch(href):
        raise InvalidInput("the target must be an https URL", field="href")
    title = (title or "").strip() or LINK_TYPES[term]
    if len(title) > 200:
        raise InvalidInput("a title has at most 200 characters", field="title")
    if language is not None:
        head, _, region = language.partition("-")
        language = head.lower() + (f"-{region.upper()}" if region else "")
        if not _LANGUAGE.fullmatch(language):
            raise InvalidInput(
                "a language is a BCP 47 language with an optional region: en, fr-FR",
                field="language",
            )
    if media_type is not None and not _MEDIA_TYPE.fullmatch(media_type):
        raise InvalidInput("a media type looks like text/html", field="media_type")
    if context is not None and not _CONTEXT.fullmatch(context):
        raise InvalidInput(
            "a context is up to 64 letters, digits, '.', '_' or '-'", field="context"
        )
    return Link(term, href, title, (language,) if language else (), media_type, context)


# ---------------------------------------------------------------- reading a request


def _weighted(header: str | None) -> tuple[tuple[str, float], ...]:
    """``a;q=0.5, b`` as ((a, 0.5), (b, 1.0)); malformed parts are ignored."""
    found: list[tuple[str, float]] = []
    for part in (header or "").split(","):
        value, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, number = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = -1.0
        if value and 0.0 <= q <= 1.0:
            found.append((value.lower(), q))
    return tuple(found)


def wanted(query: Iterable[tuple[str, str]], accept: str | None, language: str | None) -> Wanted:
    """What a request wants: ``linkType`` and ``context`` from its query, its Accept and
    Accept-Language headers."""
    params = dict(query)
    link_type = params.get("linkType")
    media_types = _weighted(accept)
    asks_linkset = any(m == LINKSET_MEDIA_TYPE and q > 0 for m, q in media_types)
    if link_type in LINKSET_VALUES:
        return Wanted(linkset=True)
    term = None if link_type is None else (link_type_term(link_type) or link_type)
    return Wanted(
        link_type=term,
        linkset=asks_linkset and term is None,
        languages=_weighted(language),
        media_types=media_types,
        context=params.get("context"),
    )


# ---------------------------------------------------------------- choosing a link


def _language_score(link: Link, ranges: Sequence[tuple[str, float]]) -> float:
    if not any(wanted_range != "*" for wanted_range, _ in ranges):
        return 0.0  # nothing asked for in particular: no link is better
    if not link.languages:
        return 0.0005  # says nothing: better than a language not asked for
    best = 0.0
    for tag in (lang.lower() for lang in link.languages):
        for wanted_range, q in ranges:
            if wanted_range == tag or tag.startswith(wanted_range + "-"):
                best = max(best, q)
            elif wanted_range.startswith(tag + "-"):
                best = max(best, q * 0.9)
    return best


def _media_score(link: Link, ranges: Sequence[tuple[str, float]]) -> float:
    if not any(wanted_range != "*/*" for wanted_range, _ in ranges):
        return 0.0  # "*/*" (what most clients send) prefers nothing
    if link.media_type is None:
        return 0.0005
    kind = link.media_type.lower()
    best = 0.0
    for wanted_range, q in ranges:
        if wanted_range == kind:
            best = max(best, q)
        elif wanted_range == kind.split("/")[0] + "/*":
            best = max(best, q * 0.9)
    return best


def _fit(link: Link, want: Wanted) -> tuple[int, float, float, bool]:
    if want.context is not None:
        context = 2 if link.context == want.context else 1 if link.context is None else 0
    else:
        context = 1 if link.context is None else 0
    return (
        context,
        _language_score(link, want.languages),
        _media_score(link, want.media_types),
        link.is_default,
    )


def _best(links: Sequence[Link], want: Wanted) -> Link:
    # max() keeps the first of equals: the link made first.
    return max(links, key=lambda link: _fit(link, want))


def default_link(entries: Sequence[Entry]) -> Link:
    """The request's one default: the most specific level's, walking up to the product.

    Raises ``NotFound`` when no level has one (the service always gives one).
    """
    for entry in entries:
        for link in entry.links:
            if link.is_default:
                return link
    raise NotFound("no default link")


def choose(entries: Sequence[Entry], want: Wanted) -> Link:
    """The link a request is redirected to; ``entries`` from the request's level up.

    Raises ``NotFound`` when the request names a link type no level has.
    """
    if want.link_type is not None:
        for entry in entries:
            typed = [link for link in entry.links if link.link_type == want.link_type]
            if typed:
                return _best(typed, want)
        raise NotFound(f"no link of type {want.link_type!r} for this identifier")
    default = default_link(entries)
    level = next(entry for entry in entries if default in entry.links)
    return _best([link for link in level.links if link.link_type == default.link_type], want)


def with_query(href: str, query: str) -> str:
    """``href`` with the request's query string passed on (2.12), before any fragment."""
    if not query:
        return href
    base, hash_mark, fragment = href.partition("#")
    joined = base + ("&" if "?" in base else "?") + query
    return joined + hash_mark + fragment


# ---------------------------------------------------------------- the linkset


def _link_object(link: Link) -> dict[str, Any]:
    found: dict[str, Any] = {"href": link.href, "title": link.title}
    if link.languages:
        found["hreflang"] = list(link.languages)
    if link.media_type:
        found["type"] = link.media_type
    if link.context:
        found["context"] = [link.context]
    return found


def linkset(entries: Sequence[Entry]) -> dict[str, Any]:
    """The RFC 9264 linkset of a request: one object per level, the request's first.

    The default link appears once, under the request's own anchor, with its target and
    title only; it is also listed under its own link type (2.5.8).
    """
    default = default_link(entries)
    sets: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        body: dict[str, Any] = {"anchor": entry.anchor, "itemDescription": entry.description}
        for link in entry.links:
            body.setdefault(link_type_iri(link.link_type), []).append(_link_object(link))
        if index == 0:
            body[link_type_iri(DEFAULT_LINK)] = [{"href": default.href, "title": default.title}]
        sets.append(body)
    return {"linkset": sets}


def link_header(anchor: str, *, context: bool, same_as: str | None) -> str:
    """The ``Link`` header of every answer: where the linkset is, the JSON-LD context
    that reads it as JSON-LD (on linksets), and the uncompressed URI of a compressed one."""
    parts = [f'<{anchor}?linkType=linkset>; rel="linkset"; type="{LINKSET_MEDIA_TYPE}"']
    if context:
        parts.append(
            f'<{LINKSET_CONTEXT}>; rel="{JSON_LD_CONTEXT_REL}"; type="application/ld+json"'
        )
    if same_as is not None:
        parts.append(f'<{same_as}>; rel="owl:sameAs"')
    return ", ".join(parts)


def description(root: str, name: str) -> Mapping[str, Any]:
    """The resolver description file served at ``/.well-known/gs1resolver`` (section 3)."""
    return {
        "name": name,
        "resolverRoot": root,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": GS1_VOC, "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False,
        "supportsLanguageVariants": True,
        "supportsSemanticInterpretation": False,
        "validatesAIcombinations": True,
        "jsonLdContextLocation": LINKSET_CONTEXT,
    }
