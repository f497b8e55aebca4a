"""A process whose pool's workers were killed mid-task still exits (workers.LazyPool)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.paths import ROOT

# A job process stopping: its pool's worker is killed while it sends a large result back,
# then the process ends as the job process does, by returning from its main code.
_STOPPING = textwrap.dedent(
    """
    import select, sys, time
    from transparency.runtime.workers import LazyPool
    from tests.support.pool_tasks import large_result

    pool = LazyPool(1)
    executor = pool.get()
    future = executor.submit(large_result, 400_000_000)
    reader = executor._result_queue._reader
    deadline = time.monotonic() + 60
    while not select.select([reader], [], [], 0.0005)[0]:  # the result is on its way
        assert time.monotonic() < deadline, "the result never came"
    pool.shutdown(kill=True)
    print("stopped", flush=True)
    """
)


def test_a_worker_killed_while_sending_its_result_does_not_hold_the_process() -> None:
    """The worker dies with half its result in the pipe; the executor's thread waited for
    the rest for ever and the process never exited (a killed `serve`'s job process lived
    on, and its test waited 30 s for it). The process must end promptly."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _STOPPING],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the process did not exit: {exc.stdout!r}") from exc
    assert done.stdout.strip() == "stopped", done.stderr
    assert done.returncode == 0, done.stderr
