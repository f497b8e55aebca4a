"""The console's pages: sign-in and out, products, batches, imports, dashboard, codes, actions.

Each handler reads the session's brand (``SignedIn``) and calls the service the API calls
for the same thing; the services put the brand in their queries, so a brand's session
never reads or touches another brand's objects.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from transparency.api import problems
from transparency.api.console import charts, web
from transparency.api.console.web import SESSION, SIGN_IN_CSRF, Form, SignedIn, field, render
from transparency.api.deps import KeyCacheDep, Keys, Pool, SettingsDep
from transparency.domain.batches import JobKind
from transparency.domain.errors import Forbidden, InvalidInput, Unauthenticated
from transparency.domain.identity import Principal
from transparency.domain.models import Product
from transparency.labels.sheets import DEFAULT_PRESET, Preset
from transparency.services import batches, brand_ops, brands, console, products, reports

router = APIRouter(prefix="/console", include_in_schema=False, route_class=web.ConsoleRoute)

_SIGN_IN_SECONDS = 3600  # an hour to paste a key into the sign-in form


@router.get("")
async def home() -> Response:
    return web.to("/console/dashboard")


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    token = request.cookies.get(SIGN_IN_CSRF) or web.new_sign_in_token()
    response = render(
        request, "sign_in.html", "sign_in.title", signed_in=False, sign_in_csrf=token, refused=None
    )
    web.set_cookie(request, response, SIGN_IN_CSRF, token, _SIGN_IN_SECONDS)
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request, pool: Pool, cache: KeyCacheDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    expected = request.cookies.get(SIGN_IN_CSRF)
    console.check_csrf(expected, field(form, "csrf"))
    try:
        token, _ = await console.sign_in(
            pool, cache, field(form, "key") or "", seconds=settings.console_session_hours * 3600
        )
    except (Unauthenticated, Forbidden) as exc:
        t = web.messages(request)
        return render(
            request, "sign_in.html", "sign_in.title", status=problems.status_of(exc),
            signed_in=False, sign_in_csrf=expected,
            refused=t["sign_in.refused"].format(detail=exc.detail),
        )  # fmt: skip
    response = web.to("/console/dashboard")
    web.set_cookie(request, response, SESSION, token, int(settings.console_session_hours * 3600))
    web.forget_cookie(request, response, SIGN_IN_CSRF)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, pool: Pool, _: SignedIn, __: Form) -> Response:
    await console.sign_out(pool, request.cookies[SESSION])
    response = web.to("/console/sign-in")
    web.forget_cookie(request, response, SESSION)
    return response


async def _product_names(pool: Pool, actor: Principal) -> dict[UUID, str]:
    page, _ = await products.list_products(pool, actor, cursor=None, limit=500)
    return {p.id: p.name for p in page}


@router.get("/products")
async def products_page(
    request: Request,
    pool: Pool,
    actor: SignedIn,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page, next_cursor = await products.list_products(pool, actor, cursor=cursor, limit=100)
    return render(
        request, "products.html", "nav.products", page="products", products=page,
        next_cursor=next_cursor, settings_of=_settings,
    )  # fmt: skip


# What a product is, rather than how the brand set it up: shown in columns of their own.
_NOT_SETTINGS = frozenset(
    {"id", "brand_id", "gtin", "name", "attributes", "image_url", "created_at"}
)


def _settings(product: Product) -> list[tuple[str, Any]]:
    """A product's settings (requires_check, channel, ...), whichever it has."""
    return [
        (f.name, getattr(product, f.name))
        for f in dataclasses.fields(product)
        if f.name not in _NOT_SETTINGS
    ]


@router.get("/batches")
async def batches_page(
    request: Request, pool: Pool, actor: SignedIn, product: UUID | None = None
) -> Response:
    found = await console.latest_batches(pool, actor, JobKind.ISSUE)
    if product is not None:
        found = [b for b in found if b.product_id == product]
    return render(
        request, "batches.html", "nav.batches", page="batches", batches=found,
        names=await _product_names(pool, actor),
        presets=[p.value for p in Preset], default_preset=DEFAULT_PRESET.value,
    )  # fmt: skip


@router.get("/imports")
async def imports_page(request: Request, pool: Pool, actor: SignedIn) -> Response:
    found = await console.latest_batches(pool, actor, JobKind.IMPORT)
    return render(
        request, "imports.html", "nav.imports", page="imports", batches=found,
        names=await _product_names(pool, actor),
    )  # fmt: skip


