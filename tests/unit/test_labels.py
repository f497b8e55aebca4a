"""Labels render to symbols that scanners read back to exactly the code given.

Every format is checked by decoding: PNG directly, SVG after re-drawing its path, and the
PDF after rasterising a page with PDFium and reading each label cell on it.
"""

from __future__ import annotations

import io
import math
import random
import re
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from typing import cast
from xml.etree import ElementTree

import numpy as np
import numpy.typing as npt
import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from transparency.domain.codes import grouped
from transparency.labels.arrange import PAD_MM, Font
from transparency.labels.content import CALL_TO_ACTION, Language
from transparency.labels.render import (
    QUIET_ZONE,
    Label,
    SheetLayout,
    Symbology,
    arrangement,
    modules,
    png,
    svg,
    write_pdf,
    write_zip,
)
from transparency.labels.sheets import Preset, layout_of

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GS = "\x1d"


def transparency_code(rnd: random.Random) -> str:
    return "TP" + "".join(rnd.choices(CROCKFORD, k=28))


def qr(code: str) -> Label:
    return Label(code, code, Symbology.QR)


def gs1(element_string: str) -> Label:
    return Label(element_string, element_string, Symbology.GS1_DATAMATRIX)


TRANSPARENCY = qr(transparency_code(random.Random(1)))
OFFLINE = qr("".join(random.Random(2).choices(CROCKFORD, k=125)))
GS1_SERIAL = gs1("(01)09506000134352(21)ABC123xyz")
GS1_LOT_EXPIRY = gs1("(01)09506000134352(10)LOT42(17)261231(21)XYZ9")

# What a scanner transmits after ]d2: the FNC1 in first position is the identifier itself,
# and a GS ends each variable-length field that another field follows; fixed ones need none.
GS1_TRANSMITTED = {
    GS1_SERIAL: "010950600013435221ABC123xyz",
    GS1_LOT_EXPIRY: f"010950600013435210LOT42{GS}1726123121XYZ9",
}
SAMPLES = [TRANSPARENCY, OFFLINE, GS1_SERIAL, GS1_LOT_EXPIRY]
SAMPLE_IDS = ["transparency", "offline", "gs1-serial", "gs1-lot-expiry"]


def decode(pixels: npt.NDArray[np.uint8]) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(pixels, text_mode=zxingcpp.TextMode.Plain)


def assert_reads_back(found: list[zxingcpp.Barcode], label: Label) -> None:
    assert len(found) == 1, f"{len(found)} symbols found for {label.symbol_text!r}"
    [barcode] = found
    if label.symbology is Symbology.QR:
        assert barcode.symbology_identifier == "]Q1"
        assert barcode.text == label.symbol_text
        assert barcode.ec_level == "M"
        assert version(barcode) <= 10
    else:
        assert barcode.symbology_identifier == "]d2"
        assert barcode.text == GS1_TRANSMITTED[label]


def version(barcode: zxingcpp.Barcode) -> int:
    extra = cast(dict[str, str], barcode.extra)
    return int(extra["Version"])


def png_pixels(data: bytes) -> npt.NDArray[np.uint8]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image.convert("L"))


@pytest.mark.parametrize("label", SAMPLES, ids=SAMPLE_IDS)
def test_png_reads_back_to_the_exact_code(label: Label) -> None:
    assert_reads_back(decode(png_pixels(png(label))), label)


def test_gs1_datamatrix_is_square_and_transmits_separators_exactly() -> None:
    for label, transmitted in GS1_TRANSMITTED.items():
        [barcode] = decode(png_pixels(png(label)))
        assert (barcode.symbology_identifier, barcode.text) == ("]d2", transmitted)
    long = gs1("(01)09506000134352(10)ABCDEFGHIJKLMNOPQRST(17)261231(21)ABCDEFGHIJKLMNOPQRST")
    rows, cols = modules(long).shape
    assert rows == cols


def test_uppercase_codes_use_qr_alphanumeric_mode() -> None:
    # 125 characters at level M fit version 6 as alphanumeric; as bytes they need version 8.
    [barcode] = decode(png_pixels(png(OFFLINE)))
    assert version(barcode) == 6
    assert modules(OFFLINE).shape == (41, 41)
    assert modules(qr(OFFLINE.symbol_text.lower())).shape[0] > 41


