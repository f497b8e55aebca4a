"""Print-ready labels: the symbol with its quiet zone, a call to action, the code grouped
for reading aloud and the brand's chosen lines, one label per unit.

QR (the ``qrcode`` library) carries our Transparency and offline codes; GS1 DataMatrix
(zxing-cpp's writer, FNC1 first so scanners report ``]d2``) carries GS1 element strings.
``arrange.py`` decides where each part goes; this module draws that arrangement as PNG,
SVG, a ZIP of those, or onto PDF sheets, so a label looks the same in every format.

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

from transparency.labels.arrange import MIN_MODULE_MM, PT_MM, Arrangement, Font, arrange
from transparency.labels.sheets import DEFAULT_LAYOUT, PAGE_MM, SheetLayout

__all__ = [
    "DEFAULT_LAYOUT",
    "MIN_MODULE_MM",
    "PAGE_MM",
    "QUIET_ZONE",
    "Label",
    "SheetLayout",
    "Symbology",
    "arrangement",
    "modules",
    "png",
    "svg",
    "write_pdf",
    "write_zip",
]

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
    """Printed with the symbol; it breaks onto lines only at its spaces (groups)."""
    symbology: Symbology
    code: str = ""
    """The unit's code, which names its file in a ZIP; the symbol text when empty."""
    lines: tuple[str, ...] = ()
    """The brand's chosen lines (brand, product, lot, expiry), printed under the code."""
    call_to_action: str = ""
    """Printed above the code, in the label's language ("Scan to verify")."""


# Minimum quiet zones in modules: ISO/IEC 18004 for QR, ISO/IEC 16022 and GS1 for DataMatrix.
QUIET_ZONE: Final = {Symbology.QR: 4, Symbology.GS1_DATAMATRIX: 1}
MM: Final = 72 / 25.4
"""Points per millimetre."""
_CUT_MARK_MM = 5.0
_CUT_MARK_OFFSET_MM = 1.0


def modules(label: Label) -> Modules:
    """The symbol for ``label``; raises ValueError if its text cannot be encoded."""
    if label.symbology is Symbology.QR:
        return _qr_modules(label.symbol_text)
    return _gs1_datamatrix_modules(label.symbol_text)


def arrangement(label: Label, label_mm: tuple[float, float]) -> tuple[Modules, Arrangement]:
    """The label's symbol and where everything goes on a label of ``label_mm``; raises
    ValueError if the text cannot be encoded or the label is too small for it."""
    dark = modules(label)
    return dark, arrange(
        symbol_modules=max(dark.shape),
        quiet_zone=QUIET_ZONE[label.symbology],
        human_text=label.human_text,
        call_to_action=label.call_to_action,
        lines=label.lines,
        label_mm=label_mm,
    )


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


# --- PNG and SVG -----------------------------------------------------------------------------

# Pillow finds these by file name in the system font directories (fonts-dejavu-core and
# fonts-liberation on Debian); Liberation Sans has Helvetica's widths, and a wider font
# is squeezed to the width the arrangement measured.
_FONT_FILES: Final = {
    Font.MONO: ("DejaVuSansMono-Bold.ttf", "LiberationMono-Bold.ttf", "Menlo.ttc", "consolab.ttf"),
    Font.SANS: ("LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf", "DejaVuSans.ttf"),
    Font.SANS_BOLD: ("LiberationSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf",
                     "DejaVuSans-Bold.ttf"),
}  # fmt: skip
DPI: Final = 300


