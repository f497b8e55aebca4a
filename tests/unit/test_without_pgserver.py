"""pgserver is an extra (`transparency[embedded]`): a production API given DATABASE_URL runs
without it. Missing, and needed because DATABASE_URL is unset, it is one line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.served import free_port

# `import pgserver` fails in this process as it does where the extra is not installed.
WITHOUT_PGSERVER = """
import sys
sys.modules["pgserver"] = None
from transparency.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_without_pgserver_or_database_url_the_command_says_what_to_install(
    tmp_path: Path, command: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSPARENCY_")}
    env.pop("DATABASE_URL", None)
    env["TRANSPARENCY_DATA_DIR"] = str(tmp_path / "data")
    env["TRANSPARENCY_PORT"] = str(free_port())
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PGSERVER, command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "transparency: DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
        "install transparency[embedded], or set DATABASE_URL"
    ]
    assert done.stdout == ""
    assert not (tmp_path / "data" / "pg").exists()
