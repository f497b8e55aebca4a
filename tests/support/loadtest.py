"""`loadtest` as an operator runs it: its commands as subprocesses, a run's data and
scenario in one directory, and the summary the run leaves there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT


def loadtest(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def prepare(api: str, admin: str, at: Path, plan: str) -> subprocess.CompletedProcess[str]:
    """``loadtest prepare`` for ``plan`` (a scenario's TOML), into ``at``."""
    at.mkdir(parents=True)
    (at / "plan.toml").write_text(plan)
    done = loadtest("prepare", "--api", api, "--admin-key", admin,
                    "--scenario", at / "plan.toml", "--out", at / "data.json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def run(at: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``loadtest run`` with two workers on what ``prepare`` left in ``at``."""
    done = loadtest("run", "--data", at / "data.json", "--scenario", at / "plan.toml",
                    "--workers", "2", "--out", at / "run", "--history", at / "history.jsonl",
                    *extra)  # fmt: skip
    summary = at / "run" / "summary.json"
    assert summary.exists(), done.stdout + done.stderr
    return done, json.loads(summary.read_text())
