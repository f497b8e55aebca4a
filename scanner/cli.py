"""The plain functions behind ``scanner``'s subcommands; ``__main__`` maps them to exit codes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from scanner import frames
from scanner.claims import ClaimQueue
from scanner.client import Client
from scanner.errors import ApiError, ScannerError, Unreachable, UnusableSource
from scanner.frames import FrameSource
from scanner.results import Result
from scanner.scan import DEFAULT_TIME_BUDGET, decode
from scanner.sender import Sender, SenderThread
from scanner.station import (
    DEFAULT_DRAIN_TIMEOUT,
    STATUS_EVERY,
    VIDEO_TIME_BUDGET,
    Station,
    StationSummary,
    printable,
)
from scanner.tracker import DEFAULT_FORGET_AFTER


@dataclass(frozen=True, slots=True)
class DecodeSummary:
    codes: int
    unreadable: int


def result_line(file: str, result: Result) -> dict[str, Any]:
    return {"file": file, **result.as_json()}


def decode_files(
    paths: Sequence[Path],
    *,
    out: TextIO,
    err: TextIO,
    time_budget: float = DEFAULT_TIME_BUDGET,
) -> DecodeSummary:
    """One JSON line on ``out`` per code found; one ``scanner: FILE: REASON`` line on ``err``
    per file that is not a usable image. Every file is processed, whatever the others do."""
    codes = unreadable = 0
    for path in paths:
        try:
            results = decode(path, time_budget=time_budget)
        except ScannerError as exc:
            unreadable += 1
            print(f"scanner: {path}: {exc}", file=err)
            continue
        for result in results:
            # ensure_ascii keeps GS (0x1D) visible as \u001d and the line pure ASCII.
            print(json.dumps(result_line(str(path), result)), file=out)
        codes += len(results)
    return DecodeSummary(codes=codes, unreadable=unreadable)


@dataclass(frozen=True, slots=True)
class VerifySummary:
    codes: int
    unreadable: int
    api_errors: int


def verify_files(
    paths: Sequence[Path],
    client: Client,
    *,
    out: TextIO,
    err: TextIO,
    region: str | None = None,
    time_budget: float = DEFAULT_TIME_BUDGET,
) -> VerifySummary:
    """One JSON line on ``out`` per code found and verified; one ``scanner: FILE: REASON``
    line on ``err`` per unusable image and per code the API did not answer."""
    codes = unreadable = api_errors = 0
    for path in paths:
        try:
            results = decode(path, time_budget=time_budget)
        except ScannerError as exc:
            unreadable += 1
            print(f"scanner: {path}: {exc}", file=err)
            continue
        for result in results:
            codes += 1
            scan = (result.symbology_identifier or "") + result.text
            try:
                answer = client.verify(scan, region=region)
            except (ApiError, Unreachable) as exc:
                api_errors += 1
                print(f"scanner: {path}: {printable(result.text)}: {exc}", file=err)
                continue
            line = {
                "file": str(path),
                "text": result.text,
                "verdict": answer["verdict"],
                "warnings": answer.get("warnings", []),
                "product": answer.get("product"),
            }
            print(json.dumps(line), file=out)
    return VerifySummary(codes=codes, unreadable=unreadable, api_errors=api_errors)


@dataclass(frozen=True, slots=True)
class StationOptions:
    gtin: str
    shipment_id: str
    queue: Path
    time_budget: float = VIDEO_TIME_BUDGET
    forget_after: int = DEFAULT_FORGET_AFTER
    max_frames: int | None = None
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    status_every: float = STATUS_EVERY


def frame_source(
    queue: ClaimQueue, *, camera: int | None, video: Path | None, watch: Path | None
) -> FrameSource:
    """The one source the arguments name (argparse makes them exclusive)."""
    if camera is not None:
        return frames.video(camera)
    if video is not None:
        if not video.is_file():
            raise UnusableSource(f"{video}: no such file")
        return frames.video(video)
    if watch is not None:
        return frames.watch(watch, done=queue.file_done)
    raise ValueError("no frame source")


def station(
    client: Client,
    options: StationOptions,
    *,
    camera: int | None = None,
    video: Path | None = None,
    watch: Path | None = None,
    out: TextIO,
    err: TextIO,
) -> StationSummary:
    """Run a station until its source ends, ``max_frames``, or Ctrl-C (see ``Station.run``)."""
    # Two connections to the queue: the sender's thread has its own.
    with ClaimQueue(options.queue) as queue, ClaimQueue(options.queue) as sender_queue:
        station = Station(
            queue,
            gtin=options.gtin,
            shipment_id=options.shipment_id,
            out=out,
            err=err,
            time_budget=options.time_budget,
            forget_after=options.forget_after,
        )
        sender = SenderThread(Sender(sender_queue, client, station.report))
        source = frame_source(queue, camera=camera, video=video, watch=watch)
        with contextlib.closing(source):
            return station.run(
                source,
                sender,
                max_frames=options.max_frames,
                drain_timeout=options.drain_timeout,
                status_every=options.status_every,
            )
