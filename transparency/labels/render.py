"""Print-ready labels: one symbol and its human-readable code per unit.

QR (the ``qrcode`` library) carries our Transparency and offline codes; GS1 DataMatrix
(zxing-cpp's writer, FNC1 first so scanners report ``]d2``) carries GS1 element strings.
Each label renders to PNG or SVG on its own, to a ZIP of those, or onto a PDF sheet.

The PDF is streamed: each page is written to ``out`` as soon as its labels are drawn, so
memory stays flat however many labels are printed. reportlab's Canvas keeps every page
until ``save()``, so pydyf serialises the PDF objects and this module lays them out in the
file itself; what it keeps per page is an 8-byte offset for the cross-reference table.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import textwrap
import zipfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import BinaryIO, Final, Literal
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
import pydyf
import qrcode
import zxingcpp
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

Modules = npt.NDArray[np.bool_]
"""A symbol's modules, True where dark, without quiet zone; row 0 is the top."""


class Symbology(StrEnum):
    QR = "qr"
    GS1_DATAMATRIX = "gs1-datamatrix"


@dataclass(frozen=True, slots=True)
class Label:
    symbol_text: str
    """What the symbol encodes; for GS1 the bracketed form ``(01)...(21)...``."""
    human_text: str
    """Printed under the symbol, as given (it may be grouped for humans)."""
    symbology: Symbology


# Minimum quiet zones in modules: ISO/IEC 18004 for QR, ISO/IEC 16022 and GS1 for DataMatrix.
QUIET_ZONE: Final = {Symbology.QR: 4, Symbology.GS1_DATAMATRIX: 1}
# Below this a 300 dpi printer has fewer than three dots per module and scans get unreliable.
MIN_MODULE_MM: Final = 0.25
MM: Final = 72 / 25.4
"""Points per millimetre."""
PAGE_MM: Final = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}

# Human-readable text: 6 pt is the smallest that stays legible on thermal and laser prints.
_MIN_TEXT_PT = 6.0
_MAX_TEXT_PT = 10.0
_MIN_TEXT_PX = 12
_LINE_SPACING = 1.2
_MONO_ADVANCE = 0.6
"""Glyph advance of Courier and DejaVu Sans Mono, in units of the font size."""
_LABEL_PAD_MM = 1.0
"""Kept clear inside each label edge: die-cut label stock is cut within about 1 mm."""
_CUT_MARK_MM = 5.0
_CUT_MARK_OFFSET_MM = 1.0


def modules(label: Label) -> Modules:
    """The symbol for ``label``; raises ValueError if its text cannot be encoded."""
    if label.symbology is Symbology.QR:
        return _qr_modules(label.symbol_text)
    return _gs1_datamatrix_modules(label.symbol_text)


def _qr_modules(text: str) -> Modules:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    # One segment, so qrcode picks the densest mode for the whole text: alphanumeric for
    # our uppercase base32 codes. Its default optimiser would split off runs of digits.
    qr.add_data(text, optimize=0)
    try:
        qr.make(fit=True)
    except qrcode.exceptions.DataOverflowError as exc:
        raise ValueError(f"too long for a QR code: {text!r}") from exc
    return np.array(qr.modules, dtype=np.bool_)


def _gs1_datamatrix_modules(text: str) -> Modules:
    try:
        # gs1=True, not options="gs1": the latter is silently ignored and gives ]d1.
        barcode = zxingcpp.create_barcode(
            text, zxingcpp.BarcodeFormat.DataMatrix, gs1=True, force_square=True
        )
    except ValueError as exc:
        raise ValueError(f"not a GS1 element string in bracketed form: {text!r} ({exc})") from exc
    if barcode.symbology_identifier != "]d2":
        # zxing-cpp ignores options it does not know; never print a non-GS1 symbol silently.
        raise RuntimeError(f"zxing-cpp made {barcode.symbology_identifier}, not ]d2, for {text!r}")
    image = zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=False)
    pixels: Modules = np.asarray(image) < 128
    if pixels.shape[0] != pixels.shape[1]:
        raise RuntimeError(f"zxing-cpp made a {pixels.shape} DataMatrix, not a square one")
    return pixels


