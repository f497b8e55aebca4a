"""The scanner's only door to the service: its two verification calls over HTTP.

Every failure leaves as a scanner error: ``ApiError`` when the API refused the request (the
same request would be refused again) and ``Unreachable`` when there is no answer to act on,
so a caller that must not lose a request knows which ones to send again.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from scanner.errors import ApiError, Unreachable

USER_AGENT = "transparency-scanner/0.1"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

VERDICTS = frozenset({"authentic", "suspicious", "not_authentic", "revoked", "recalled", "expired"})
RESULTS = frozenset({"pass", "fail"})

# Statuses that say "not now" rather than "no": the same request may succeed later.
_TRY_LATER = frozenset({408, 425, 429})


class Client:
    """A sync client of ``POST /v1/verify`` and ``POST /v1/fulfilment/verifications``.

    ``transport`` is for tests (``httpx.MockTransport``); ``key`` is a station key, needed
    only for claims.
    """

    def __init__(
        self,
        api: str,
        *,
        key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=api, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def verify(self, scan: str, *, region: str | None = None) -> dict[str, Any]:
        """A customer's check of one scanned code: ``{"verdict", "code", "product", ...}``."""
        body: dict[str, Any] = {"scan": scan}
        if region is not None:
            body["region"] = region
        answer = self._post("/v1/verify", body)
        if answer.get("verdict") not in VERDICTS:
            raise Unreachable(f"unexpected answer from /v1/verify: {_excerpt(answer)}")
        return answer

    def claim(
        self, scan: str, *, gtin: str, shipment_id: str, idempotency_key: str
    ) -> dict[str, Any]:
        """A station's claim of one unit: ``{"result": "pass"|"fail", "reason", ...}``.

        Sending the same ``idempotency_key`` again returns the first answer, so a claim whose
        answer was lost is sent again with its key, never with a new one.
        """
        body = {"scan": scan, "gtin": gtin, "shipment_id": shipment_id}
        answer = self._post(
            "/v1/fulfilment/verifications", body, headers={"Idempotency-Key": idempotency_key}
        )
        if answer.get("result") not in RESULTS:
            raise Unreachable(f"unexpected answer from a claim: {_excerpt(answer)}")
        return answer

    def _post(
        self, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            response = self._http.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:  # timeouts, refused connections, broken streams
            raise Unreachable(f"{self._http.base_url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code in _TRY_LATER:
            raise Unreachable(
                f"{response.request.url}: {_problem(response).args[0]}",
                retry_after=retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise _problem(response)
        try:
            answer = response.json()
        except ValueError as exc:
            # A proxy's or captive portal's HTML page: the API itself was not reached.
            raise Unreachable(f"{response.request.url}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise Unreachable(f"{response.request.url}: unexpected answer {_excerpt(answer)}")
        return answer


def _problem(response: httpx.Response) -> ApiError:
    """The RFC 9457 problem in ``response``; a bare error page becomes an about:blank one."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    return ApiError(
        type=_text(body.get("type")) or "about:blank",
        status=status,
        title=_text(body.get("title")) or response.reason_phrase or f"HTTP {status}",
        detail=_text(body.get("detail")),
    )


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _excerpt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
