"""What every console page shares: the session cookie, CSRF, the language and the drawing.

The session cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page
sends it, so neither links nor forms from elsewhere act as the brand), scoped to
``/console``, and Secure whenever the browser reached us over HTTPS: directly, or through a
proxy of TRANSPARENCY_TRUSTED_PROXIES saying so in X-Forwarded-Proto. Every form also
carries the session's CSRF token (``services.console.csrf_of``); the sign-in form, which
has no session yet, a random one it must echo from a cookie of its own (double submit).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from transparency.api import problems
from transparency.api.console import i18n
from transparency.domain.errors import SignInRequired, TransparencyError
from transparency.domain.identity import Principal
from transparency.services import console

SESSION = "tp_console"
SIGN_IN_CSRF = "tp_console_signin"
LANGUAGE = "tp_console_lang"
PATH = "/console"

# Pages of one brand's data: no cache keeps them, no page of another site frames them,
# nothing is loaded from elsewhere (no script at all, no third-party font).
HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Accept-Language, Cookie",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("transparency.api.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing message fails loudly, in tests
        trim_blocks=True,
        lstrip_blocks=True,
    )


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (so the cookie may only go back that way)."""
    if request.url.scheme == "https":
        return True
    trusted = request.app.state.customer_limiter.trusted_proxies
    peer = request.client.host if request.client else None
    if not trusted or peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if not any(address in network for network in trusted):
        return False
    # The proxy nearest to us speaks last; what it was told by the ones before is theirs.
    said = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return said == "https"


def language(request: Request) -> i18n.Lang:
    picked = request.query_params.get("lang") or request.cookies.get(LANGUAGE)
    return i18n.choose(picked, request.headers.get("accept-language"))


def messages(request: Request) -> Mapping[str, str]:
    return i18n.messages(language(request))


def set_cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name, value, max_age=seconds, path=PATH, secure=is_https(request),
        httponly=True, samesite="strict",
    )  # fmt: skip


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=PATH, secure=is_https(request), httponly=True, samesite="strict"
    )


def render(
    request: Request,
    template: str,
    title_key: str,
    *,
    status: int = 200,
    signed_in: bool = True,
    **context: Any,
) -> HTMLResponse:
    lang = language(request)
    t = i18n.messages(lang)
    token = request.cookies.get(SESSION)
    csrf = console.csrf_of(token) if signed_in and token else None
    context.setdefault("page", None)  # the menu entry to mark as current
    body = (
        _templates()
        .get_template(template)
        .render(lang=lang, t=t, title=t[title_key], csrf=csrf, **context)
    )
    response = HTMLResponse(body, status, headers={**HEADERS, "Content-Language": lang})
    if request.query_params.get("lang") in i18n.LANGS:
        set_cookie(request, response, LANGUAGE, lang, 365 * 86400)
    return response


def to(path: str) -> RedirectResponse:
    """After a form: the page to see next (303, so a reload does not post it again)."""
    return RedirectResponse(path, 303, headers={"Cache-Control": "no-store"})


def error_page(request: Request, exc: TransparencyError) -> Response:
    if isinstance(exc, SignInRequired):
        response: Response = to(f"{PATH}/sign-in")
        if SESSION in request.cookies:
            forget_cookie(request, response, SESSION)
        return response
    status = problems.status_of(exc)
    return render(request, "error.html", "error.title", status=status, detail=exc.detail)


# A missing session leads to the sign-in page; other domain errors are pages.
ConsoleRoute = problems.page_route(error_page)


async def signed_in(request: Request) -> Principal:
    """The brand of the request's session (SignInRequired without a live one)."""
    return await console.caller(request.state.pool, request.cookies.get(SESSION))


SignedIn = Annotated[Principal, Depends(signed_in)]


async def posted_form(request: Request) -> FormData:
    """A posted form of a signed-in page, refused (CsrfRefused) without the session's token."""
    token = request.cookies.get(SESSION)
    form = await request.form()
    sent = form.get("csrf")
    console.check_csrf(
        console.csrf_of(token) if token else None, sent if isinstance(sent, str) else None
    )
    return form


Form = Annotated[FormData, Depends(posted_form)]


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None