def _runs(row: Modules) -> Iterator[tuple[int, int]]:
    """(start, length) of each run of dark modules in ``row``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], row, [False])).astype(np.int8)))
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        yield start, end - start


def _fit_text(
    text: str, width: float, *, advance: float, max_size: float, min_size: float
) -> tuple[float, list[str]]:
    """Font size and lines for ``text`` within ``width``: shrink first, then wrap."""
    size = min(max_size, width / (advance * max(len(text), 1)))
    if size >= min_size:
        return size, [text]
    per_line = max(1, int(width / (advance * min_size)))
    lines = textwrap.wrap(text, per_line, break_on_hyphens=False)
    return min_size, lines or [text]


# --- PNG and SVG -----------------------------------------------------------------------------

# Pillow finds these by file name in the system font directories; fonts-dejavu-core on Debian.
_MONO_FONTS = (
    "DejaVuSansMono.ttf",
    "NotoSansMono-Regular.ttf",
    "LiberationMono-Regular.ttf",
    "Menlo.ttc",
    "consola.ttf",
)


@lru_cache(maxsize=32)
def _png_font(size: int) -> ImageFont.FreeTypeFont:
    for name in _MONO_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    # Proportional, but always present; text is measured with the font actually used.
    fallback = ImageFont.load_default(size)
    if not isinstance(fallback, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; it cannot draw label text")
    return fallback


def _check_quiet_zone(label: Label, quiet_zone: int) -> None:
    if quiet_zone < QUIET_ZONE[label.symbology]:
        raise ValueError(
            f"{label.symbology} needs a quiet zone of at least "
            f"{QUIET_ZONE[label.symbology]} modules, not {quiet_zone}"
        )


def png(label: Label, *, module_px: int = 8, quiet_zone: int = 4) -> bytes:
    """A grayscale PNG: the symbol with its quiet zone, and the human text under it."""
    if module_px < 1:
        raise ValueError(f"module_px must be at least 1, not {module_px}")
    _check_quiet_zone(label, quiet_zone)
    dark = np.pad(modules(label), quiet_zone, constant_values=False)
    symbol = np.where(dark, 0, 255).astype(np.uint8).repeat(module_px, 0).repeat(module_px, 1)
    width = symbol.shape[1]

    reference = _png_font(100)
    advance = reference.getlength(label.human_text) / max(len(label.human_text), 1) / 100
    size, lines = _fit_text(
        label.human_text,
        width - 2 * module_px,
        advance=advance,
        max_size=max(_MIN_TEXT_PX, 2.5 * module_px),
        min_size=_MIN_TEXT_PX,
    )
    font = _png_font(max(_MIN_TEXT_PX, int(size)))
    line_px = math.ceil(font.size * _LINE_SPACING)
    image = Image.new("L", (width, symbol.shape[0] + line_px * len(lines) + module_px), 255)
    image.paste(Image.fromarray(symbol), (0, 0))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        # Text starts below the quiet zone, which must stay blank.
        draw.text((width / 2, symbol.shape[0] + i * line_px), line, fill=0, font=font, anchor="ma")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def svg(label: Label, *, module_mm: float = 0.5) -> str:
    """An SVG sized in millimetres, one user unit per module; dark modules form one path."""
    if module_mm < MIN_MODULE_MM:
        raise ValueError(f"module_mm must be at least {MIN_MODULE_MM}, not {module_mm}")
    dark = modules(label)
    quiet = QUIET_ZONE[label.symbology]
    rows, cols = dark.shape
    width = cols + 2 * quiet
    size_mm, lines = _fit_text(
        label.human_text,
        width * module_mm,
        advance=_MONO_ADVANCE,
        max_size=_MAX_TEXT_PT / MM,
        min_size=_MIN_TEXT_PT / MM,
    )
    size = size_mm / module_mm
    line_h = size * _LINE_SPACING
    height = rows + 2 * quiet + line_h * len(lines) + 0.3 * size
    path = "".join(
        f"M{x + quiet} {y + quiet}h{n}v1h-{n}z" for y, row in enumerate(dark) for x, n in _runs(row)
    )
    texts = "".join(
        f'<text x="{_num(width / 2)}" y="{_num(rows + 2 * quiet + (i + 0.8) * line_h)}" '
        f'textLength="{_num(len(line) * _MONO_ADVANCE * size)}" '
        f'lengthAdjust="spacingAndGlyphs">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{_num(width * module_mm)}mm" height="{_num(height * module_mm)}mm" '
        f'viewBox="0 0 {width} {_num(height)}">'
        f'<rect width="{width}" height="{_num(height)}" fill="#fff"/>'
        f'<path d="{path}" fill="#000" shape-rendering="crispEdges"/>'
        f'<g font-family="DejaVu Sans Mono, Courier New, Courier, monospace" '
        f'font-size="{_num(size)}" text-anchor="middle" fill="#000">{texts}</g>'
        "</svg>\n"
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_stem(code: str) -> str:
    # Leading dots would hide the file or walk up a directory on extraction.
    return _UNSAFE.sub("_", code).strip("._-")[:200] or "code"


def write_zip(labels: Iterable[Label], out: BinaryIO, *, kind: Literal["png", "svg"]) -> int:
    """One PNG or SVG per label, streamed into a ZIP; returns the number of files.

    Files are named after the symbol text with anything but letters, digits, ``.``, ``_``
    and ``-`` replaced by ``_``; names that would clash on a case-insensitive file system
    get a ``-2``, ``-3``... suffix.
    """

    def render(label: Label) -> bytes:
        return png(label) if kind == "png" else svg(label).encode()

    # PNG is deflated already; compressing it again costs time and saves nothing.
    compression = zipfile.ZIP_STORED if kind == "png" else zipfile.ZIP_DEFLATED
    taken: set[str] = set()
    count = 0
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for label in labels:
            stem = _file_stem(label.symbol_text)
            name = stem
            for n in itertools.count(2):
                if name.casefold() not in taken:
                    break
                name = f"{stem}-{n}"
            taken.add(name.casefold())
            archive.writestr(f"{name}.{kind}", render(label))
            count += 1
    return count


# --- PDF sheets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SheetLayout:
    """A grid of equal labels, centred on the page. Lengths are in millimetres.

    ``columns`` and ``rows`` of 0 mean as many as fit within the margins; after
    construction they hold the actual grid. The defaults are 24 labels of 63.5 x 33.9 mm
    on A4 (Avery L7159 and compatibles).
    """

    page: Literal["A4", "Letter"] = "A4"
    label_w_mm: float = 63.5
    label_h_mm: float = 33.9
    columns: int = 0
    rows: int = 0
    margin_mm: float = 5.0
    """Nearest the grid may come to the page edge (printers cannot print to the edge)."""
    gap_x_mm: float = 2.5
    gap_y_mm: float = 0.0
    cut_marks: bool = False
    """Short lines outside the grid, in line with every label edge."""

    def __post_init__(self) -> None:
        if self.page not in PAGE_MM:
            raise ValueError(f"page must be one of {', '.join(PAGE_MM)}, not {self.page!r}")
        for name in ("label_w_mm", "label_h_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of millimetres, not {value}")
        for name in ("margin_mm", "gap_x_mm", "gap_y_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be zero or more millimetres, not {value}")
        page_w, page_h = PAGE_MM[self.page]
        columns = self._fit("columns", self.columns, self.label_w_mm, self.gap_x_mm, page_w)
        rows = self._fit("rows", self.rows, self.label_h_mm, self.gap_y_mm, page_h)
        # Frozen, but the grid is part of the value: fill in what was derived.
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)
        if self.cut_marks:
            room = min(self.origin_mm)
            if room < _CUT_MARK_OFFSET_MM + 2:
                raise ValueError(
                    f"cut marks need {_CUT_MARK_OFFSET_MM + 2:g} mm between the grid and the "
                    f"page edge; this grid leaves {room:.1f} mm"
                )

    def _fit(self, name: str, count: int, size: float, gap: float, page: float) -> int:
        usable = page - 2 * self.margin_mm
        what = f"{self.page} leaves {usable:g} mm between its {self.margin_mm:g} mm margins"
        if count < 0:
            raise ValueError(f"{name} must be 0 (as many as fit) or more, not {count}")
        if count == 0:
            count = math.floor((usable + gap) / (size + gap) + 1e-9)
            if count == 0:
                raise ValueError(f"a label {size:g} mm across does not fit: {what}")
            return count
        need = count * size + (count - 1) * gap
        if need > usable + 1e-9:
            raise ValueError(
                f"{count} {name} of {size:g} mm with {gap:g} mm gaps need {need:g} mm, but {what}"
            )
        return count

    @property
    def page_mm(self) -> tuple[float, float]:
        return PAGE_MM[self.page]

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    @property
    def origin_mm(self) -> tuple[float, float]:
        """Distance from the left and top page edges to the grid."""
        page_w, page_h = self.page_mm
        grid_w = self.columns * self.label_w_mm + (self.columns - 1) * self.gap_x_mm
        grid_h = self.rows * self.label_h_mm + (self.rows - 1) * self.gap_y_mm
        return (page_w - grid_w) / 2, (page_h - grid_h) / 2

    def label_box_mm(self, index: int) -> tuple[float, float]:
        """Left and top edge of the ``index``-th label on a page, filled row by row."""
        row, column = divmod(index, self.columns)
        left, top = self.origin_mm
        return (
            left + column * (self.label_w_mm + self.gap_x_mm),
            top + row * (self.label_h_mm + self.gap_y_mm),
        )


DEFAULT_LAYOUT: Final = SheetLayout()

_PAGES_PER_NODE = 512
"""Pages under each intermediate node of the page tree, so no node grows with the run."""


class _PdfFile:
    """Writes numbered PDF objects to ``out`` in order of arrival and remembers where."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._position = 0
        self._offsets = array("Q", [0])

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._position += len(data)

    def reserve(self) -> int:
        """A number for an object written later (a parent must be named before its kids)."""
        self._offsets.append(0)
        return len(self._offsets) - 1

    def put(self, number: int, obj: pydyf.Object) -> None:
        obj.number = number
        self._offsets[number] = self._position
        self.write(obj.indirect + b"\n")

    def finish(self, catalog: int, info: int) -> None:
        xref = self._position
        if xref >= 10**10:
            raise ValueError("PDF larger than 10 GB: split the run into several files")
        self.write(f"xref\n0 {len(self._offsets)}\n0000000000 65535 f \n".encode())
        for start in range(1, len(self._offsets), 4096):
            chunk = self._offsets[start : start + 4096]
            self.write("".join(f"{offset:010} 00000 n \n" for offset in chunk).encode())
        trailer = f"<</Size {len(self._offsets)}/Root {catalog} 0 R/Info {info} 0 R>>"
        self.write(f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode())


