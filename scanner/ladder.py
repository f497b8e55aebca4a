"""The preprocessing ladder: views of an image, cheapest first, each paired with a decoder.

``decode`` climbs it until a step finds a code or the time budget is spent. The order comes
from ``bench/bench_scanner.py``: most photos are read by the first step, and each later
step is there because it reads a photo that the steps before it miss. Every view carries
the homography back to the caller's image, so corners are reported where the code is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from scanner import decoders
from scanner.images import Grey, as_grey
from scanner.results import Result

Matrix: TypeAlias = npt.NDArray[np.float64]
Read: TypeAlias = Callable[[Grey], list[Result]]

# Decoders find modules of 2-3 pixels and more; a 12 MP photo is scanned at about 2 MP and
# only climbs to full resolution at the end, for codes too small to survive the scaling.
MAX_BASE_SIDE = 2048
SMALL_SIDE = 1024


@dataclass(frozen=True, slots=True)
class View:
    image: Grey
    to_source: Matrix  # 3x3 homography from this view's pixels to the input image's

    def corners_in_source(self, result: Result) -> Result:
        if not result.corners or np.array_equal(self.to_source, _IDENTITY):
            return result
        points = np.array(result.corners, dtype=np.float64).reshape(-1, 1, 2)
        mapped = cv2.perspectiveTransform(points, self.to_source).reshape(-1, 2)
        corners = tuple((round(float(x)), round(float(y))) for x, y in mapped)
        return Result(result.text, result.symbology, result.symbology_identifier, corners)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    view: str
    read: Read


_IDENTITY: Matrix = np.eye(3)


def _scale(factor: float) -> Matrix:
    return np.diag([1.0 / factor, 1.0 / factor, 1.0])


def _resized(view: View, factor: float) -> View:
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    image = as_grey(cv2.resize(view.image, None, fx=factor, fy=factor, interpolation=interpolation))
    height, width = view.image.shape
    # The real factors differ from ``factor`` by rounding of the new size.
    fx, fy = image.shape[1] / width, image.shape[0] / height
    return View(image, view.to_source @ np.diag([1.0 / fx, 1.0 / fy, 1.0]))


def _same_place(view: View, image: npt.NDArray[Any]) -> View:
    return View(as_grey(image), view.to_source)


def base(source: Grey) -> View:
    view = View(source, _IDENTITY)
    side = max(source.shape)
    return view if side <= MAX_BASE_SIDE else _resized(view, MAX_BASE_SIDE / side)


def _full(source: Grey, base_view: View) -> View | None:
    return None if base_view.image is source else View(source, _IDENTITY)


def _half(view: View) -> View | None:
    return _resized(view, 0.5) if min(view.image.shape) >= 160 else None


def _double(view: View) -> View | None:
    return _resized(view, 2.0) if max(view.image.shape) <= SMALL_SIDE else None


def _median(view: View) -> View:
    return _same_place(view, cv2.medianBlur(view.image, 3))


def _clahe(view: View) -> View:
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return _same_place(view, clahe.apply(view.image))


def _adaptive(view: View) -> View:
    # A block of about 1/15 of the image spans a few modules of a code filling a fair part
    # of it: local enough for uneven light, wide enough not to hollow out dark modules.
    block = max(15, min(view.image.shape) // 15) | 1
    image = cv2.adaptiveThreshold(
        view.image, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 5
    )
    return _same_place(view, image)


def _inverted(view: View) -> View:
    # zxing-cpp tries inverted images itself; zbar does not.
    return _same_place(view, cv2.bitwise_not(view.image))


def _label_hull(grey: Grey) -> npt.NDArray[np.int32] | None:
    """The convex hull of the largest bright region: the label a code is printed on."""
    _, bright = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(largest)
    if area < 0.05 * grey.size or area > 0.95 * grey.size:
        return None
    return np.asarray(cv2.convexHull(largest), dtype=np.int32)


def _whitened(view: View) -> View | None:
    # A label on a dark surface leaves the code without its light quiet zone; painting
    # everything off the label white gives the finder patterns one back.
    hull = _label_hull(view.image)
    if hull is None:
        return None
    mask = np.zeros_like(view.image)
    cv2.fillConvexPoly(mask, hull, 255)
    image = view.image.copy()
    image[mask == 0] = 255
    return _same_place(view, image)


def _rectified(view: View) -> View | None:
    """The label's quadrilateral warped to a square: undoes perspective the decoders can't."""
    hull = _label_hull(view.image)
    if hull is None:
        return None
    quad = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, closed=True), closed=True)
    if len(quad) == 4:
        corners = quad.reshape(4, 2).astype(np.float32)
    else:
        corners = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)
    sums, diffs = corners.sum(axis=1), np.diff(corners, axis=1).ravel()
    ordered = np.array(
        [
            corners[np.argmin(sums)],
            corners[np.argmin(diffs)],
            corners[np.argmax(sums)],
            corners[np.argmax(diffs)],
        ],
        dtype=np.float32,
    )
    side = int(max(np.linalg.norm(ordered[0] - ordered[2]), 64) / np.sqrt(2))
    margin = side // 10
    target = np.array(
        [
            [margin, margin],
            [margin + side, margin],
            [margin + side, margin + side],
            [margin, margin + side],
        ],
        dtype=np.float32,
    )
    to_view = cv2.getPerspectiveTransform(ordered, target)
    size = side + 2 * margin
    image = cv2.warpPerspective(view.image, to_view, (size, size), borderValue=255)
    return View(as_grey(image), view.to_source @ np.linalg.inv(to_view))


def _rotated(view: View) -> View:
    # zxing-cpp finds QR and DataMatrix at any angle, but its line scans for finder
    # patterns are weakest at 45 degrees to the pixel grid.
    height, width = view.image.shape
    side = int(np.ceil(np.hypot(width, height)))
    to_view = cv2.getRotationMatrix2D((width / 2, height / 2), 45, 1.0)
    to_view[:, 2] += ((side - width) / 2, (side - height) / 2)
    image = cv2.warpAffine(view.image, to_view, (side, side), borderValue=255)
    to_view3 = np.vstack([to_view, [0.0, 0.0, 1.0]])
    return View(as_grey(image), view.to_source @ np.linalg.inv(to_view3))


TINY_SIDE = 400


def _sharpened(view: View) -> View | None:
    # A tiny, soft photo (a phone far from a label on cloth): four times the pixels and an
    # unsharp mask give the binarizer module edges to cut on.
    if max(view.image.shape) > TINY_SIDE:
        return None
    up = _resized(view, 4.0)
    soft = cv2.GaussianBlur(up.image, (0, 0), 4)
    return _same_place(up, cv2.addWeighted(up.image, 1.8, soft, -0.8, 0))


VIEWS: dict[str, Callable[[View], View | None]] = {
    "base": lambda view: view,
    "half": _half,
    "double": _double,
    "median": _median,
    "clahe": _clahe,
    "adaptive": _adaptive,
    "inverted": _inverted,
    "whitened": _whitened,
    "rectified": _rectified,
    "rotated": _rotated,
    "sharpened": _sharpened,
}

_zxing_global = partial(decoders.zxing, global_binarizer=True)

LADDER: tuple[Step, ...] = (
    Step("zxing", "base", decoders.zxing),
    Step("zxing global binarizer", "base", _zxing_global),
    Step("zbar", "base", decoders.zbar),
    Step("zxing x2", "double", decoders.zxing),
    Step("zxing half global binarizer", "half", _zxing_global),
    Step("zbar half", "half", decoders.zbar),
    Step("zxing median global binarizer", "median", _zxing_global),
    Step("zxing clahe", "clahe", decoders.zxing),
    Step("zxing adaptive threshold", "adaptive", decoders.zxing),
    Step("zbar inverted", "inverted", decoders.zbar),
    Step("zxing whitened global binarizer", "whitened", _zxing_global),
    Step("zxing rectified", "rectified", decoders.zxing),
    Step("opencv", "base", decoders.opencv),
    Step("zxing rotated", "rotated", decoders.zxing),
    Step("zxing sharpened x4 global binarizer", "sharpened", _zxing_global),
    Step("zxing full resolution", "full", decoders.zxing),
)


def views(source: Grey) -> Callable[[str], View | None]:
    """A memo of the views of ``source``, each built on first use."""
    base_view = base(source)
    made: dict[str, View | None] = {"base": base_view, "full": _full(source, base_view)}

    def view(name: str) -> View | None:
        if name not in made:
            made[name] = VIEWS[name](base_view)
        return made[name]

    return view
