"""The customer rate limit of a served instance counts clients, not what they claim to be."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.served import Served, free_port


def statuses(served: Served, forwarded: list[str]) -> list[int]:
    """The status of a customer check sent with each X-Forwarded-For value."""
    with httpx.Client(base_url=served.url, timeout=30) as http:
        return [
            http.get("/v1/verify", params={"code": "x"}, headers={"X-Forwarded-For": f}).status_code
            for f in forwarded
        ]


def test_a_local_peer_cannot_buy_budgets_with_x_forwarded_for(tmp_path: Path) -> None:
    """uvicorn took X-Forwarded-For from any loopback peer as the client: a new address per
    request was a new budget. Without trusted proxies, the peer is the client."""
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_LOG_LEVEL="ERROR",
        TRANSPARENCY_CUSTOMER_BURST="3", TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1",
    )  # fmt: skip
    served.wait_ready()
    forged = statuses(served, [f"198.51.100.{n}" for n in range(5)])
    code, _, err = served.stop()
    assert code == 0, err
    assert forged[3:] == [429, 429]
    assert 429 not in forged[:3]


def test_a_trusted_proxy_names_the_client_and_its_spellings_share_a_budget(
    tmp_path: Path,
) -> None:
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_LOG_LEVEL="ERROR",
        TRANSPARENCY_CUSTOMER_BURST="2", TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1",
        TRANSPARENCY_TRUSTED_PROXIES="127.0.0.0/8",
    )  # fmt: skip
    served.wait_ready()
    one_client = ["2001:db8::7", "2001:DB8:0::7", "2001:db8::8"]  # one /64
    others = ["6.6.6.6, 203.0.113.9", "::ffff:203.0.113.10"]
    got = statuses(served, one_client), statuses(served, others)
    code, _, err = served.stop()
    assert code == 0, err
    assert got[0][2] == 429
    assert 429 not in got[0][:2]
    assert 429 not in got[1]  # each its own client, as the proxy says