def _ref(number: int) -> str:
    return f"{number} 0 R"


def _draw_label(
    content: list[bytes], label: Label, left_mm: float, top_mm: float, layout: SheetLayout
) -> None:
    """Append the operators that draw ``label`` with its top-left corner at the given point."""
    page_h = layout.page_mm[1] * MM
    inner_w = (layout.label_w_mm - 2 * _LABEL_PAD_MM) * MM
    inner_h = (layout.label_h_mm - 2 * _LABEL_PAD_MM) * MM
    size, lines = _fit_text(
        label.human_text,
        inner_w,
        advance=_MONO_ADVANCE,
        max_size=_MAX_TEXT_PT,
        min_size=_MIN_TEXT_PT,
    )
    text_h = len(lines) * size * _LINE_SPACING

    dark = modules(label)
    quiet = QUIET_ZONE[label.symbology]
    rows, cols = dark.shape
    module = min(inner_w / (cols + 2 * quiet), (inner_h - text_h) / (rows + 2 * quiet))
    if module < MIN_MODULE_MM * MM:
        raise ValueError(
            f"a {layout.label_w_mm:g} x {layout.label_h_mm:g} mm label has no room for "
            f"{label.symbol_text!r}: its {cols} x {rows} symbol would need modules below "
            f"{MIN_MODULE_MM} mm"
        )
    x0 = left_mm * MM + _LABEL_PAD_MM * MM
    top = page_h - (top_mm + _LABEL_PAD_MM) * MM
    symbol_left = x0 + (inner_w - (cols + 2 * quiet) * module) / 2 + quiet * module
    symbol_top = top - quiet * module
    # In module units with y pointing down, each run is an integer rectangle.
    content.append(
        f"q {module:.4f} 0 0 {-module:.4f} {symbol_left:.3f} {symbol_top:.3f} cm".encode()
    )
    content.append(
        "".join(f"{x} {y} {n} 1 re\n" for y, row in enumerate(dark) for x, n in _runs(row)).encode()
        + b"f Q"
    )
    baseline = top - (rows + 2 * quiet) * module - size
    for line in lines:
        x = x0 + (inner_w - len(line) * _MONO_ADVANCE * size) / 2
        text = pydyf.String(line.encode("cp1252", "replace")).data
        content.append(b"BT /F1 %.2f Tf %.3f %.3f Td %s Tj ET" % (size, x, baseline, text))
        baseline -= size * _LINE_SPACING


