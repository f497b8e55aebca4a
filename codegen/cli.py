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

from codegen.client import Api, CodegenError
from transparency.domain.codes import parse
from transparency.domain.errors import InvalidCode

DEFAULT_API = "http://127.0.0.1:8000"
FILE_KINDS = {"csv": "codes.csv", "jsonl": "codes.jsonl", "pdf": "labels.pdf", "zip": "labels.zip"}


def parse_one(text: str) -> dict[str, Any]:
    """The JSON object `codegen parse` prints for one input."""
    try:
        code = parse(text)
    except InvalidCode as exc:
        return {"ok": False, "error": exc.reason, "detail": exc.detail}
    return {"ok": True, **code.as_json()}


def parse_command(texts: Iterable[str], out: TextIO) -> bool:
    """Print one JSON line per input; True when every input parsed."""
    all_ok = True
    for text in texts:
        result = parse_one(text)
        all_ok = all_ok and bool(result["ok"])
        out.write(json.dumps(result) + "\n")
    return all_ok


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
) -> dict[str, Any]:
    body: dict[str, Any] = {"count": count, "format": format}
    if lot:
        body["lot"] = lot
    if expiry:
        body["expiry"] = expiry
    batch = api.request("POST", f"/v1/products/{product}/code-batches", json=body)
    location = f"/v1/code-batches/{batch['id']}"

    def progress(b: dict[str, Any]) -> None:
        log.write(f"\rbatch {b['id']}: {b['status']} {b['progress']}/{b['requested']}")
        log.flush()

    done = api.wait_for_batch(location, progress=progress)
    log.write("\n")
    api.download(f"{location}/{FILE_KINDS[kind]}", out)
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

    def progress(b: dict[str, Any]) -> None:
        log.write(f"\rimport {b['id']}: {b['status']}")
        log.flush()

    done = api.wait_for_batch(f"/v1/code-batches/{batch['id']}", progress=progress)
    log.write("\n")
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

    i = sub.add_parser("issue", help="issue a batch of codes and download it")
    i.add_argument("--product", required=True)
    i.add_argument("--count", type=int, required=True)
    i.add_argument("--format", default="transparency", choices=["transparency", "offline", "gs1"])
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--file", dest="kind", default=None, choices=sorted(FILE_KINDS))
    i.add_argument("--lot")
    i.add_argument("--expiry", help="YYYY-MM-DD")

    m = sub.add_parser("import", help="register the brand's own serials from a file")
    m.add_argument("--product", required=True)
    m.add_argument("file", type=Path)
    m.add_argument("--mode", default="all_or_nothing", choices=["all_or_nothing", "accept_valid"])

    d = sub.add_parser("download", help="download a finished batch's file")
    d.add_argument("--batch", required=True)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--file", dest="kind", default=None, choices=sorted(FILE_KINDS))

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
        return 0 if parse_command(texts, stdout) else 2
    api = Api(args.api, args.key)
    try:
        if args.command in ("issue", "download"):
            kind = args.kind or args.out.suffix.lstrip(".") or "csv"
            if kind not in FILE_KINDS:
                raise CodegenError(
                    f"--out must end in one of {sorted(FILE_KINDS)} (or pass --file)"
                )
        if args.command == "issue":
            batch = issue_command(
                api, product=args.product, count=args.count, format=args.format, out=args.out,
                kind=kind, lot=args.lot, expiry=args.expiry, log=sys.stderr,
            )  # fmt: skip
            stdout.write(json.dumps({"batch": batch["id"], "file": str(args.out)}) + "\n")
        elif args.command == "download":
            size = api.download(f"/v1/code-batches/{args.batch}/{FILE_KINDS[kind]}", args.out)
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