@router.get("/dashboard")
async def dashboard_page(
    request: Request,
    pool: Pool,
    actor: SignedIn,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    assert actor.brand_id is not None
    board = await brand_ops.dashboard(pool, actor, actor.brand_id, first, last)
    names = await _product_names(pool, actor)
    t = web.messages(request)
    return render(
        request, "dashboard.html", "dashboard.title", page="dashboard",
        first=board["from"], last=board["to"], **_dashboard(board, names, t),
    )  # fmt: skip


def _dashboard(board: dict[str, Any], names: dict[UUID, str], t: Any) -> dict[str, Any]:
    """Charts (per day, all products) and a table (per product) of what the service says."""
    days = charts.calendar(board["from"], board["to"])
    rows: list[dict[str, Any]] = [
        {k: v for k, v in row.items() if k != "product_id"} for row in board["days"]
    ]
    # Forged scans name no product of the brand: a chart of their own (by kind of check),
    # drawn at 0 too, as the other charts are once the brand has any day, and no column in
    # the table by product.
    forged = [{"day": f["day"], "forged": {f["kind"]: f["scans"]}} for f in board["forged"]]
    rows += forged or ([{"day": board["from"], "forged": {}}] if rows else [])
    drawn = []
    for series in charts.series(rows, days):
        title = t.get(f"chart.{series.key}", series.key.replace("_", " ").capitalize())
        parts = list(series.parts)
        legend = [
            (
                title if len(parts) == 1 else t.get(f"part.{part}", part),
                charts.PALETTE[i % len(charts.PALETTE)],
            )
            for i, part in enumerate(parts)
        ]
        drawn.append(
            {
                "key": series.key,
                "title": title,
                "total": sum(series.totals),
                "svg": charts.svg(series, title, {p: t.get(f"part.{p}", p) for p in parts}),
                "legend": legend,
                "rows": [
                    (day.isoformat(), [series.parts[p][i] for p in parts])
                    for i, day in enumerate(days)
                    if any(series.parts[p][i] for p in parts)
                ],
            }
        )
    keys = [c["key"] for c in drawn if c["key"] != "forged"]
    totals: dict[Any, dict[str, int]] = {}
    for row in board["days"]:
        mine = totals.setdefault(row.get("product_id"), dict.fromkeys(keys, 0))
        for key in keys:
            value = row.get(key)
            mine[key] += sum(value.values()) if isinstance(value, dict) else int(value or 0)
    by_product = [
        (names.get(pid, str(pid)) if pid else "—", [counts[k] for k in keys])
        for pid, counts in totals.items()
    ]
    return {"charts": drawn, "by_product": by_product, "product_keys": keys}


_REPORTS_PAGE = 50  # a screenful of a brand's reports; older ones a link away


@router.get("/reports")
async def reports_page(
    request: Request,
    pool: Pool,
    actor: SignedIn,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = _REPORTS_PAGE,
) -> Response:
    """The brand's customer reports, newest first: GET /v1/reports's own service."""
    page, next_cursor = await reports.list_reports(pool, actor, cursor=cursor, limit=limit)
    return render(
        request, "reports.html", "nav.reports", page="reports", reports=page,
        next_cursor=next_cursor, limit=limit, default_limit=_REPORTS_PAGE,
    )  # fmt: skip


@router.get("/codes")
async def code_page(
    request: Request,
    pool: Pool,
    keyring: Keys,
    actor: SignedIn,
    code: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    unit = await brand_ops.history(pool, keyring, actor, code) if code else None
    return render(
        request, "code.html", "codes.title", page="codes", asked=code, unit=unit, refused=None,
        target_code=unit["code"] if unit else None, target_batch=None,
        actions=list(brand_ops.ACTIONS),
    )  # fmt: skip


@router.get("/actions")
async def actions_page(
    request: Request, pool: Pool, actor: SignedIn, batch_id: UUID | None = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:  # fmt: skip
    if batch_id is not None:
        await batches.get_batch(pool, actor, batch_id)  # another brand's: 404 here already
    return render(
        request, "actions.html", "actions.title", page="batches", target_code=code,
        target_batch=batch_id, actions=list(brand_ops.ACTIONS),
    )  # fmt: skip


@router.post("/actions")
async def act(request: Request, pool: Pool, keyring: Keys, actor: SignedIn, form: Form) -> Response:
    action, reason = field(form, "action") or "", field(form, "reason") or ""
    # The form shows the instructions field whatever the action (the page has no script):
    # it is a recall's only, and left empty means the brand profile's default instructions.
    instructions = field(form, "instructions")
    code, batch = field(form, "code"), _uuid(form, "batch_id")
    brand_ops.check_notice(action, reason, instructions)
    t = web.messages(request)
    back = f"/console/codes?code={code}" if code else "/console/batches"
    if field(form, "confirm") != "yes":
        if batch is not None:
            await batches.get_batch(pool, actor, batch)
        target = (
            t["target.code"].format(code=code) if code else t["target.batch"].format(batch=batch)
        )
        default = None
        if action == "recall" and instructions is None:
            default = (await brands.get_profile(pool, actor, None)).recall_instructions
        return render(
            request, "confirm.html", "actions.confirm_title", page="codes", action=action,
            reason=reason, instructions=instructions, default_instructions=default,
            target_code=code, target_batch=batch, back=back,
            about=t["actions.about"].format(action=t[f"action.{action}"], target=target),
        )  # fmt: skip
    moved = await brand_ops.withdraw(
        pool, keyring, actor, action=action, reason=reason, instructions=instructions,
        code=code, batch_id=batch, product_id=None, lot=None,
    )  # fmt: skip
    said = t["actions.done"].format(action=t[f"action.{action}"], units=moved)
    return render(request, "done.html", "actions.title", page="codes", said=said, back=back)


def _uuid(form: FormData, name: str) -> UUID | None:
    value = field(form, name)
    try:
        return UUID(value) if value else None
    except ValueError:
        raise InvalidInput(f"{name} is not a batch id", field=name) from None
