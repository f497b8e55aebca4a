"""Which codes in a frame are new: a code counts once while it stays in view.

A code counts when it is in a frame and in none of the ``forget_after`` frames before it.
So a label that stays in front of the camera, even if a blurred frame or two miss it, is one
sighting; it counts again only after it has been out of view for ``forget_after`` frames in
a row.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_FORGET_AFTER = 10  # frames: 0.4 s at 25 frames/s, longer than a motion blur


class Tracker:
    def __init__(self, forget_after: int = DEFAULT_FORGET_AFTER) -> None:
        if forget_after < 1:
            raise ValueError("forget_after must be at least 1 frame")
        self.forget_after = forget_after
        self._frame = 0
        self._last_seen: dict[str, int] = {}

    def update(self, keys: Iterable[str]) -> list[str]:
        """The keys in this frame that count as new, in the order given, each once."""
        self._frame += 1
        new = []
        for key in dict.fromkeys(keys):
            last = self._last_seen.get(key)
            if last is None or self._frame - last > self.forget_after:
                new.append(key)
            self._last_seen[key] = self._frame
        if len(self._last_seen) > 1000:
            # A station runs for days: forget the codes that could no longer be repeats.
            self._last_seen = {
                key: seen
                for key, seen in self._last_seen.items()
                if self._frame - seen <= self.forget_after
            }
        return new
