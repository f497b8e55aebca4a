"""The test harness reads a served process's output as it comes: a process whose unread
pipe is full blocks on its next log line, and every request it holds waits with it (the
cause of test_a_killed_job_resumes_after_restart's 30 s ReadTimeout on a busy machine)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.served import Served, free_port

# Each request logs a line of about 240 bytes: 600 of them are more than twice the 64 KiB
# a pipe holds (the old harness's requests hung from about the 260th on).
REQUESTS = 600


def test_a_served_process_that_logs_much_keeps_answering(data_home: Path) -> None:
    served = Served(data_home, free_port(), TRANSPARENCY_WORKERS="1")
    served.wait_ready()
    with httpx.Client(base_url=served.url, timeout=10) as http:
        for _ in range(REQUESTS):
            assert http.get("/healthz").status_code == 200
    code, _, err = served.stop()
    assert code == 0, err
    assert err.count('"path": "/healthz"') == REQUESTS  # every line logged, none lost
