"""Where a station's frames come from: a camera, a video file, or a folder of photos.

A source is a generator of ``Frame``; a watched folder also yields ``None`` each time it
finds nothing new, so the station keeps its status line and its exit checks going.
Close the generator to release the camera or file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import cv2

from scanner.errors import UnusableSource
from scanner.images import ImageInput

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
DEFAULT_POLL = 0.1  # seconds between looks at a watched folder

FrameSource = Generator["Frame | None", None, None]


@dataclass(frozen=True, slots=True)
class Frame:
    """An image to decode; ``file`` names the watched file it came from, if any."""

    image: ImageInput
    file: str | None = None


def video(source: int | str | Path) -> FrameSource:
    """The frames of a camera (its index) or a video file, until it ends or fails."""
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    try:
        if not capture.isOpened():
            what = f"camera {source}" if isinstance(source, int) else str(source)
            raise UnusableSource(f"{what}: cannot open it")
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                return
            yield Frame(image)
    finally:
        capture.release()


def watch(folder: Path, *, done: Callable[[str], bool], poll: float = DEFAULT_POLL) -> FrameSource:
    """Each new image file in ``folder``, in name order, once; ``None`` when there is none.

    ``done(name)`` says a file was already handled (by this run or one before it). Files
    whose name starts with a dot are skipped: write a photo under such a name and rename it
    into place, so the station never reads half a file.
    """
    if not folder.is_dir():
        raise UnusableSource(f"{folder}: not a directory")
    handed: set[str] = set()
    while True:
        try:
            names = sorted(
                entry.name
                for entry in folder.iterdir()
                if entry.suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith(".")
            )
        except OSError as exc:
            raise UnusableSource(f"{folder}: {exc.strerror or exc}") from exc
        new = []
        for name in names:
            if name not in handed:
                handed.add(name)  # asks the queue about each name once, not at every poll
                if not done(name):
                    new.append(name)
        for name in new:
            yield Frame(folder / name, file=name)
        if not new:
            yield None
            time.sleep(poll)
