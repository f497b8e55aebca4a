"""A tiny app for the supervisor's tests: it answers with its process id, and every process
but the first to start takes a few seconds to start (``SUPERVISED_FIRST`` names a file that
the first one creates)."""

from __future__ import annotations

import os
import time
from typing import Any


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


def app_factory() -> Any:
    try:
        os.close(os.open(os.environ["SUPERVISED_FIRST"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(float(os.environ.get("SUPERVISED_DELAY", "4")))
    return _app