PRINTED = Label(
    "https://verify.example.com/t/TPG000A000000000Y4G6YCDVZD28FS",
    grouped("TPG000A000000000Y4G6YCDVZD28FS"),
    Symbology.QR,
    code="TPG000A000000000Y4G6YCDVZD28FS",
    lines=("Acme", "Widget Pro 500 ml", "LOT L42", "EXP 2026-12-31"),
    call_to_action=CALL_TO_ACTION[Language.FR],
)


@pytest.mark.parametrize("preset", list(Preset))
@pytest.mark.parametrize("label", [PRINTED, GS1_LOT_EXPIRY], ids=["qr", "gs1"])
def test_png_keeps_the_quiet_zone_and_the_label_edge_clear(preset: Preset, label: Label) -> None:
    size = layout_of(preset).label_mm
    pixels = png_pixels(png(label, size))
    px = DPI / 25.4
    assert pixels.shape == (round(size[1] * px), round(size[0] * px))
    dark, plan = arrangement(label, size)
    quiet = QUIET_ZONE[label.symbology] * plan.module_mm
    rows, cols = dark.shape
    # The quiet zone is blank, all round the symbol.
    left, top = (plan.symbol_left_mm - quiet) * px, (plan.symbol_top_mm - quiet) * px
    right = (plan.symbol_left_mm + cols * plan.module_mm + quiet) * px
    bottom = (plan.symbol_top_mm + rows * plan.module_mm + quiet) * px
    box = pixels[math.ceil(top) : math.floor(bottom), math.ceil(left) : math.floor(right)]
    band = math.floor(quiet * px) - 1
    for edge in (box[:band], box[-band:], box[:, :band], box[:, -band:]):
        assert (edge > 128).all(), "a mark in the quiet zone"
    # Nothing is printed within the die-cut tolerance of the label's edge: no text touches it.
    rim = math.floor(PAD_MM * px) - 1
    for strip in (pixels[:rim], pixels[-rim:], pixels[:, :rim], pixels[:, -rim:]):
        assert (strip > 128).all(), "ink at the label's edge"
    outside = pixels.copy()
    outside[math.ceil(top) : math.floor(bottom), math.ceil(left) : math.floor(right)] = 255
    assert (outside < 128).any(), "no text beside or under the symbol"
    assert_reads_back(decode(pixels), label)


def test_text_that_is_not_a_gs1_element_string_is_refused() -> None:
    with pytest.raises(ValueError, match="not a GS1 element string"):
        png(gs1("TPNOTGS1"))


def svg_modules(document: str) -> tuple[npt.NDArray[np.bool_], ElementTree.Element]:
    """Re-draw the SVG's path, one pixel per module (the path is in module units)."""
    root = ElementTree.fromstring(document)  # noqa: S314 - our own output
    ns = {"svg": "http://www.w3.org/2000/svg"}
    [path] = root.findall("svg:path", ns)
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", path.attrib["d"])
    assert "".join(f"M{x} {y}h{n}v1h-{n}z" for x, y, n in runs) == path.attrib["d"]
    side = max(max(int(x) + int(n) for x, _, n in runs), max(int(y) for _, y, _ in runs) + 1)
    dark = np.zeros((side, side), dtype=np.bool_)
    for x, y, n in runs:
        dark[int(y), int(x) : int(x) + int(n)] = True
    return dark, root


