"""The page a phone opens when it scans a label: the customer check, drawn as HTML.

A page is ``GET /v1/verify`` for a person: the same rate limit and the same service call (so
the scan is recorded and counts toward the clone thresholds), in the language the phone
asks for, with no JavaScript and nothing loaded from elsewhere but the product's photo.
Every answer is a page, a code we cannot read included: the page answered, so it is a 200.
A page whose verdict is not good news says what to do next: the brand's support contact
when the code names a brand, and a form to report the product to it (``POST /t/report``,
the same service as ``POST /v1/reports``, on the same customer budget).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from transparency.api import problems
from transparency.api.deps import Ctx, CustomerLimit, SettingsDep, thresholds
from transparency.api.pages import i18n
from transparency.domain.errors import TransparencyError
from transparency.domain.verification import Reason, Verdict
from transparency.services import customer, reports
from transparency.services.resolver import VERIFY_PATH

# A verdict is about this scan, and every scan is counted: no cache may answer for us. The
# photo is the only thing fetched from elsewhere, and its host need not learn which code.
HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Accept-Language",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

# GS1 Digital Link lets any host serve a code; the host a request came through (a proxy's,
# a test's) must not decide whether its path reads as a code.
_DIGITAL_LINK_BASE = "https://id.gs1.org"


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("transparency.api.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing message fails loudly, in tests
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _language(request: Request) -> tuple[i18n.Lang, Mapping[str, str]]:
    lang = i18n.negotiate(request.headers.get("accept-language"))
    return lang, i18n.messages(lang)


def _render(
    lang: i18n.Lang, template: str, status: int, headers: Mapping[str, str], **context: Any
) -> HTMLResponse:
    body = _templates().get_template(template).render(lang=lang, t=i18n.messages(lang), **context)
    return HTMLResponse(body, status, headers={**HEADERS, **headers, "Content-Language": lang})


def _facts(answer: customer.Answer, lang: i18n.Lang, t: Mapping[str, str]) -> list[tuple[str, str]]:
    product = answer.product or {}
    rows = [(t[key], str(product[key])) for key in ("brand", "name", "gtin") if product.get(key)]
    unit = dict(answer.unit)
    if "lot" in unit:
        rows.append((t["lot"], str(unit.pop("lot"))))
    if "expiry" in unit:
        rows.append((t["expiry"], i18n.format_date(str(unit.pop("expiry")), lang)))
    # The brand's own facts carry the brand's own names, which we cannot translate.
    rows.extend((key.replace("_", " ").capitalize(), str(value)) for key, value in unit.items())
    return rows


def _help(answer: customer.Answer, t: Mapping[str, str]) -> list[str]:
    lines = []
    if answer.verdict is Verdict.NOT_AUTHENTIC:
        lines.append(t.get(f"help.{answer.reason}", t["help.other"]))
    if answer.reason == Reason.KEY_REVOKED:
        lines.append(t["help.key_revoked"])
    return lines


def _image(answer: customer.Answer) -> str | None:
    url = (answer.product or {}).get("image_url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


# The verdicts after which a customer may have a counterfeit in hand: the page offers the
# report form. Recalled and expired units are the brand's own.
_REPORTABLE = frozenset({Verdict.NOT_AUTHENTIC, Verdict.SUSPICIOUS, Verdict.REVOKED})
_GS1_PART = re.compile(r"\(\d{2,4}\)[^(]*")


def _code_parts(code: str) -> list[str]:
    """A GS1 key in its parts, ``(01)…`` then ``(21)…``, which the page keeps whole and
    wraps between: a serial broken across lines reads as two codes."""
    parts = _GS1_PART.findall(code) if code.startswith("(") else []
    return parts if "".join(parts) == code else [code]


def _contact(support: str | None) -> tuple[str, str] | None:
    """(href, text) of the brand's support: its https page, or its e-mail address."""
    if not support:
        return None
    if support.startswith("https://"):
        return support, support
    return f"mailto:{support}", support


def answer_page(request: Request, answer: customer.Answer, scan: str) -> HTMLResponse:
    lang, t = _language(request)
    name = (answer.product or {}).get("name", "")
    return _render(
        lang,
        "verify.html",
        200,
        {},
        verdict=answer.verdict.value,
        code=answer.code,
        product=answer.product,
        image_url=_image(answer),
        image_alt=t["image"].format(name=name),
        facts=_facts(answer, lang, t),
        help=_help(answer, t),
        warnings=[w.value for w in answer.warnings],
        code_parts=_code_parts(answer.code) if answer.code else [],
        brand=answer.brand,
        contact=_contact(answer.brand.support if answer.brand else None),
        notice=answer.notice,
        report=answer.verdict in _REPORTABLE,
        scan=scan,
    )


def error_page(request: Request, exc: TransparencyError) -> HTMLResponse:
    """The status and headers problems.py gives ``exc``, drawn for a person."""
    lang, t = _language(request)
    plain = problems.problem(exc)
    retry_after = plain.headers.get("retry-after")
    status = plain.status_code
    kind = "busy" if status == 429 else "invalid" if status in (413, 422) else "error"
    return _render(
        lang,
        "unavailable.html",
        plain.status_code,
        {"Retry-After": retry_after} if retry_after else {},
        title=t[kind],
        says=t[f"{kind}.says"].format(seconds=retry_after or 1),
    )


# Domain errors (the rate limit first) are pages, not problem+json.
PageRoute = problems.page_route(error_page)


router = APIRouter(tags=["pages"], include_in_schema=False, route_class=PageRoute)


@router.get("/t/{code}", response_class=HTMLResponse)
async def transparency_page(
    code: str, request: Request, _: CustomerLimit, ctx: Ctx, settings: SettingsDep
) -> HTMLResponse:
    answer = await customer.verify(ctx, code, None, thresholds(settings))
    return answer_page(request, answer, code)


@router.get(VERIFY_PATH + "/01/{rest:path}", response_class=HTMLResponse)
async def digital_link_page(
    request: Request, _: CustomerLimit, ctx: Ctx, settings: SettingsDep
) -> HTMLResponse:
    """The verdict on any GS1 Digital Link on a GTIN: /verify/01/{gtin}/21/{serial}, with
    a lot, a query ... The resolver at /01/... redirects here by default (its
    ``gs1:verificationService`` link)."""
    scan = _digital_link(request)
    return answer_page(request, await customer.verify(ctx, scan, None, thresholds(settings)), scan)


def _digital_link(request: Request) -> str:
    # The path as sent, still percent-encoded, so the parser sees what the label holds.
    # Some servers (httpx's ASGI transport) leave the query on raw_path.
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.split(b"?", 1)[0].decode("latin-1").removeprefix(VERIFY_PATH)
    query = request.scope.get("query_string", b"").decode("latin-1")
    return _DIGITAL_LINK_BASE + path + (f"?{query}" if query else "")


@router.post("/t/report", response_class=HTMLResponse)
async def report_page(
    request: Request,
    _: CustomerLimit,
    ctx: Ctx,
    # Defaults, not required fields: what is missing is the service's InvalidInput, a page.
    code: Annotated[str, Form(max_length=4096)] = "",
    place: Annotated[str, Form(max_length=500)] = "",
    region: Annotated[str, Form(max_length=2)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> HTMLResponse:
    """The report form of a verdict page: the same service as ``POST /v1/reports``."""
    image = await photo.read() if photo is not None and photo.filename else None
    await reports.submit(ctx, code, place=place, region=region, note=note, photo=image)
    lang, t = _language(request)
    return _render(lang, "reported.html", 200, {}, title=t["reported"], says=t["reported.says"])
