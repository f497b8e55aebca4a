"""The README stays true: the two commands come first, every setting is in its table, and
its walkthrough runs: from an admin key to a shipped unit, a refused second scan and the
customer's page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import paths
from tests.support.served import Served
from transparency.runtime.settings import Settings

README = (paths.ROOT / "README.md").read_text()


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make serve" in first_block
    assert "make test" in first_block


def test_every_setting_is_in_the_table() -> None:
    for name in Settings.model_fields:
        env = "DATABASE_URL" if name == "database_url" else f"TRANSPARENCY_{name.upper()}"
        assert f"| `{env}` |" in README, env


def test_the_walkthrough_runs(served: tuple[Served, str], tmp_path: Path) -> None:
    service, admin = served
    block = README.split("<!-- walkthrough -->\n```sh\n", 1)[1].split("```", 1)[0]
    env = {
        **os.environ,
        "ADMIN": admin,
        "API": service.url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    first, second = answers[-2:]
    assert (first["result"], first["reason"]) == ("pass", None)
    assert (second["result"], second["reason"]) == ("fail", "already_shipped")
    assert second["first_shipped"]["at"] is not None
    page_url = re.search(r"^open (\S+/t/\S+)$", run.stdout, re.MULTILINE)
    assert page_url is not None, run.stdout
    page = httpx.get(page_url.group(1), headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert '<h1 id="verdict">Authentic</h1>' in page.text
