"""Operations: liveness, readiness, metrics, and the problem type documentation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from transparency.api import problems
from transparency.api.deps import AdminKey, Pool
from transparency.domain.errors import NotFound
from transparency.services.health import readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, pool: Pool) -> dict[str, object]:
    return await readiness(pool, request.state.listener)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, _: AdminKey) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/problems/{slug}", response_class=HTMLResponse)
async def problem_type(slug: str) -> HTMLResponse:
    known = problems.catalogue()
    if slug not in known:
        raise NotFound(f"no problem type {slug}")
    status, title, description = known[slug]
    return HTMLResponse(f"<h1>{title}</h1><p>HTTP {status}</p><p>{description}</p>")
