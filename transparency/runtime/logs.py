"""JSON log lines, each carrying the id of the request it belongs to."""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
import threading
from contextlib import suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# LogRecord attributes that are not caller-supplied `extra` fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being served when it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class Handoff(logging.Handler):
    """Formats a record where it is logged and writes it from a thread of its own.

    A write to stderr blocks once its reader stops reading (a full pipe, a stuck log
    shipper, a terminal paused with Ctrl-S), and a StreamHandler's write would then block
    the event loop that logged it: every request of that process waits, fulfilment with
    them. Here the event loop only puts the line in a bounded queue; when the queue is
    full the line is dropped and counted, and a line saying how many were dropped is
    written once the sink reads again.
    """

    def __init__(self, stream: TextIO, capacity: int = 10_000) -> None:
        super().__init__()
        self.dropped = 0
        self._lines: queue.Queue[str | None] = queue.Queue(capacity)
        self._writer = threading.Thread(
            target=self._write, args=(stream,), name="log-writer", daemon=True
        )
        self._writer.start()
        atexit.register(self.close)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if self.dropped and self._lines.qsize() < self._lines.maxsize // 2:
            notice = logging.makeLogRecord({
                "name": __name__, "levelname": "WARNING", "levelno": logging.WARNING,
                "msg": "%d log lines dropped: the log sink was not reading",
                "args": (self.dropped,),
            })  # fmt: skip
            with suppress(queue.Full):
                self._lines.put_nowait(self.format(notice))
                self.dropped = 0
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _write(self, stream: TextIO) -> None:
        while (line := self._lines.get()) is not None:
            with suppress(Exception):  # a closed sink: nothing else to tell it with
                stream.write(line + "\n")
                stream.flush()

    def close(self) -> None:
        """Write what is queued (for a second at most: the sink may be stuck), then stop."""
        with suppress(queue.Full):
            self._lines.put_nowait(None)
        if self._writer.is_alive() and threading.current_thread() is not self._writer:
            self._writer.join(timeout=1.0)
        super().close()


def configure(level: str = "INFO", fmt: str = "json") -> None:
    for old in logging.getLogger().handlers:
        if isinstance(old, Handoff):
            old.close()
    handler = Handoff(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
