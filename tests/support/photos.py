"""Photos for /v1/scans tests, the hostile ones built the way an attacker would, and the
photo decoders of a process (to kill them)."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import psutil
import qrcode
from PIL import Image

Pixels = npt.NDArray[np.uint8]


def png(pixels: Pixels) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def blank_png() -> bytes:
    """A small photo with no code in it: its whole ladder takes a few milliseconds."""
    return png(np.full((48, 64), 200, dtype=np.uint8))


def qr_pixels(text: str) -> Pixels:
    return np.array(qrcode.make(text, box_size=6).convert("L"), dtype=np.uint8)


def qr_png(text: str) -> bytes:
    return png(qr_pixels(text))


def labels_png(*texts: str) -> bytes:
    """One photo of several QR labels side by side (the same text twice: two labels)."""
    labels = [qr_pixels(text) for text in texts]
    height = max(label.shape[0] for label in labels)
    gap = np.full((height, 40), 255, dtype=np.uint8)
    row: list[Pixels] = []
    for label in labels:
        padded = np.full((height, label.shape[1]), 255, dtype=np.uint8)
        padded[: label.shape[0]] = label
        row += [padded, gap]
    return png(np.hstack(row))


def sliver_png(width: int = 10_000, height: int = 2) -> bytes:
    """A tiny file of an absurd shape (103 bytes for 10000x2)."""
    return png(np.full((height, width), 255, dtype=np.uint8))


def progressive_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A progressive JPEG as a phone writes one (PIL: libjpeg's script, 6 scans for grey).

    Plain grey: its last scans (refinements) are a few bytes each, as in the audit's file.
    """
    out = io.BytesIO()
    pixels = np.full((height, width), 200, dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="JPEG", progressive=True, quality=90)
    return out.getvalue()


def with_last_scan_repeated(jpeg: bytes, times: int) -> bytes:
    """``jpeg`` with its last scan (SOS marker to end of image) repeated ``times`` more
    times: each one more pass of the decoder over the whole image, for a few bytes."""
    assert jpeg.endswith(b"\xff\xd9")
    end = len(jpeg) - 2
    last = jpeg.rfind(b"\xff\xda")
    return jpeg[:end] + jpeg[last:end] * times + b"\xff\xd9"


def scans_in(jpeg: bytes) -> int:
    return jpeg.count(b"\xff\xda")


def slow_jpeg() -> bytes:
    """150 KB that pass every header check (36 MP, 99 scans) and take seconds to decode:
    6.5 s on the (idle) machine this was written on; tests give it a time limit of 1 s."""
    jpeg = progressive_jpeg(6000, 6000)
    return with_last_scan_repeated(jpeg, 99 - scans_in(jpeg))


def spawned_by(pid: int) -> list[psutil.Process]:
    """The processes ``pid`` started with multiprocessing's spawn: a test's or an API
    process's workers (photo decoders, job workers), or serve's API processes."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def gone(process: psutil.Process | int) -> bool:
    """Ended and reaped, or at least ended (a zombie holds no CPU or memory)."""
    try:
        found = process if isinstance(process, psutil.Process) else psutil.Process(process)
        return bool(found.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
