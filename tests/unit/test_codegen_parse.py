"""The codegen command: parse locally; issue, import and keys against a running service."""

from __future__ import annotations

import io
import json

from codegen.cli import run
from transparency.domain import codes


def test_parse_prints_one_json_object() -> None:
    out = io.StringIO()
    text = codes.sign_transparency(codes.Payload(12, 34), b"x" * 32)
    assert run(["parse", f" {text.lower()} "], stdout=out) == 0
    line = json.loads(out.getvalue())
    assert line == {
        "ok": True,
        "format": "transparency",
        "code": text,
        "gtin": None,
        "serial": codes.Payload(12, 34).serial_text,
        "key_id": 12,
        "ais": [],
        "symbology_identifier": None,
    }


def test_parse_gs1_lists_every_ai_in_order() -> None:
    out = io.StringIO()
    assert run(["parse", "]d20109506000134352" + "10LOT\x1d17271231" + "21S1"], stdout=out) == 0
    line = json.loads(out.getvalue())
    assert (line["format"], line["gtin"], line["serial"]) == ("gs1", "09506000134352", "S1")
    assert line["ais"] == [["01", "09506000134352"], ["10", "LOT"], ["17", "271231"], ["21", "S1"]]


def test_parse_from_stdin_one_line_per_input_and_exit_2_on_any_error() -> None:
    out = io.StringIO()
    good = codes.sign_transparency(codes.Payload(1, 1), b"x" * 32)
    status = run(["parse", "-"], stdin=io.StringIO(f"{good}\nnope\n(01)123\n"), stdout=out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert status == 2
    assert [x["ok"] for x in lines] == [True, False, False]
    assert lines[1]["error"] == "unknown_format"
    assert set(lines[2]) == {"ok", "error", "detail"}