def _cut_marks(layout: SheetLayout) -> bytes:
    """Ticks in the margins in line with every label edge; the grid is centred, so the
    ticks on opposite sides of the page mirror each other."""
    page_w, page_h = (v * MM for v in layout.page_mm)
    left, top = layout.origin_mm
    xs = {
        round(left + c * (layout.label_w_mm + layout.gap_x_mm) + edge, 3)
        for c in range(layout.columns)
        for edge in (0.0, layout.label_w_mm)
    }
    ys = {
        round(top + r * (layout.label_h_mm + layout.gap_y_mm) + edge, 3)
        for r in range(layout.rows)
        for edge in (0.0, layout.label_h_mm)
    }

    def span(to_grid: float) -> tuple[float, float]:
        """From just outside the grid towards the page edge, in points from that edge."""
        near = to_grid - _CUT_MARK_OFFSET_MM
        return near * MM, max(near - _CUT_MARK_MM, 1.0) * MM

    line = b"%.3f %.3f m %.3f %.3f l S"
    ops = [b"q 0.3 w 0 G"]
    a, b = span(top)
    for x in sorted(xs):
        ops += [line % (x * MM, page_h - a, x * MM, page_h - b), line % (x * MM, a, x * MM, b)]
    a, b = span(left)
    for y in sorted(ys):
        y_pt = page_h - y * MM
        ops += [line % (a, y_pt, b, y_pt), line % (page_w - a, y_pt, page_w - b, y_pt)]
    ops.append(b"Q")
    return b"\n".join(ops)


