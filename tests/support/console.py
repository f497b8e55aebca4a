"""Signing in to the brand console through a client, as a browser does: fetch the sign-in
form (its CSRF cookie and token), post the key, keep the session cookie."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import httpx

from tests.support.world import bearer

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """Post ``key`` on the sign-in form; the client keeps whatever cookie it is given."""
    form = await client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    return await client.post(
        "/console/sign-in", data={"key": key, "csrf": csrf_in(form.text)}, follow_redirects=False
    )


async def signed_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign ``client`` in with ``key``; the CSRF token of the session's forms."""
    r = await sign_in(client, key)
    assert r.status_code == 303, r.text
    page = await client.get("/console/products")
    assert page.status_code == 200, page.text
    return csrf_in(page.text)


async def issue(
    client: httpx.AsyncClient, key: str, product_id: str, count: int
) -> tuple[str, list[str]]:
    """A finished batch of ``count`` codes of the product: its id and its codes."""
    r = await client.post(
        f"/v1/products/{product_id}/code-batches", json={"count": count}, headers=bearer(key)
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["id"]
    for _ in range(400):  # a poll with a deadline: a few codes take milliseconds
        status = (await client.get(f"/v1/code-batches/{batch_id}", headers=bearer(key))).json()
        if status["status"] == "done":
            break
        await asyncio.sleep(0.05)
    text = (await client.get(f"/v1/code-batches/{batch_id}/codes.csv", headers=bearer(key))).text
    return batch_id, [row["code"] for row in csv.DictReader(io.StringIO(text))]
