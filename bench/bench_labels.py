"""Label rendering: PDF time and memory, PNG and SVG throughput.

    .venv/bin/python bench/bench_labels.py [--pdf-labels 10000] [--rss-sizes 1000 10000]

Each PDF run is a fresh subprocess so its peak RSS (``ru_maxrss``) belongs to that size
alone. The PDF goes to a sink that only counts bytes, as a web response or a file would.
With ``--reportlab`` the same labels are also drawn with reportlab's Canvas, whose memory
grows with the page count because it keeps every page until ``save()``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transparency.labels.render import Label, Symbology, png, svg, write_pdf  # noqa: E402

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PDF_SECONDS_GOAL = 60.0
RSS_GROWTH_GOAL_MB = 10.0
"""Peak RSS may grow this much from 1,000 to 10,000 labels: flat, bar the xref offsets."""
RATE_GOAL = 10_000 / PDF_SECONDS_GOAL
"""Per-file PNG/SVG should keep pace with the PDF goal."""


def transparency_labels(n: int, seed: int = 7) -> Iterator[Label]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible sample codes, not secrets
    for _ in range(n):
        code = "TP" + "".join(rnd.choices(CROCKFORD, k=28))
        yield Label(code, code, Symbology.QR)


class CountingSink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def child(n: int, engine: str) -> None:
    sink = CountingSink()
    start = time.perf_counter()
    if engine == "pydyf":
        pages = write_pdf(transparency_labels(n), cast(BinaryIO, sink))
    else:
        pages = reportlab_pdf(n, sink)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"n": n, "pages": pages, "seconds": seconds, "rss_mb": peak_mb, "bytes": sink.size}
        )
    )


def reportlab_pdf(n: int, sink: CountingSink) -> int:
    """The same sheet with reportlab: vector modules, compressed pages, Courier text."""
    from reportlab.pdfgen.canvas import Canvas

    from transparency.labels.render import DEFAULT_LAYOUT as layout
    from transparency.labels.render import MM, modules

    canvas = Canvas(sink, pagesize=tuple(v * MM for v in layout.page_mm), pageCompression=1)
    page_h = layout.page_mm[1] * MM
    pages = 0
    for i, label in enumerate(transparency_labels(n)):
        index = i % layout.per_page
        if i and index == 0:
            canvas.showPage()
        if index == 0:
            pages += 1
        left, top = layout.label_box_mm(index)
        dark = modules(label)
        module = 0.75 * MM
        path = canvas.beginPath()
        for y, row in enumerate(dark):
            for x in row.nonzero()[0].tolist():
                path.rect(
                    (left + 5) * MM + x * module,
                    page_h - (top + 5) * MM - y * module,
                    module,
                    module,
                )
        canvas.drawPath(path, stroke=0, fill=1)
        canvas.setFont("Courier", 8)
        canvas.drawString((left + 2) * MM, page_h - (top + 31) * MM, label.human_text)
    canvas.save()
    return pages


def run_child(n: int, engine: str) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603 - this script, with numbers
        [sys.executable, __file__, "--child", str(n), "--engine", engine],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def rate(render: object, n: int) -> float:
    labels = list(transparency_labels(n, seed=11))
    start = time.perf_counter()
    for label in labels:
        render(label)  # type: ignore[operator]
    return n / (time.perf_counter() - start)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf-labels", type=int, default=10_000)
    parser.add_argument("--rss-sizes", type=int, nargs=2, default=[1_000, 10_000])
    parser.add_argument("--files", type=int, default=1_000, help="labels for PNG/s and SVG/s")
    parser.add_argument("--reportlab", action="store_true", help="also measure reportlab")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="pydyf", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.engine)
        return

    engines = ["pydyf", "reportlab"] if args.reportlab else ["pydyf"]
    for engine in engines:
        small, large = (run_child(n, engine) for n in args.rss_sizes)
        timed = large if large["n"] == args.pdf_labels else run_child(args.pdf_labels, engine)
        growth = large["rss_mb"] - small["rss_mb"]
        name = "write_pdf" if engine == "pydyf" else "reportlab Canvas (for comparison)"
        print(f"{name}:")
        print(
            f"  {timed['n']:,.0f} labels, {timed['pages']:,.0f} pages, "
            f"{timed['bytes'] / 1e6:.1f} MB: {timed['seconds']:.1f} s "
            f"(goal < {PDF_SECONDS_GOAL:.0f} s: {verdict(timed['seconds'] < PDF_SECONDS_GOAL)})"
        )
        print(
            f"  peak RSS {small['n']:,.0f} labels {small['rss_mb']:.1f} MB, "
            f"{large['n']:,.0f} labels {large['rss_mb']:.1f} MB: {growth:+.1f} MB "
            f"(goal < +{RSS_GROWTH_GOAL_MB:.0f} MB: {verdict(growth < RSS_GROWTH_GOAL_MB)})"
        )
    for kind, render in (("PNG", png), ("SVG", svg)):
        per_second = rate(render, args.files)
        print(
            f"{kind}: {per_second:,.0f}/s over {args.files:,} labels "
            f"(goal >= {RATE_GOAL:.0f}/s: {verdict(per_second >= RATE_GOAL)})"
        )


if __name__ == "__main__":
    main()
