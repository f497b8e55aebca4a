"""One cluster for the cluster tests: started by ``deploy/cluster/cluster.py start`` in a
directory of its own, stopped at the end, and nothing of it may be left running."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.support import Cluster, free_base_port


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # Not under pytest's private (0700) root: PostgreSQL runs as the postgres user.
    home = Path(tempfile.mkdtemp(prefix="transparency-cluster-"))
    home.chmod(0o755)
    running = Cluster(home, free_base_port())
    try:
        started = running.cli("start")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "admin key: tpk_" in started.stdout
        yield running
    finally:
        stopped = running.cli("stop")
        shutil.rmtree(home, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "nothing of" in stopped.stdout