@pytest.mark.parametrize("label", [*SAMPLES, PRINTED], ids=[*SAMPLE_IDS, "printed"])
def test_svg_is_well_formed_and_draws_exactly_the_symbol_where_the_pdf_does(label: Label) -> None:
    size = layout_of(Preset.A4_L7160).label_mm
    document = svg(label, size)
    dark, root = svg_modules(document)
    expected = modules(label)
    rows, cols = expected.shape
    assert root.attrib["width"] == f"{size[0]:g}mm"
    assert (dark[:rows, :cols] == expected).all()
    assert dark.sum() == expected.sum(), "modules drawn outside the symbol"
    # The same arrangement as the PDF and PNG: symbol position and module size, every line.
    _, plan = arrangement(label, size)
    [path] = root.findall("{http://www.w3.org/2000/svg}path")
    transform = re.fullmatch(r"translate\(([\d.]+) ([\d.]+)\) scale\(([\d.]+)\)",
                             path.attrib["transform"])  # fmt: skip
    assert transform is not None
    x, y, scale = (float(v) for v in transform.groups())
    assert (x, y, scale) == pytest.approx((plan.symbol_left_mm, plan.symbol_top_mm,
                                           plan.module_mm), abs=1e-3)  # fmt: skip
    texts = root.findall(".//{http://www.w3.org/2000/svg}text")
    assert [t.text for t in texts] == [line.text for line in plan.lines]
    assert "".join(line.text for line in plan.lines if line.font is Font.MONO).replace(
        " ", ""
    ) == label.human_text.replace(" ", "")

    # Generous quiet zone and 4 px per module, as a camera would see the print.
    quiet = QUIET_ZONE[label.symbology]
    pixels = np.where(np.pad(dark[:rows, :cols], quiet + 4), 0, 255).astype(np.uint8)
    assert_reads_back(decode(pixels.repeat(4, 0).repeat(4, 1)), label)


