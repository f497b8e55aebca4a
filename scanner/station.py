"""The warehouse station: frames in, one claim per unit that passes the camera, answers out.

Per frame: decode with a small time budget, keep the codes the ``Tracker`` has not seen in
the last frames, and commit a claim for each to the ``ClaimQueue``; the ``SenderThread``
sends them. stdout gets one line per answer (``PASS <code>`` / ``FAIL <code> <reason>``),
stderr a status line every few seconds.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from scanner.claims import Claim, ClaimQueue, Sighting
from scanner.errors import ImageTooLarge, ScannerError, UnreadableImage
from scanner.frames import Frame
from scanner.images import ImageInput
from scanner.results import Result, Symbology
from scanner.scan import decode
from scanner.sender import SenderThread
from scanner.tracker import DEFAULT_FORGET_AFTER, Tracker

VIDEO_TIME_BUDGET = 0.02  # seconds: a missed frame is followed by another in 40 ms
DEFAULT_DRAIN_TIMEOUT = 30.0
STATUS_EVERY = 2.0  # seconds between status lines
STOP_WAIT = 5.0  # seconds to let the request in flight finish at shutdown

# A product's retail barcode is on every box and names a product, never a unit.
_NOT_UNIT_CODES = frozenset({Symbology.EAN_13, Symbology.EAN_8, Symbology.UPC_A})

Read = Callable[[ImageInput], list[Result]]


@dataclass(frozen=True, slots=True)
class StationSummary:
    frames: int
    frames_read: int  # frames with at least one code worth claiming, new or not
    claims: int
    passed: int
    failed: int
    queued: int  # claims still without an answer when the station stopped
    interrupted: bool


def sighting(result: Result) -> Sighting | None:
    """What to claim for a decoded code, or None for codes that name no unit.

    The API gets the raw text with its symbology identifier; the code shown (and used to
    tell repeats apart) is the canonical one when the text parses, since two decoders may
    read the same symbol with and without an identifier.
    """
    if result.symbology in _NOT_UNIT_CODES:
        return None
    scan = (result.symbology_identifier or "") + result.text
    code = result.parsed.text if result.parsed is not None else printable(result.text)
    return Sighting(scan=scan, code=code)


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


class Station:
    """Decode, dedupe and enqueue, one frame at a time; ``run`` adds the loop around it."""

    def __init__(
        self,
        queue: ClaimQueue,
        *,
        gtin: str,
        shipment_id: str,
        out: TextIO,
        err: TextIO,
        read: Read | None = None,
        time_budget: float = VIDEO_TIME_BUDGET,
        forget_after: int = DEFAULT_FORGET_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.gtin = gtin
        self.shipment_id = shipment_id
        self.out = out
        self.err = err
        self.read = read or functools.partial(decode, time_budget=time_budget)
        self.tracker = Tracker(forget_after)
        self.clock = clock
        self.frames = self.frames_read = self.claims = self.passed = self.failed = 0
        self._lock = threading.Lock()  # answers are reported from the sender's thread

    def process(self, frame: Frame) -> list[Claim]:
        """The claims this frame adds, already committed to the queue."""
        self.frames += 1
        try:
            results = self.read(frame.image)
        except (UnreadableImage, ImageTooLarge) as exc:
            if frame.file is None:
                raise
            # A bad photo in the folder is reported and not read again: no retry would fix it.
            self._say(self.err, f"scanner: {frame.file}: {exc}")
            results = []
        wanted = {s.code: s for s in filter(None, map(sighting, results))}
        self.frames_read += bool(wanted)
        new = [wanted[code] for code in self.tracker.update(wanted)]
        if not new and frame.file is None:
            return []
        claims = self.queue.enqueue(
            new, gtin=self.gtin, shipment_id=self.shipment_id, file=frame.file
        )
        self.claims += len(claims)
        return claims

    def report(self, claim: Claim) -> None:
        """Show a claim's answer (called by the sender, from its thread)."""
        with self._lock:
            if claim.passed:
                self.passed += 1
                line = f"PASS {claim.code}"
            else:
                self.failed += 1
                line = f"FAIL {claim.code} {claim.reason}"
        self._say(self.out, line)

    def run(
        self,
        frames: Iterable[Frame | None],
        sender: SenderThread,
        *,
        max_frames: int | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        status_every: float = STATUS_EVERY,
    ) -> StationSummary:
        """Until the frames end (then until the queue drains or ``drain_timeout`` passes),
        ``max_frames`` frames are done, or Ctrl-C. The sender is started and stopped here;
        whatever is still queued stays in the queue for the next start."""
        status = _Status(self, status_every)
        interrupted = False
        sender.start()
        try:
            for frame in frames:
                self._check(sender)
                if frame is not None and self.process(frame):
                    sender.wake()
                status.tick()
                if max_frames is not None and self.frames >= max_frames:
                    break
            deadline = self.clock() + drain_timeout
            while self.queue.pending_count() and self.clock() < deadline:
                self._check(sender)
                time.sleep(0.05)
                status.tick()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sender.stop(STOP_WAIT)
        self._check(sender)
        status.tick(force=True)
        return StationSummary(
            frames=self.frames,
            frames_read=self.frames_read,
            claims=self.claims,
            passed=self.passed,
            failed=self.failed,
            queued=self.queue.pending_count(),
            interrupted=interrupted,
        )

    def _check(self, sender: SenderThread) -> None:
        if sender.fatal is None:
            return
        if isinstance(sender.fatal, ScannerError):
            raise sender.fatal
        raise RuntimeError("the claim sender stopped") from sender.fatal

    def _say(self, stream: TextIO, line: str) -> None:
        with self._lock:
            print(line, file=stream, flush=True)


class _Status:
    """The status line: answers so far, claims waiting, and frames/s since the last line."""

    def __init__(self, station: Station, every: float) -> None:
        self.station = station
        self.every = every
        self.since = station.clock()
        self.frames = station.frames

    def tick(self, *, force: bool = False) -> None:
        now = self.station.clock()
        elapsed = now - self.since
        if not force and elapsed < self.every:
            return
        fps = (self.station.frames - self.frames) / elapsed if elapsed > 0 else 0.0
        s = self.station
        s._say(
            s.err,
            f"station: {s.passed} pass, {s.failed} fail, {s.queue.pending_count()} queued,"
            f" {fps:.1f} frames/s",
        )
        self.since, self.frames = now, s.frames
