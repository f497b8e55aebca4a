"""``scanner decode``: JSON lines, error lines and exit statuses."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import qrcode
import zxingcpp

from scanner import cli
from scanner.__main__ import main

TP_CODE = "TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD"
KEYS = {"file", "text", "symbology", "symbology_identifier", "corners", "parsed"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    code = qrcode.QRCode(box_size=4)
    code.add_data(TP_CODE)
    qr = np.where(np.array(code.get_matrix(), dtype=bool), 0, 255).astype(np.uint8)
    qr = np.kron(qr, np.ones((4, 4), dtype=np.uint8))
    barcode = zxingcpp.create_barcode(
        "(01)09506000134352(10)LOT7(21)SER1",
        zxingcpp.BarcodeFormat.DataMatrix,
        gs1=True,
        force_square=True,
    )
    datamatrix = np.array(zxingcpp.write_barcode_to_image(barcode, scale=5), dtype=np.uint8)
    paths = {
        "qr": tmp_path / "qr.png",
        "gs1": tmp_path / "gs1.jpg",
        "blank": tmp_path / "blank.png",
        "bad": tmp_path / "bad.png",
    }
    cv2.imwrite(str(paths["qr"]), qr)
    cv2.imwrite(str(paths["gs1"]), datamatrix)
    cv2.imwrite(str(paths["blank"]), np.full((120, 160), 200, dtype=np.uint8))
    paths["bad"].write_bytes(paths["qr"].read_bytes()[:100])
    return paths


def run(paths: list[Path]) -> tuple[cli.DecodeSummary, list[dict[str, object]], list[str]]:
    out, err = io.StringIO(), io.StringIO()
    summary = cli.decode_files(paths, out=out, err=err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return summary, lines, err.getvalue().splitlines()


def test_one_json_line_per_code(files: dict[str, Path]) -> None:
    summary, lines, errors = run([files["qr"], files["gs1"]])
    assert summary == cli.DecodeSummary(codes=2, unreadable=0)
    assert errors == []
    assert all(set(line) == KEYS for line in lines)
    qr, gs1 = lines
    assert (qr["file"], qr["text"], qr["symbology"]) == (str(files["qr"]), TP_CODE, "QRCode")
    assert (gs1["text"], gs1["symbology_identifier"]) == ("010950600013435210LOT7\x1d21SER1", "]d2")
    assert len(qr["corners"]) == 4  # type: ignore[arg-type]


def test_a_bad_file_is_one_stderr_line_and_the_others_still_run(files: dict[str, Path]) -> None:
    summary, lines, errors = run([files["bad"], files["blank"], files["qr"]])
    assert summary == cli.DecodeSummary(codes=1, unreadable=1)
    assert [line["text"] for line in lines] == [TP_CODE]
    assert errors == [f"scanner: {files['bad']}: truncated PNG (no IEND chunk)"]


@pytest.mark.parametrize(
    ("names", "status"),
    [(["qr", "blank"], 0), (["blank"], 1), (["blank", "qr", "bad"], 2), (["bad"], 2)],
)
def test_exit_status(
    files: dict[str, Path], names: list[str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["decode", *(str(files[n]) for n in names)]) == status
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == ("qr" in names)
    assert len(captured.err.splitlines()) == ("bad" in names)


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "decode" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("names", "status"), [(["qr", "gs1"], 0), (["blank"], 1), (["qr", "bad", "blank"], 2)]
)
def test_python_dash_m_scanner(files: dict[str, Path], names: list[str], status: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "decode", *(str(files[n]) for n in names)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == status, done.stderr
    texts = [json.loads(line)["text"] for line in done.stdout.splitlines()]
    expected = {"qr": [TP_CODE], "gs1": ["010950600013435210LOT7\x1d21SER1"]}
    assert texts == [t for n in names for t in expected.get(n, [])]
    assert done.stderr.splitlines() == (
        [f"scanner: {files['bad']}: truncated PNG (no IEND chunk)"] if "bad" in names else []
    )
