"""Regenerate dl_vectors.json from gs1-syntax-engine's src/c-lib/dl.c unit tests.

    git -C <gs1-syntax-engine clone> show <commit>:src/c-lib/dl.c > /tmp/dl.c
    python tests/data/gs1-syntax-engine/extract_dl_vectors.py /tmp/dl.c <commit> > \
        tests/data/gs1-syntax-engine/dl_vectors.json

Reads the calls of test_parseDLuri, the sequences of test_dl_testValidateDLpathAIseq and the
calls of test_testGenerateDLuri, with the encoder options in force at each call (the tests
switch options on and off between calls).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/|\s+|[(),]|[^"(),/\s]+|/', re.DOTALL)
_OPTIONS = {
    "ctx->permitConvenienceAlphas = true": ("convenience_alphas", True),
    "ctx->permitConvenienceAlphas = false": ("convenience_alphas", False),
    "setPermitZeroSuppressedGTINinDLuris(ctx, true)": ("zero_suppressed_gtin", True),
    "setPermitZeroSuppressedGTINinDLuris(ctx, false)": ("zero_suppressed_gtin", False),
    "setPermitUnknownAIs(ctx, true)": ("unknown_ais", True),
    "setPermitUnknownAIs(ctx, false)": ("unknown_ais", False),
    "vUNKNOWN_AI_NOT_DL_ATTR, false)": ("unknown_ai_as_attribute", True),
    "vUNKNOWN_AI_NOT_DL_ATTR, true)": ("unknown_ai_as_attribute", False),
}


def _call_args(body: str, name: str) -> list[tuple[int, list[str]]]:
    """(offset, arguments) of each ``name(...)`` call; arguments as written, except that
    C string literals are decoded and adjacent ones joined ("A" "B" is "AB")."""
    calls = []
    for match in re.finditer(rf"\b{name}\(", body):
        if body[match.start() - 8 : match.start()].strip().endswith("define"):
            continue
        args: list[str] = [""]
        depth, index, glued = 1, match.end(), False
        while depth:
            token = _TOKEN.match(body, index)
            assert token is not None
            text = token.group(0)
            index = token.end()
            if text.startswith('"'):
                decoded = text[1:-1].encode("ascii").decode("unicode_escape")
                args[-1] = (args[-1] + decoded) if glued else decoded
                glued = True
            elif text in ("(", ")"):
                depth += 1 if text == "(" else -1
                if depth:
                    args[-1] += text
            elif text == "," and depth == 1:
                args.append("")
                glued = False
            elif not (text.isspace() or text.startswith("/")):
                args[-1] += text.strip()
        calls.append((match.start(), args))
    return calls


def _line(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def _function(source: str, name: str) -> tuple[int, str]:
    start = source.index(f"void {name}(void) {{")
    end = source.index("\n}\n", start)
    return start, source[start:end]


def _events(source: str, base: int, body: str) -> list[tuple[int, str, bool]]:
    events = []
    for text, (option, value) in _OPTIONS.items():
        for match in re.finditer(re.escape(text), body):
            events.append((base + match.start(), option, value))
    return sorted(events)


def _options_at(events: list[tuple[int, str, bool]], offset: int) -> list[str]:
    state: dict[str, bool] = {}
    for at, option, value in events:
        if at < offset:
            state[option] = value
    return sorted(option for option, on in state.items() if on)


def main(path: str, commit: str) -> None:
    source = Path(path).read_text(encoding="utf-8")
    base, body = _function(source, "test_dl_parseDLuri")
    events = _events(source, base, body)
    parse = []
    for at, (ok, uri, expect) in _call_args(body, "test_parseDLuri"):
        offset = base + at
        parse.append(
            {
                "line": _line(source, offset),
                "uri": uri,
                "ok": ok == "true",
                "element_string": expect,
                "options": _options_at(events, offset),
            }
        )
    # Two cases the test builds in a buffer rather than with the macro.
    boundary = _line(source, source.index("MAX_AI_VALUE_LEN boundary"))
    for length, accepted in ((90, True), (91, False)):
        parse.append(
            {
                "line": boundary,
                "uri": "https://a/01/12312312312333?99=" + "A" * length,
                "ok": accepted,
                "element_string": "^011231231231233399" + "A" * length if accepted else "",
                "options": [],
            }
        )
    seq_base, seq_body = _function(source, "test_dl_testValidateDLpathAIseq")
    sequences = [
        {"line": _line(source, seq_base + m.start()), "ais": _STRING.findall(m.group(1))}
        for m in re.finditer(r"^\t\t\{ (\"[^}]*)\},", seq_body, re.MULTILINE)
    ]
    gen_base, gen_body = _function(source, "test_dl_generateDLuri")
    gen_events = _events(source, gen_base, gen_body)
    generate = []
    for at, (ok, stem, data, expect) in _call_args(gen_body, "test_testGenerateDLuri"):
        offset = gen_base + at
        generate.append(
            {
                "line": _line(source, offset),
                "stem": None if stem == "NULL" else stem,
                "bracketed": data,
                "ok": ok == "true",
                "uri": expect,
                "options": _options_at(gen_events, offset),
            }
        )
    json.dump(
        {
            "source": f"https://github.com/gs1/gs1-syntax-engine/blob/{commit}/src/c-lib/dl.c",
            "licence": "Apache-2.0, Copyright (c) 2021-2026 GS1 AISBL; see LICENSE-NOTE.md",
            "parse": parse,
            "path_sequences": sequences,
            "generate": generate,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
