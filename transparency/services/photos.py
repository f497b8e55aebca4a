"""Phone and station photos sent to the API: decode them in a worker process, then check
each code found as a customer (no key) or as a fulfilment claim (station key).

Decoding never runs in the API process (neither its event loop nor its GIL): a photo is
bytes out to a ``KillablePool`` worker and a few tuples back. A worker past the time limit
is killed, one that dies is replaced and the photo tried once more, and a full queue is
refused at once, so no photo can hold a CPU, or the photo service, for longer than the
limit."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from transparency.domain.errors import (
    DecodersBusy,
    ImageTooLarge,
    InvalidInput,
    ScanTimeout,
    Unavailable,
    UnreadableImage,
)
from transparency.domain.identity import Principal, Role
from transparency.domain.verification import CloneThresholds
from transparency.runtime.workers import KillablePool, PoolBusy, WorkerLost
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


def admit(decoders: KillablePool, time_limit: float) -> None:
    """Refuse a photo before its body is read (DecodersBusy) if it would find every decoder
    busy and the queue full: a flood is answered at once, not queued without end."""
    try:
        decoders.admit()
    except PoolBusy:
        raise _busy(time_limit) from None


def _busy(time_limit: float) -> DecodersBusy:
    # A place comes free within one time limit at the latest: a decode ends or is killed.
    return DecodersBusy(
        "every photo decoder is busy; retry shortly", retry_after=math.ceil(time_limit)
    )


async def scan_photo(
    ctx: Context,
    decoders: KillablePool,
    actor: Principal | None,
    content: bytes,
    *,
    gtin: str | None,
    shipment_id: str | None,
    region: str | None,
    thresholds: CloneThresholds,
    max_pixels: int,
    time_limit: float,
    charge: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every code in the photo, each with its check. ``charge(n)`` is called with the number
    of distinct codes found before any is checked (a customer's photo of 50 codes costs 50
    checks' worth of its budget); it raises to refuse them all."""
    if actor is not None:
        actor.require(Role.STATION)
        if not gtin or not shipment_id:
            raise InvalidInput("a station's photo needs gtin and shipment_id", field="gtin")
    found = await _decode(decoders, content, max_pixels, time_limit)
    # A code seen twice in one photo (two labels, or a label and its reflection) is checked
    # and recorded once: a photo is one look at each code, not a way to add scans.
    scans = list(dict.fromkeys((identifier or "") + text for text, _, identifier, _ in found))
    if charge is not None:
        charge(len(scans))
    if actor is None:
        checks = [
            (await customer.verify(ctx, scan, region, thresholds)).as_json() for scan in scans
        ]
    else:
        assert gtin is not None
        assert shipment_id is not None
        claims = [fulfilment.Claim(scan, gtin) for scan in scans]
        checks = await fulfilment.verify_many(ctx, actor, claims, shipment_id) if claims else []
        # Two spellings of one unit are claimed once; the copy shares the first's answer.
        checks = [checks[c["duplicate_of"]] if "duplicate_of" in c else c for c in checks]
    check_of = dict(zip(scans, checks, strict=True))
    return [
        {
            "text": text,
            "symbology": symbology,
            "symbology_identifier": identifier,
            "corners": corners,
            "verification": check_of[(identifier or "") + text],
        }
        for text, symbology, identifier, corners in found
    ]


async def _decode(
    decoders: KillablePool, content: bytes, max_pixels: int, time_limit: float
) -> list[Found]:
    """The codes in the photo, decoded in a worker process, or the error that refuses it."""
    try:
        found = await decoders.run(
            decode, content, max_pixels, time_limit * 0.8, time_limit=time_limit
        )
    except TimeoutError:
        # Its worker is killed before we get here: the photo costs no CPU after its 422.
        raise ScanTimeout(f"decoding took longer than {time_limit:g} s") from None
    except PoolBusy:
        raise _busy(time_limit) from None
    except WorkerLost:
        raise Unavailable(
            "the photo decoder stopped twice on this photo; retry later", retry_after=5
        ) from None
    if isinstance(found, tuple):
        why, detail = found
        if why == "too_large":
            raise ImageTooLarge(detail)
        raise UnreadableImage(detail)
    return found
