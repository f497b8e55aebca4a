"""What the commands write when their output is not a terminal: a pipe whose reader left
(`| head`) ends them quietly, and progress in a file or a CI log is a line per change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import paths
from tests.support.pipes import run_with_reader_gone
from tests.support.served import Served
from tests.support.world import bearer, gtin14


def test_codegen_parse_into_a_pipe_whose_reader_left_exits_quietly() -> None:
    codes = "".join(f"TP{n:028d}\n" for n in range(2000))  # ~180 kB of answers: past any buffer
    argv = [sys.executable, "-m", "codegen", "parse", "-"]
    status, err = run_with_reader_gone(argv, stdin=codes, cwd=paths.ROOT)
    assert (status, err) == (141, "")  # 128 + SIGPIPE, as `yes | head` ends


def test_codegen_progress_in_a_log_is_a_line_per_change(
    served: tuple[Served, str], tmp_path: Path
) -> None:
    service, admin = served
    with httpx.Client(base_url=service.url) as http:
        brand = http.post(
            "/v1/brands",
            json={"name": "Acme", "gs1_prefixes": ["9506000"]},
            headers=bearer(admin),
        ).json()["api_key"]["key"]
        product = http.post(
            "/v1/products",
            json={"gtin": gtin14("0950600013435"), "name": "Serum"},
            headers=bearer(brand),
        ).json()["id"]
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "--api", service.url, "--key", brand, "issue",
         "--product", product, "--count", "50", "--out", str(tmp_path / "codes.csv")],
        capture_output=True, timeout=120, check=False, cwd=paths.ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRANSPARENCY_")},
    )  # fmt: skip
    err = done.stderr.decode()  # not text=True, which reads each \r as a newline
    assert done.returncode == 0, err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[-1].endswith(": done 50/50"), err
    assert len(lines) == len(set(lines))  # a poll that changed nothing wrote nothing
