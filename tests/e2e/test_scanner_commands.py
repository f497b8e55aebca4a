"""`python -m scanner decode` and `scanner verify` run as commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pipes import run_with_reader_gone
from tests.support.scanner_images import TP_CODE
from tests.support.station import CODES, ROOT, FakeApi


@pytest.mark.parametrize(
    ("names", "status"), [(["qr", "gs1"], 0), (["blank"], 1), (["qr", "bad", "blank"], 2)]
)
def test_python_dash_m_scanner(files: dict[str, Path], names: list[str], status: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "decode", *(str(files[n]) for n in names)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == status, done.stderr
    texts = [json.loads(line)["text"] for line in done.stdout.splitlines()]
    expected = {"qr": [TP_CODE], "gs1": ["010950600013435210LOT7\x1d21SER1"]}
    assert texts == [t for n in names for t in expected.get(n, [])]
    assert done.stderr.splitlines() == (
        [f"scanner: {files['bad']}: truncated PNG (no IEND chunk)"] if "bad" in names else []
    )


def test_verify_as_a_command_against_a_server(images: dict[str, Path]) -> None:
    with FakeApi() as api:
        done = subprocess.run(
            [sys.executable, "-m", "scanner", "verify", str(images["qr"]), "--api", api.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert (done.returncode, done.stderr) == (0, "")
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert set(line) == {"file", "text", "verdict", "warnings", "product"}
    assert (line["text"], line["verdict"]) == (CODES[0], "authentic")
    assert api.verified == [{"scan": f"]Q1{CODES[0]}"}]


def test_decode_into_a_pipe_whose_reader_left_exits_quietly(files: dict[str, Path]) -> None:
    """`scanner decode *.png | head -1`: the codes head did not read are not a traceback."""
    argv = [sys.executable, "-m", "scanner", "decode", str(files["qr"]), str(files["gs1"])]
    status, err = run_with_reader_gone(argv, cwd=ROOT)
    assert (status, err) == (141, "")  # 128 + SIGPIPE, as `yes | head` ends