def write_pdf(labels: Iterable[Label], out: BinaryIO, layout: SheetLayout = DEFAULT_LAYOUT) -> int:
    """Print ``labels`` onto sheets, streaming page by page to ``out``; returns the page count.

    Labels are consumed one page at a time, and ``out`` need not be seekable. A label that
    cannot be encoded or does not fit raises ValueError after the pages before it were
    written: validate the layout against your longest code first.
    """
    it = iter(labels)
    first = list(itertools.islice(it, layout.per_page))
    if not first:
        raise ValueError("no labels to print")
    pdf = _PdfFile(out)
    pdf.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    catalog, root, font = pdf.reserve(), pdf.reserve(), pdf.reserve()
    pdf.put(catalog, pydyf.Dictionary({"Type": "/Catalog", "Pages": _ref(root)}))
    # A standard font: every PDF reader and RIP has Courier, so nothing is embedded.
    pdf.put(
        font,
        pydyf.Dictionary(
            {
                "Type": "/Font",
                "Subtype": "/Type1",
                "BaseFont": "/Courier",
                "Encoding": "/WinAnsiEncoding",
            }
        ),
    )
    page_w, page_h = (v * MM for v in layout.page_mm)
    media_box = pydyf.Array([0, 0, round(page_w, 3), round(page_h, 3)])
    resources = pydyf.Dictionary({"Font": pydyf.Dictionary({"F1": _ref(font)})})
    marks = _cut_marks(layout) if layout.cut_marks else None

    nodes: list[int] = []
    kids: list[int] = []
    node = 0
    pages = 0

    def close_node() -> None:
        pdf.put(
            node,
            pydyf.Dictionary(
                {
                    "Type": "/Pages",
                    "Parent": _ref(root),
                    "Count": len(kids),
                    "Kids": pydyf.Array([_ref(kid) for kid in kids]),
                }
            ),
        )
        nodes.append(node)
        kids.clear()

    batch = first
    while batch:
        if not kids:
            node = pdf.reserve()
        content: list[bytes] = [] if marks is None else [marks]
        for index, label in enumerate(batch):
            _draw_label(content, label, *layout.label_box_mm(index), layout)
        stream, page = pdf.reserve(), pdf.reserve()
        pdf.put(stream, pydyf.Stream(content, compress=True))
        pdf.put(
            page,
            pydyf.Dictionary(
                {
                    "Type": "/Page",
                    "Parent": _ref(node),
                    "MediaBox": media_box,
                    "Resources": resources,
                    "Contents": _ref(stream),
                }
            ),
        )
        kids.append(page)
        pages += 1
        if len(kids) == _PAGES_PER_NODE:
            close_node()
        batch = list(itertools.islice(it, layout.per_page))
    if kids:
        close_node()
    pdf.put(
        root,
        pydyf.Dictionary(
            {
                "Type": "/Pages",
                "Count": pages,
                "Kids": pydyf.Array([_ref(n) for n in nodes]),
            }
        ),
    )
    info = pdf.reserve()
    pdf.put(info, pydyf.Dictionary({"Producer": pydyf.String("Transparency codegen")}))
    pdf.finish(catalog, info)
    return pages