@lru_cache(maxsize=64)
def _png_font(font: Font, size: int) -> ImageFont.FreeTypeFont:
    for name in _FONT_FILES[font]:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    # Always present; text is measured with the font actually used and fitted to its place.
    fallback = ImageFont.load_default(size)
    if not isinstance(fallback, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; it cannot draw label text")
    return fallback


def png(
    label: Label, label_mm: tuple[float, float] = DEFAULT_LAYOUT.label_mm, *, dpi: int = DPI
) -> bytes:
    """A grayscale PNG of the label at ``dpi``, laid out as on a PDF sheet."""
    if dpi < 72:
        raise ValueError(f"dpi must be at least 72, not {dpi}")
    dark, plan = arrangement(label, label_mm)
    px = dpi / 25.4
    width, height = (round(side * px) for side in label_mm)
    image = Image.new("L", (width, height), 255)
    # Whole pixels per module, so every module prints alike; the symbol keeps its centre
    # (and so its quiet zone, which the arrangement sized with the larger module).
    module_px = max(1, math.floor(plan.module_mm * px))
    rows, cols = dark.shape
    left = round((plan.symbol_left_mm + cols * plan.module_mm / 2) * px - cols * module_px / 2)
    top = round((plan.symbol_top_mm + rows * plan.module_mm / 2) * px - rows * module_px / 2)
    symbol = np.where(dark, 0, 255).astype(np.uint8).repeat(module_px, 0).repeat(module_px, 1)
    image.paste(Image.fromarray(symbol), (left, top))
    draw = ImageDraw.Draw(image)
    for line in plan.lines:
        size = max(1, round(line.size_pt / 72 * dpi))
        font = _png_font(line.font, size)
        room = line.width_mm * px + 1
        if font.getlength(line.text) > room:  # a wider font than measured: squeeze it
            font = _png_font(line.font, max(1, int(size * room / font.getlength(line.text))))
        draw.text(
            (line.center_mm * px, line.baseline_mm * px), line.text, fill=0, font=font, anchor="ms"
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


_SANS = 'font-family="Helvetica, Arial, Liberation Sans, sans-serif"'
_SVG_FONTS: Final = {
    Font.MONO: 'font-family="DejaVu Sans Mono, Courier New, monospace" font-weight="bold"',
    Font.SANS: _SANS,
    Font.SANS_BOLD: f'{_SANS} font-weight="bold"',
}


def svg(label: Label, label_mm: tuple[float, float] = DEFAULT_LAYOUT.label_mm) -> str:
    """An SVG of the label, a user unit a millimetre, laid out as on a PDF sheet; the dark
    modules form one path, in module units."""
    dark, plan = arrangement(label, label_mm)
    width, height = label_mm
    path = "".join(f"M{x} {y}h{n}v1h-{n}z" for y, row in enumerate(dark) for x, n in _runs(row))
    texts = "".join(
        # textLength holds each line to its measured width whatever font the viewer has.
        f'<text x="{_num(line.center_mm)}" y="{_num(line.baseline_mm)}" '
        f'font-size="{_num(line.size_pt * PT_MM)}" {_SVG_FONTS[line.font]} '
        f'textLength="{_num(line.width_mm)}" lengthAdjust="spacingAndGlyphs">'
        f"{escape(line.text)}</text>"
        for line in plan.lines
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{_num(width)}mm" height="{_num(height)}mm" '
        f'viewBox="0 0 {_num(width)} {_num(height)}">'
        f'<rect width="{_num(width)}" height="{_num(height)}" fill="#fff"/>'
        f'<path transform="translate({_num(plan.symbol_left_mm)} {_num(plan.symbol_top_mm)}) '
        f'scale({plan.module_mm:.5f})" d="{path}" fill="#000" shape-rendering="crispEdges"/>'
        f'<g text-anchor="middle" fill="#000">{texts}</g>'
        "</svg>\n"
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_stem(code: str) -> str:
    # Leading dots would hide the file or walk up a directory on extraction.
    return _UNSAFE.sub("_", code).strip("._-")[:200] or "code"


def write_zip(
    labels: Iterable[Label],
    out: BinaryIO,
    *,
    kind: Literal["png", "svg"],
    layout: SheetLayout = DEFAULT_LAYOUT,
) -> int:
    """One PNG or SVG per label, of the layout's label size, streamed into a ZIP; returns
    the number of files.

    Files are named ``<code>.png`` (or ``.svg``) after the label's code, with anything but
    letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``; names that would clash on a
    case-insensitive file system get a ``-2``, ``-3``... suffix.
    """

    def render(label: Label) -> bytes:
        if kind == "png":
            return png(label, layout.label_mm)
        return svg(label, layout.label_mm).encode()

    # PNG is deflated already; compressing it again costs time and saves nothing.
    compression = zipfile.ZIP_STORED if kind == "png" else zipfile.ZIP_DEFLATED
    taken: set[str] = set()
    count = 0
    it = iter(labels)
    first = next(it, None)
    if first is None:
        raise ValueError("no labels to print")
    # Drawn before the archive is opened: a label that does not fit fails with nothing
    # written, so a download can still answer with a problem.
    rendered: bytes | None = render(first)
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for label in itertools.chain([first], it):
            stem = _file_stem(label.code or label.symbol_text)
            name = stem
            for n in itertools.count(2):
                if name.casefold() not in taken:
                    break
                name = f"{stem}-{n}"
            taken.add(name.casefold())
            archive.writestr(f"{name}.{kind}", rendered if rendered is not None else render(label))
            rendered = None
            count += 1
    return count


# --- PDF sheets ------------------------------------------------------------------------------

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


_PDF_FONTS: Final = {Font.MONO: b"F1", Font.SANS: b"F2", Font.SANS_BOLD: b"F3"}
_PDF_BASE_FONTS: Final = {
    Font.MONO: "/Courier-Bold",
    Font.SANS: "/Helvetica",
    Font.SANS_BOLD: "/Helvetica-Bold",
}


def _draw_label(label: Label, left_mm: float, top_mm: float, layout: SheetLayout) -> bytes:
    """The operators that draw ``label`` with its top-left corner at the given point."""
    dark, plan = arrangement(label, layout.label_mm)
    page_h = layout.page_mm[1] * MM
    module = plan.module_mm * MM
    symbol_left = (left_mm + plan.symbol_left_mm) * MM
    symbol_top = page_h - (top_mm + plan.symbol_top_mm) * MM
    # In module units with y pointing down, each run is an integer rectangle.
    ops = [
        f"q {module:.4f} 0 0 {-module:.4f} {symbol_left:.3f} {symbol_top:.3f} cm".encode(),
        "".join(f"{x} {y} {n} 1 re\n" for y, row in enumerate(dark) for x, n in _runs(row)).encode()
        + b"f Q",
    ]
    for line in plan.lines:
        x = (left_mm + line.center_mm - line.width_mm / 2) * MM
        y = page_h - (top_mm + line.baseline_mm) * MM
        # WinAnsiEncoding: the accents of every call to action are in cp1252.
        text = pydyf.String(line.text.encode("cp1252", "replace")).data
        font = _PDF_FONTS[line.font]
        ops.append(b"BT /%s %.2f Tf %.3f %.3f Td %s Tj ET" % (font, line.size_pt, x, y, text))
    return b"\n".join(ops)


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
    cannot be encoded or does not fit raises ValueError; on the first page before anything
    is written, on a later page after the pages before it were written.
    """
    it = iter(labels)
    first = list(itertools.islice(it, layout.per_page))
    if not first:
        raise ValueError("no labels to print")
    drawn = [_draw_label(label, *layout.label_box_mm(i), layout) for i, label in enumerate(first)]
    pdf = _PdfFile(out)
    pdf.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    catalog, root = pdf.reserve(), pdf.reserve()
    fonts = {font: pdf.reserve() for font in Font}
    pdf.put(catalog, pydyf.Dictionary({"Type": "/Catalog", "Pages": _ref(root)}))
    # Standard fonts: every PDF reader and RIP has them, so nothing is embedded.
    for font, number in fonts.items():
        pdf.put(
            number,
            pydyf.Dictionary(
                {
                    "Type": "/Font",
                    "Subtype": "/Type1",
                    "BaseFont": _PDF_BASE_FONTS[font],
                    "Encoding": "/WinAnsiEncoding",
                }
            ),
        )
    page_w, page_h = (v * MM for v in layout.page_mm)
    media_box = pydyf.Array([0, 0, round(page_w, 3), round(page_h, 3)])
    resources = pydyf.Dictionary(
        {
            "Font": pydyf.Dictionary(
                {_PDF_FONTS[font].decode(): _ref(number) for font, number in fonts.items()}
            )
        }
    )
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

    while drawn:
        if not kids:
            node = pdf.reserve()
        content: list[bytes] = drawn if marks is None else [marks, *drawn]
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
        batch = itertools.islice(it, layout.per_page)
        drawn = [
            _draw_label(label, *layout.label_box_mm(i), layout) for i, label in enumerate(batch)
        ]
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
