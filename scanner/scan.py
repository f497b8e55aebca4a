"""``decode``: an image in, the codes in it out."""

from __future__ import annotations

import time
from dataclasses import replace

import cv2
import numpy as np

from scanner import ladder
from scanner.errors import UnreadableImage
from scanner.images import MAX_PIXELS, Grey, ImageInput, load
from scanner.results import Result, _parse

DEFAULT_TIME_BUDGET = 0.25  # seconds; a hard photo rarely yields to more


def decode(
    image: ImageInput,
    *,
    time_budget: float = DEFAULT_TIME_BUDGET,
    max_pixels: int = MAX_PIXELS,
) -> list[Result]:
    """Every code found in ``image``, each once; ``[]`` when there is none.

    ``image`` is a grey/BGR/BGRA uint8 array, a path, or the bytes of a PNG, JPEG or WebP
    file. The ladder stops at the first step that finds anything, or once ``time_budget``
    seconds are spent (the first step always runs). Raises ``UnreadableImage`` or
    ``ImageTooLarge`` only for input that is not a usable image.
    """
    started = time.perf_counter()
    try:
        return _climb(load(image, max_pixels=max_pixels), started, time_budget)
    except cv2.error as exc:
        # OpenCV refuses shapes its steps cannot take (a 10000x2 PNG scales to a height of
        # 0); such an image is unusable input, not a fault of ours.
        raise UnreadableImage(f"cannot process this image ({_cv_reason(exc)})") from exc


def _climb(grey: Grey, started: float, time_budget: float) -> list[Result]:
    view_of = ladder.views(grey)
    for step in ladder.LADDER:
        view = view_of(step.view)
        if view is None:
            continue
        found = [view.corners_in_source(result) for result in step.read(view.image)]
        if found:
            return [
                replace(result, parsed=_parse(result.text, result.symbology_identifier))
                for result in unique(found)
            ]
        if time.perf_counter() - started > time_budget:
            break
    return []


def _cv_reason(exc: cv2.error) -> str:
    # The message names OpenCV's source files; its first assertion is enough for a caller.
    reason = str(getattr(exc, "err", "") or "").strip()
    return reason[:200] or "OpenCV error"


def unique(results: list[Result]) -> list[Result]:
    """One result per physical code: the same text in the same place is one code.

    The same text elsewhere in the image is another label and is kept.
    """
    kept: list[Result] = []
    for result in results:
        if not any(_same_code(result, other) for other in kept):
            kept.append(result)
    return kept


def _same_code(a: Result, b: Result) -> bool:
    if a.text != b.text or a.symbology != b.symbology:
        return False
    if not a.corners or not b.corners:
        return True
    points_a, points_b = np.array(a.corners, float), np.array(b.corners, float)
    distance = float(np.linalg.norm(points_a.mean(axis=0) - points_b.mean(axis=0)))
    size = max(np.ptp(points_a, axis=0).max(), np.ptp(points_b, axis=0).max(), 1.0)
    return bool(distance < size / 2)
