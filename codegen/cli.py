"""``codegen``: parse codes; issue batches and manage signing keys through the API.

Each subcommand is a plain function; ``codegen/__main__.py`` alone turns errors into exit
codes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from codegen.client import Api, CodegenError
from transparency.domain import gs1
from transparency.domain.codes import parse
from transparency.domain.errors import InvalidCode

DEFAULT_API = "http://127.0.0.1:8000"
FILE_KINDS = {"csv": "codes.csv", "jsonl": "codes.jsonl", "pdf": "labels.pdf", "zip": "labels.zip"}


def parse_one(text: str, *, strict: bool = False) -> dict[str, Any]:
    """The JSON object `codegen parse` prints for one input.

    A GS1 Digital Link URI read despite printing mistakes lists them in ``tolerances``
    (see transparency.domain.digital_link); ``strict`` lists them, empty or not.
    """
    try:
        code = parse(text)
        tolerances = gs1.parse_gs1(text).tolerances if code.form == "digital_link" else ()
    except InvalidCode as exc:
        return {"ok": False, "error": exc.reason, "detail": exc.detail}
    result = {"ok": True, **code.as_json()}
    if strict or tolerances:
        result["tolerances"] = list(tolerances)
    return result


def parse_command(texts: Iterable[str], out: TextIO, *, strict: bool = False) -> int:
    """Print one JSON line per input; the exit status: 0 when every input parsed, 2 when
    one did not, 1 (``strict`` only) when all parsed but one needed a tolerance."""
    status = 0
    for text in texts:
        result = parse_one(text, strict=strict)
        if not result["ok"]:
            status = 2
        elif strict and result["tolerances"] and status == 0:
            status = 1
        out.write(json.dumps(result) + "\n")
    return status


class Progress:
    """A job's progress on ``log``: rewritten in place (``\\r``) on a terminal; in a file or
    a CI log, where ``\\r`` piles every update onto one line, a line per change."""

    def __init__(self, log: TextIO) -> None:
        self.log, self.terminal, self.last = log, log.isatty(), ""

    def __call__(self, text: str) -> None:
        if text != self.last:
            self.log.write(f"\r{text}" if self.terminal else f"{text}\n")
            self.log.flush()
        self.last = text

    def end(self) -> None:
        if self.terminal and self.last:
            self.log.write("\n")


def issue_command(
    api: Api,
    *,
    product: str,
    count: int,
    format: str,
    out: Path,
    kind: str,
    lot: str | None,
    expiry: str | None,
    log: TextIO,
    labels: str = "",
) -> dict[str, Any]:
    """Issue a batch, wait for it and download its file; ``labels`` is the label options'
    query string (``label_query``) for a .pdf or .zip file."""
    body: dict[str, Any] = {"count": count, "format": format}
    if lot:
        body["lot"] = lot
    if expiry:
        body["expiry"] = expiry
    batch = api.request("POST", f"/v1/products/{product}/code-batches", json=body)
    location = f"/v1/code-batches/{batch['id']}"

    progress = Progress(log)
    done = api.wait_for_batch(
        location,
        progress=lambda b: progress(
            f"batch {b['id']}: {b['status']} {b['progress']}/{b['requested']}"
        ),
    )
    progress.end()
    try:
        api.download(f"{location}/{FILE_KINDS[kind]}{labels}", out)
    except CodegenError as exc:
        # The codes exist now: issuing again would make another batch, downloading this
        # one again (with other label options) is what the user needs.
        raise CodegenError(
            f"batch {batch['id']} is issued, but its file was not downloaded: {exc} "
            f"(codegen download --batch {batch['id']} fetches it)"
        ) from exc
    return done


_MEDIA_BY_SUFFIX = {
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".json": "application/ld+json",
    ".jsonld": "application/ld+json",
}


def import_command(api: Api, *, product: str, path: Path, mode: str, log: TextIO) -> dict[str, Any]:
    """Import a brand's own serials from a CSV, GS1 lines (.txt) or EPCIS (.jsonld) file."""
    media = _MEDIA_BY_SUFFIX.get(path.suffix.lower())
    if media is None:
        raise CodegenError(f"{path}: name the file .csv, .txt (GS1 lines) or .jsonld (EPCIS)")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CodegenError(f"{path}: {exc.strerror}") from None
    batch = api.request(
        "POST",
        f"/v1/products/{product}/serial-imports",
        params={"mode": mode},
        content=content,
        headers={"content-type": media},
    )

    progress = Progress(log)
    done = api.wait_for_batch(
        f"/v1/code-batches/{batch['id']}",
        progress=lambda b: progress(f"import {b['id']}: {b['status']}"),
    )
    progress.end()
    report: dict[str, Any] = done["report"]
    return report


def keys_command(api: Api, action: str, key_id: int | None, reason: str | None) -> Any:
    if action == "list":
        return api.request("GET", "/v1/signing-keys")
    if action == "rotate":
        return api.request("POST", "/v1/signing-keys/rotate")
    if key_id is None or not reason:
        raise CodegenError("keys revoke needs a KEY_ID and --reason")
    return api.request("POST", f"/v1/signing-keys/{key_id}/revoke", json={"reason": reason})


