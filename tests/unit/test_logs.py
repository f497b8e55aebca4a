"""The log handler: formatted where logged, written by a thread, never blocking."""

from __future__ import annotations

import json
import logging
import os
import re
import time

from transparency.runtime.logs import Handoff, JsonFormatter


def test_a_sink_that_does_not_read_never_blocks_the_logger_and_drops_are_told() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    sink = os.fdopen(write_end, "w")
    handler = Handoff(sink, capacity=50)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.handoff")
    log.propagate = False
    # Its own level: otherwise the root's, which any in-process app sets (logs.configure);
    # a level above WARNING would let no line through, and nothing would drop.
    log.setLevel(logging.WARNING)
    log.addHandler(handler)
    try:
        started = time.monotonic()
        for n in range(5_000):  # about 500 KB: eight full pipes
            log.warning("line %d", n, extra={"pad": "x" * 40})
        assert time.monotonic() - started < 30  # a blocking write would never return
        assert handler.dropped > 0

        text = b""
        deadline = time.monotonic() + 30
        while not re.search(rb"log lines dropped[^\n]*\n", text):  # a whole line
            assert time.monotonic() < deadline, text[-500:]
            try:
                text += os.read(read_end, 1 << 16)
            except BlockingIOError:
                log.warning("after")  # the notice comes before the next line
                time.sleep(0.01)
        notice = next(
            json.loads(line) for line in text.splitlines() if b"log lines dropped" in line
        )
        assert notice["level"] == "WARNING"
        assert int(notice["msg"].split()[0]) > 0
    finally:
        log.removeHandler(handler)
        handler.close()
        sink.close()
        os.close(read_end)
