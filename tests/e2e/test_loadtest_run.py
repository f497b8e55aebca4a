"""A short locust run (real processes) against a stub of the API.

The stub is a stdlib HTTP server in a thread on 127.0.0.1 with in-memory state, answering
just the endpoints ``loadtest`` uses, with the contract's shapes and rules: each code
passes once, a wrong tag is ``forged``, the customer check returns a verdict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.data import write
from loadtest.errors import RunFailed
from loadtest.prepare import prepare
from loadtest.run import run
from tests.support.loadtest_stub import ADMIN, StubState


def test_a_short_locust_run_passes_and_a_rerun_of_the_same_data_fails(
    stub: tuple[str, StubState], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    api, state = stub
    path = tmp_path / "data.json"
    write(prepare(api, ADMIN, 30_000), path)

    run(path, users=2, run_time="3s")
    out, err = capfd.readouterr()
    summary = out + err
    aggregated = next(line for line in summary.splitlines() if "Aggregated" in line)
    requests, failures = aggregated.split()[1:3]
    assert int(requests) > 20
    assert failures == "0(0.00%)"
    for name in ("verifications [forged]", "verifications/batch [100]", "/v1/verify?code="):
        assert name in summary
    assert len(state.shipped) > 20 + 100

    # Every code claimed above is claimed again: each fails already_shipped, and the run fails.
    with pytest.raises(RunFailed, match="locust exited with status 1"):
        run(path, users=2, run_time="1s")
    assert "already_shipped" in "".join(capfd.readouterr())
