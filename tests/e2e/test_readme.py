"""The README stays true: the two commands come first, every setting is in its table, and
its walkthrough runs: from an admin key to a shipped unit, a refused second scan and the
customer's page."""

from __future__ import annotations

import csv
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


def test_every_example_uses_the_api_variable() -> None:
    """A service on another host or port runs every example as it is: only the walkthrough's
    default for $API names an address."""
    blocks = [part.split("```", 1)[0] for part in README.split("```sh\n")[1:]]
    for line in "\n".join(blocks).splitlines():
        if "API=${API:-" in line or line.startswith("make serve"):
            continue
        assert not re.search(r"localhost|127\.0\.0\.1|:8000", line), line


def run_walkthrough(service: Served, admin: str, cwd: Path) -> tuple[str, str]:
    """The README's walkthrough in ``cwd``, as a user pastes it: its stdout, and the code it
    shipped (the customer's page it names says the unit is authentic)."""
    block = README.split("<!-- walkthrough -->\n```sh\n", 1)[1].split("```", 1)[0]
    env = {
        **os.environ,
        "ADMIN": admin,
        "API": service.url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert "curl:" not in run.stderr, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    first, second = answers[-2:]
    assert (first["result"], first["reason"]) == ("pass", None)
    assert (second["result"], second["reason"]) == ("fail", "already_shipped")
    assert second["first_shipped"]["at"] is not None
    page_url = re.search(r"^open (\S+/t/(\S+))$", run.stdout, re.MULTILINE)
    assert page_url is not None, run.stdout
    with (cwd / "codes.csv").open(newline="") as codes:
        # the labels point at this service, on its port (TRANSPARENCY_PUBLIC_URL unset)
        assert {row["url"] for row in csv.DictReader(codes)} >= {page_url.group(1)}
    page = httpx.get(page_url.group(1), headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert '<h1 id="verdict">Authentic</h1>' in page.text
    return run.stdout, page_url.group(2)


def test_the_walkthrough_runs_twice_on_the_same_data(
    served: tuple[Served, str], tmp_path: Path
) -> None:
    service, admin = served
    _, first_code = run_walkthrough(service, admin, tmp_path)
    # Its brand, site, station key and product are found, not made again (a second brand
    # "Acme" gets 409), and it ships a fresh unit, not the one the first run shipped.
    _, second_code = run_walkthrough(service, admin, tmp_path)
    assert second_code != first_code
