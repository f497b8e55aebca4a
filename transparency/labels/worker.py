"""A label file rendered in a process of its own: labels in on stdin, the file out on stdout.

    python -m transparency.labels.worker [CPU,CPU,...]

The API process starts one per label download, so rendering (a few milliseconds of CPU a
label, minutes for a large batch) never runs on its event loop or holds its GIL. Both ends
are pipes: when the client stops reading, this process blocks on its write and stops
reading labels, and memory stays at a page of labels and a pipe's worth of bytes.

Input, one JSON value a line: first ``{"kind": "pdf" | "png.zip" | "svg.zip", "layout":
{SheetLayout's fields}, "call_to_action": text}``, then ``[symbol_text, human_text,
symbology, code, [line, ...]]`` per label, until end of input. Exit status 0 when the
file is complete; 3 (``BAD_LABEL``) with a one-line reason on stderr when a label cannot
be drawn (``ValueError`` from the renderer), before anything is written when it is on the
first page; if its parent dies, its pipes close and it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from transparency.labels import BAD_LABEL, PIECE
from transparency.labels.render import Label, SheetLayout, Symbology, write_pdf, write_zip
from transparency.runtime.turns import turns

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer


def labels(lines: BinaryIO, call_to_action: str = "") -> Iterator[Label]:
    for line in lines:
        symbol_text, human_text, symbology, code, printed = json.loads(line)
        yield Label(
            symbol_text, human_text, Symbology(symbology), code, tuple(printed), call_to_action
        )


def render(source: BinaryIO, out: BinaryIO) -> None:
    header: dict[str, Any] = json.loads(source.readline())
    kind = header["kind"]
    layout = SheetLayout(**header["layout"])
    items = labels(source, header.get("call_to_action", ""))
    if kind == "pdf":
        write_pdf(items, out, layout)
    else:
        write_zip(items, out, kind="svg" if kind == "svg.zip" else "png", layout=layout)
    out.flush()


class _Waiting(io.FileIO):
    """A pipe whose reads and writes, which may wait on the other end, hold no bulk turn."""

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with turns().released():
            return super().readinto(buffer)

    def write(self, data: ReadableBuffer, /) -> int:
        with turns().released():
            return super().write(data)


def main(argv: list[str]) -> int:
    # Below the API processes and PostgreSQL: a label file is bulk work, a claim is not.
    # SCHED_IDLE, on the bulk CPUs the parent names, as runtime.workers.background says why
    # (this layer does not import it).
    os.nice(10)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    if argv and argv[0]:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            os.sched_setaffinity(0, {int(cpu) for cpu in argv[0].split(",")})
    # Rendering holds a bulk turn (one bulk task per bulk CPU, turns.py), given back while
    # this process waits on its pipes: a client that stops reading keeps no turn.
    bulk = turns()
    source = io.BufferedReader(_Waiting(sys.stdin.fileno(), "rb", closefd=False), 1 << 16)
    # Little of the file waits anywhere for a client that stopped reading (a second of
    # drawing in each of these buffers, the pipe's, the parent's and the socket's): 16 KiB
    # writes, into a pipe of 16 KiB, which the parent reads whole.
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(sys.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIECE)
    out = io.BufferedWriter(_Waiting(sys.stdout.fileno(), "wb", closefd=False), PIECE)
    try:
        with bulk.turn():
            render(source, out)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return BAD_LABEL
    except BrokenPipeError:  # the parent stopped listening: nobody wants the rest
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
