"""``scanner decode``: JSON lines, error lines and exit statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from scanner import cli
from scanner.__main__ import main
from tests.support.scanner_images import TP_CODE

KEYS = {"file", "text", "symbology", "symbology_identifier", "corners", "parsed"}


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
