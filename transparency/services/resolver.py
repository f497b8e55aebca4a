"""The resolver's use case: a GS1 Digital Link request in, a redirect or a linkset out.

One query reads the product's, the lot's and the unit's links (``db.links.for_request``);
the choice is the domain's (``domain.resolver``). Every GTIN's URI has at least the
service's own verification page, so a label's QR code always reaches a verdict, even for
a GTIN no brand registered here (the page then says the code is not registered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from transparency.db import links
from transparency.domain import gs1
from transparency.domain import resolver as r
from transparency.domain.digital_link import DigitalLink, parse_digital_link
from transparency.domain.dl_compression import COMPRESSED_SEGMENT, decompress
from transparency.domain.errors import InvalidCode, InvalidDigitalLink, NotFound

VERIFY_PATH = "/verify"  # the verdict page of a Digital Link path: /verify/01/.../21/...
_VERIFY_TITLE = "Verify this product"


@dataclass(frozen=True, slots=True)
class Answer:
    """A redirect (``location``) or a linkset, and what every answer's headers say."""

    anchor: str  # the request's uncompressed URI on this resolver, without its query
    location: str | None = None
    linkset: dict[str, Any] | None = None
    same_as: str | None = None  # the uncompressed URI, when the request was compressed


def _parse(uri: str) -> DigitalLink:
    try:
        link = parse_digital_link(uri)
    except InvalidCode as exc:
        raise InvalidDigitalLink(exc.reason, exc.detail) from exc
    if link.primary[0] != "01":
        raise NotFound(f"this resolver holds GTINs (01) only, not ({link.primary[0]})")
    return link


def _anchor(root: str, ais: list[tuple[str, str]]) -> str:
    return gs1.digital_link(tuple(ais), base=root)


def _entries(root: str, link: DigitalLink, found: links.Resolution) -> list[r.Entry]:
    """The request's levels, its own first, up to the product, each with its links."""
    gtin = link.primary[1]
    qualifiers = dict(link.qualifiers)
    lot, serial = qualifiers.get("10"), qualifiers.get("21")
    name = found.product_name or f"GTIN {gtin}"
    by_level: dict[r.Level, list[r.Link]] = {level: [] for level in r.Level}
    for kept in found.links:
        by_level[kept.level].append(kept.link)
    own = [link.primary, *link.qualifiers]
    request_level = r.Level.UNIT if serial else r.Level.LOT if lot else r.Level.PRODUCT
    has_default = any(kept.link.is_default for kept in found.links)
    verify = r.Link(
        r.VERIFICATION,
        root + VERIFY_PATH + _anchor("", own),
        _VERIFY_TITLE,
        ("en", "fr"),
        "text/html",
        is_default=not has_default,
    )
    description = name
    if serial:
        description = f"{name}, serial {serial}"
    elif lot:
        description = f"{name}, lot {lot}"
    # A request qualified only by what links are not kept for (22, 235) is the product's
    # level, whose links its own entry further down holds.
    mine = by_level[request_level] if request_level is not r.Level.PRODUCT or len(own) == 1 else []
    entries = [r.Entry(_anchor(root, own), description, (*mine, verify))]
    if serial and lot:
        entries.append(
            r.Entry(
                _anchor(root, [link.primary, ("10", lot)]),
                f"{name}, lot {lot}",
                tuple(by_level[r.Level.LOT]),
            )
        )
    if len(own) > 1:
        entries.append(
            r.Entry(_anchor(root, [link.primary]), name, tuple(by_level[r.Level.PRODUCT]))
        )
    return entries


async def _answer(
    pool: asyncpg.Pool,
    root: str,
    link: DigitalLink,
    query: str,
    accept: str | None,
    accept_language: str | None,
    same_as: str | None = None,
) -> Answer:
    qualifiers = dict(link.qualifiers)
    found = await links.for_request(
        pool, link.primary[1], qualifiers.get("10"), qualifiers.get("21")
    )
    entries = _entries(root, link, found)
    want = r.wanted(link.extra, accept, accept_language)
    anchor = entries[0].anchor
    if want.linkset:
        return Answer(anchor, linkset=r.linkset(entries), same_as=same_as)
    chosen = r.choose(entries, want)
    return Answer(anchor, location=r.with_query(chosen.href, query), same_as=same_as)


async def resolve(
    pool: asyncpg.Pool,
    *,
    root: str,
    path: str,
    query: str,
    accept: str | None,
    accept_language: str | None,
) -> Answer:
    """Answer a request for ``path`` (as sent, percent-encoded) and ``query`` (raw).

    Raises ``InvalidDigitalLink`` (400) when they are no GS1 Digital Link URI, and
    ``NotFound`` when the request names a link type the identifier has no link of.
    """
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]  # tolerated (2.13): the same answer as without
    link = _parse(root + path + (f"?{query}" if query else ""))
    return await _answer(pool, root, link, query, accept, accept_language)


def looks_compressed(segment: str) -> bool:
    """Whether a path segment may be a compressed URI: base64url, and at least the 8
    characters the shortest one (a GTIN alone, 10) comes near."""
    return len(segment) >= 8 and COMPRESSED_SEGMENT.fullmatch(segment) is not None


async def resolve_compressed(
    pool: asyncpg.Pool,
    *,
    root: str,
    segment: str,
    query: str,
    accept: str | None,
    accept_language: str | None,
) -> Answer:
    """Answer a compressed URI (``/ARHKVAdpQg``) as its uncompressed form would be answered.

    A segment that does not decompress is no Digital Link at all: ``NotFound``, as any
    other unknown path. One that decompresses into a URI the syntax refuses is 400.
    """
    if not looks_compressed(segment):
        raise NotFound("no such path")
    try:
        packed = decompress(segment)
        uncompressed = gs1.digital_link(packed.ais, base=root)
    except (InvalidCode, ValueError) as exc:
        raise NotFound("no such path") from exc
    extra = "&".join(f"{gs1.quote(k)}={gs1.quote(v)}" for k, v in packed.other)
    own_query = "&".join(part for part in (uncompressed.partition("?")[2], extra) if part)
    link = _parse(uncompressed.partition("?")[0] + (f"?{own_query}" if own_query else ""))
    link = _with_request_query(link, query)
    passed_on = "&".join(part for part in (own_query, query) if part)
    same_as = link.uri(root)
    if packed.other:
        same_as += ("&" if "?" in same_as else "?") + extra
    return await _answer(pool, root, link, passed_on, accept, accept_language, same_as=same_as)


def _with_request_query(link: DigitalLink, query: str) -> DigitalLink:
    """``link`` with the request's own non-GS1 parameters (``linkType``, ``context``)."""
    if not query:
        return link
    extra = _parse(f"https://resolver.invalid/01/{link.primary[1]}?{query}").extra
    return DigitalLink(
        link.stem, link.primary, link.qualifiers, link.attributes, (*link.extra, *extra)
    )