def mixed_labels(n: int, seed: int = 5) -> list[Label]:
    """Two Transparency codes, then a GS1 one with its expected transmission noted."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 2:
            serial = "".join(rnd.choices(CROCKFORD, k=10))
            label = gs1(f"(01)09506000134352(10)L{i}(17)261231(21){serial}")
            GS1_TRANSMITTED[label] = f"010950600013435210L{i}{GS}1726123121{serial}"
            out.append(label)
        else:
            out.append(qr(transparency_code(rnd)))
    return out


def check_xref(pdf: bytes) -> None:
    """Every cross-reference entry points at the object it names."""
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    assert pdf[start:].startswith(b"xref\n0 ")
    count = int(pdf[start + 7 :].split(maxsplit=1)[0])
    table = pdf[start:].split(b"\n", 2)[2]
    for number in range(1, count):
        entry = table[number * 20 : number * 20 + 20]
        offset = int(entry[:10])
        assert entry[10:] == b" 00000 n \n"
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number), f"object {number}"
    assert pdf.endswith(b"%%EOF\n")


DPI = 300


def render_page(pdf: bytes, index: int) -> npt.NDArray[np.uint8]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        bitmap = document[index].render(scale=DPI / 72, grayscale=True)
        pixels: npt.NDArray[np.uint8] = bitmap.to_numpy()
        return pixels
    finally:
        document.close()


def cell(page: npt.NDArray[np.uint8], layout: SheetLayout, index: int) -> npt.NDArray[np.uint8]:
    left, top = layout.label_box_mm(index)
    px = DPI / 25.4
    return page[
        round(top * px) : round((top + layout.label_h_mm) * px),
        round(left * px) : round((left + layout.label_w_mm) * px),
    ]


@pytest.mark.parametrize(
    "layout",
    [SheetLayout(), SheetLayout(page="Letter", cut_marks=True)],
    ids=["a4", "letter-cut-marks"],
)
def test_pdf_sheet_prints_every_code_readably(layout: SheetLayout) -> None:
    labels = mixed_labels(50)
    out = io.BytesIO()
    pages = write_pdf(labels, out, layout)
    pdf = out.getvalue()

    assert pages == -(-50 // layout.per_page)
    check_xref(pdf)
    document = pypdfium2.PdfDocument(pdf)
    try:
        assert len(document) == pages
        width_pt, height_pt = document[0].get_size()
    finally:
        document.close()
    page_w, page_h = layout.page_mm
    assert (round(width_pt / 72 * 25.4, 1), round(height_pt / 72 * 25.4, 1)) == (page_w, page_h)

    page = render_page(pdf, 0)
    for index, label in enumerate(labels[: layout.per_page]):
        assert_reads_back(decode(cell(page, layout, index)), label)
    last = render_page(pdf, pages - 1)
    remaining = labels[(pages - 1) * layout.per_page :]
    for index, label in enumerate(remaining):
        assert_reads_back(decode(cell(last, layout, index)), label)
    assert decode(cell(last, layout, len(remaining))) == []


def test_pdf_fits_long_offline_codes_by_wrapping_their_text() -> None:
    out = io.BytesIO()
    assert write_pdf([OFFLINE, TRANSPARENCY], out) == 1
    page = render_page(out.getvalue(), 0)
    assert_reads_back(decode(cell(page, SheetLayout(), 0)), OFFLINE)


def test_defaults_are_24_labels_on_a4_and_the_grid_is_derived_from_the_page() -> None:
    a4 = SheetLayout()
    assert (a4.columns, a4.rows, a4.label_w_mm, a4.label_h_mm) == (3, 8, 63.5, 33.9)
    assert a4 == SheetLayout(columns=3, rows=8)
    letter = SheetLayout(page="Letter")
    assert (letter.columns, letter.rows) == (3, 7)
    assert SheetLayout(label_w_mm=100, label_h_mm=50, gap_x_mm=0).columns == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"columns": 4},
            r"4 columns of 63.5 mm with 2.5 mm gaps need 261.5 mm, but A4 leaves 200 mm",
        ),
        ({"rows": 9}, r"9 rows of 33.9 mm .* need 305.1 mm"),
        ({"label_w_mm": 250}, r"a label 250 mm across does not fit"),
        ({"page": "A3"}, r"page must be one of A4, Letter"),
        ({"label_h_mm": 0}, r"label_h_mm must be a positive"),
        ({"gap_x_mm": -1}, r"gap_x_mm must be zero or more"),
        ({"margin_mm": float("nan")}, r"margin_mm must be zero or more"),
        ({"rows": -1}, r"rows must be 0 \(as many as fit\) or more"),
        ({"label_w_mm": 69, "gap_x_mm": 0, "margin_mm": 1, "cut_marks": True}, r"cut marks need"),
    ],
)
def test_bad_layouts_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SheetLayout(**kwargs)  # type: ignore[arg-type]


def test_a_label_too_small_for_its_symbol_is_refused() -> None:
    tiny = SheetLayout(label_w_mm=12, label_h_mm=12)
    with pytest.raises(ValueError, match="no room for"):
        write_pdf([OFFLINE], io.BytesIO(), tiny)


def test_an_empty_run_is_refused() -> None:
    with pytest.raises(ValueError, match="no labels"):
        write_pdf(iter([]), io.BytesIO())


class RecordingSink:
    """Unseekable, like a socket; notes how many labels were taken at each write."""

    def __init__(self) -> None:
        self.consumed = 0
        self.writes: list[tuple[int, int]] = []

    def write(self, data: bytes) -> int:
        self.writes.append((self.consumed, len(data)))
        return len(data)


def test_write_pdf_streams_pages_while_consuming_labels_lazily() -> None:
    sink = RecordingSink()
    labels = mixed_labels(50)
    layout = SheetLayout()

    def source() -> Iterator[Label]:
        for label in labels:
            sink.consumed += 1
            yield label

    assert write_pdf(source(), sink, layout) == 3  # type: ignore[arg-type]
    assert sink.writes[0][0] <= layout.per_page
    written_before_last_page = sum(n for consumed, n in sink.writes if consumed <= 2 * 24)
    assert written_before_last_page > 2_000, "pages were held back until the end"
    assert sink.consumed == 50


@pytest.mark.parametrize("kind", ["png", "svg"])
def test_zip_holds_one_readable_file_per_code(kind: str) -> None:
    labels = [TRANSPARENCY, GS1_SERIAL, GS1_LOT_EXPIRY]
    out = io.BytesIO()
    assert write_zip(labels, out, kind=kind) == 3  # type: ignore[arg-type]
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names == [
            f"{TRANSPARENCY.symbol_text}.{kind}",
            f"01_09506000134352_21_ABC123xyz.{kind}",
            f"01_09506000134352_10_LOT42_17_261231_21_XYZ9.{kind}",
        ]
        for name, label in zip(names, labels, strict=True):
            data = archive.read(name)
            if kind == "png":
                assert_reads_back(decode(png_pixels(data)), label)
            else:
                dark, _ = svg_modules(data.decode())
                assert dark.sum() == modules(label).sum()


def test_zip_names_are_safe_and_unique_even_on_case_insensitive_disks() -> None:
    labels = [
        gs1("(01)09506000134352(21)ab/c"),
        gs1("(01)09506000134352(21)AB/C"),
        gs1("(01)09506000134352(21)ab.c"),
        qr("../../etc/passwd"),
    ]
    out = io.BytesIO()
    write_zip(labels, out, kind="svg")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [
            "01_09506000134352_21_ab_c.svg",
            "01_09506000134352_21_AB_C-2.svg",
            "01_09506000134352_21_ab.c.svg",
            "etc_passwd.svg",
        ]


def test_zip_entries_are_named_after_the_code_not_the_url_in_the_symbol() -> None:
    out = io.BytesIO()
    write_zip([PRINTED], out, kind="png", layout=layout_of(Preset.ROLL_50X25))
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [f"{PRINTED.code}.png"]
        pixels = png_pixels(archive.read(f"{PRINTED.code}.png"))
    assert pixels.shape == (round(25 / 25.4 * DPI), round(50 / 25.4 * DPI))


def test_presets_match_their_label_stock() -> None:
    grids = {p: (layout_of(p).page, layout_of(p).label_mm, layout_of(p).per_page) for p in Preset}
    assert grids == {
        Preset.A4_L7159: ("A4", (63.5, 33.9), 24),
        Preset.A4_L7160: ("A4", (63.5, 38.1), 21),
        Preset.A4_L7163: ("A4", (99.1, 38.1), 14),
        Preset.LETTER_5160: ("Letter", (66.675, 25.4), 30),
        Preset.LETTER_5163: ("Letter", (101.6, 50.8), 10),
        Preset.ROLL_40X30: ("roll", (40.0, 30.0), 1),
        Preset.ROLL_50X25: ("roll", (50.0, 25.0), 1),
    }
    assert layout_of() == SheetLayout()
    # Another size re-derives the grid; other fields keep the preset's.
    assert layout_of(Preset.A4_L7160, label_h_mm=50).rows == 5
    assert layout_of(Preset.ROLL_40X30).page_mm == (40.0, 30.0)
    with pytest.raises(ValueError, match="roll labels are die-cut"):
        layout_of(Preset.ROLL_40X30, cut_marks=True)


def test_a_label_carries_its_call_to_action_grouped_code_and_chosen_lines() -> None:
    _, plan = arrangement(PRINTED, layout_of(Preset.A4_L7160).label_mm)
    texts = [line.text for line in plan.lines]
    assert texts[0] == "Scannez pour vérifier"
    code_lines = [line.text for line in plan.lines if line.font is Font.MONO]
    assert " ".join(code_lines) == PRINTED.human_text
    assert all(len(group) <= 4 for line in code_lines for group in line.split())
    assert texts[-4:] == list(PRINTED.lines)
    # On one line of mono text no two lines overlap: baselines a line apart at least.
    baselines = [line.baseline_mm for line in plan.lines]
    assert baselines == sorted(baselines)


@pytest.mark.parametrize("preset", list(Preset))
def test_every_preset_makes_room_for_the_chosen_lines(preset: Preset) -> None:
    """Text under the symbol once left the 99 x 38 and 102 x 51 mm labels, the stock meant
    for these lines, no room for any of them; beside it, all four fit."""
    label_mm = layout_of(preset).label_mm
    _, alone = arrangement(replace(PRINTED, lines=()), label_mm)
    _, plan = arrangement(PRINTED, label_mm)
    printed = [line.text for line in plan.lines if line.font is Font.SANS]
    assert len(printed) == len(PRINTED.lines), printed
    for text, chosen in zip(printed, PRINTED.lines, strict=True):
        assert text == chosen or (text.endswith("…") and chosen.startswith(text[:-1])), text
    # The room is not taken from the symbol: it stays as good to scan as without the lines.
    assert plan.module_mm >= 0.9 * min(alone.module_mm, 0.6)
