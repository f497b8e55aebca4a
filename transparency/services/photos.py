"""Phone and station photos sent to the API: decode them in a worker process, then check
each code found as a customer (no key) or as a fulfilment claim (station key)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from transparency.domain.errors import ImageTooLarge, InvalidInput, ScanTimeout, UnreadableImage
from transparency.domain.identity import Principal, Role
from transparency.domain.verification import CloneThresholds
from transparency.services import customer, fulfilment
from transparency.services.context import Context

Found = tuple[str, str, str | None, list[list[int]]]  # text, symbology, identifier, corners


def decode(content: bytes, max_pixels: int, budget: float) -> tuple[str, str] | list[Found]:
    """In a worker: the codes in an image, or ("error", why) for an unusable one.

    Errors travel as values: exceptions with their own constructors do not unpickle."""
    import scanner

    try:
        results = scanner.decode(content, time_budget=budget, max_pixels=max_pixels)
    except scanner.ImageTooLarge as exc:
        return ("too_large", str(exc))
    except scanner.ScannerError as exc:
        return ("unreadable", str(exc))
    return [
        (r.text, r.symbology.value, r.symbology_identifier, [list(p) for p in r.corners])
        for r in results
    ]


async def scan_photo(
    ctx: Context,
    executor: Executor,
    actor: Principal | None,
    content: bytes,
    *,
    gtin: str | None,
    shipment_id: str | None,
    region: str | None,
    thresholds: CloneThresholds,
    max_pixels: int,
    time_limit: float,
) -> list[dict[str, Any]]:
    if actor is not None:
        actor.require(Role.STATION)
        if not gtin or not shipment_id:
            raise InvalidInput("a station's photo needs gtin and shipment_id", field="gtin")
    loop = asyncio.get_running_loop()
    job = loop.run_in_executor(executor, decode, content, max_pixels, time_limit * 0.8)
    try:
        found = await asyncio.wait_for(job, time_limit)
    except TimeoutError:
        raise ScanTimeout(f"decoding took longer than {time_limit:g} s") from None
    if isinstance(found, tuple):
        why, detail = found
        if why == "too_large":
            raise ImageTooLarge(detail)
        raise UnreadableImage(detail)
    answers = []
    for text, symbology, identifier, corners in found:
        scan = (identifier or "") + text
        if actor is None:
            check = (await customer.verify(ctx, scan, region, thresholds)).as_json()
        else:
            assert gtin is not None
            assert shipment_id is not None
            claim = fulfilment.Claim(scan, gtin)
            check = (await fulfilment.verify_many(ctx, actor, [claim], shipment_id))[0]
        answers.append(
            {
                "text": text,
                "symbology": symbology,
                "symbology_identifier": identifier,
                "corners": corners,
                "verification": check,
            }
        )
    return answers