# The label download's query parameters, as the API names them (GET .../labels.pdf|zip).
LABEL_OPTIONS = (
    "preset", "page", "label_width_mm", "label_height_mm", "columns", "rows", "images",
    "language",
)  # fmt: skip


def add_label_options(command: argparse.ArgumentParser) -> None:
    """The API's label layout options; the API checks their values, and its problem
    response says what is wrong."""
    labels = command.add_argument_group("labels (.pdf and .zip files)")
    labels.add_argument(
        "--preset", help="label stock: a4-l7159 (default), a4-l7160, a4-l7163, letter-5160, "
        "letter-5163, roll-40x30, roll-50x25",
    )  # fmt: skip
    labels.add_argument("--page", choices=["A4", "Letter", "roll"])
    labels.add_argument("--label-width-mm", type=float)
    labels.add_argument("--label-height-mm", type=float)
    labels.add_argument("--columns", type=int)
    labels.add_argument("--rows", type=int)
    labels.add_argument("--cut-marks", action="store_true", default=None)
    labels.add_argument("--images", choices=["png", "svg"], help="what a .zip holds")
    labels.add_argument("--language", help="of the call to action: en, fr, de, es, it")
    labels.add_argument(
        "--line", action="append", default=[], choices=["brand", "product", "lot", "expiry"],
        help="a line to print under the code (repeat for several)",
    )  # fmt: skip


def label_query(args: argparse.Namespace) -> str:
    """The label options given on the command line as a query string ('' for none)."""
    pairs: list[tuple[str, str]] = [
        (name, str(getattr(args, name)))
        for name in LABEL_OPTIONS
        if getattr(args, name) is not None
    ]
    if args.cut_marks:
        pairs.append(("cut_marks", "true"))
    pairs += [("line", line) for line in args.line]
    return f"?{urlencode(pairs)}" if pairs else ""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="codegen",
        description="Parse codes; issue codes, import serials and manage signing keys via the API.",
    )
    root.add_argument("--api", default=os.environ.get("TRANSPARENCY_API", DEFAULT_API))
    root.add_argument("--key", default=os.environ.get("TRANSPARENCY_KEY"), help="a brand key")
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parse", help="parse a code (or '-' for one per line on stdin)")
    p.add_argument("text")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a GS1 Digital Link URI is read only thanks to a tolerance",
    )

    i = sub.add_parser("issue", help="issue a batch of codes and download it")
    i.add_argument("--product", required=True)
    i.add_argument("--count", type=int, required=True)
    i.add_argument("--format", default="transparency", choices=["transparency", "offline", "gs1"])
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--file", dest="kind", default=None, choices=sorted(FILE_KINDS))
    i.add_argument("--lot")
    i.add_argument("--expiry", help="YYYY-MM-DD")
    add_label_options(i)

    m = sub.add_parser("import", help="register the brand's own serials from a file")
    m.add_argument("--product", required=True)
    m.add_argument("file", type=Path)
    m.add_argument("--mode", default="all_or_nothing", choices=["all_or_nothing", "accept_valid"])

    d = sub.add_parser("download", help="download a finished batch's file")
    d.add_argument("--batch", required=True)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--file", dest="kind", default=None, choices=sorted(FILE_KINDS))
    add_label_options(d)

    k = sub.add_parser("keys", help="list, rotate or revoke the brand's signing keys")
    k.add_argument("action", choices=["list", "rotate", "revoke"])
    k.add_argument("key_id", nargs="?", type=int)
    k.add_argument("--reason")
    return root


def run(
    argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    args = parser().parse_args(argv)
    if args.command == "parse":
        texts = (line.rstrip("\r\n") for line in stdin) if args.text == "-" else [args.text]
        return parse_command(texts, stdout, strict=args.strict)
    api = Api(args.api, args.key)
    try:
        if args.command in ("issue", "download"):
            kind = args.kind or args.out.suffix.lstrip(".") or "csv"
            if kind not in FILE_KINDS:
                raise CodegenError(
                    f"--out must end in one of {sorted(FILE_KINDS)} (or pass --file)"
                )
            labels = label_query(args)
            if labels and kind not in ("pdf", "zip"):
                # Checked before anything is issued: the options would be silently lost.
                raise CodegenError(f"label options are for .pdf and .zip files, not .{kind}")
        if args.command == "issue":
            batch = issue_command(
                api, product=args.product, count=args.count, format=args.format, out=args.out,
                kind=kind, lot=args.lot, expiry=args.expiry, log=sys.stderr, labels=labels,
            )  # fmt: skip
            stdout.write(json.dumps({"batch": batch["id"], "file": str(args.out)}) + "\n")
        elif args.command == "download":
            file = FILE_KINDS[kind] + labels
            size = api.download(f"/v1/code-batches/{args.batch}/{file}", args.out)
            stdout.write(
                json.dumps({"batch": args.batch, "file": str(args.out), "bytes": size}) + "\n"
            )
        elif args.command == "import":
            report = import_command(
                api, product=args.product, path=args.file, mode=args.mode, log=sys.stderr
            )
            stdout.write(json.dumps(report) + "\n")
            return 0 if report["registered"] else 1
        else:
            stdout.write(
                json.dumps(keys_command(api, args.action, args.key_id, args.reason)) + "\n"
            )
    finally:
        api.close()
    return 0
