"""Every label preset printed at 300 dpi and photographed by a phone reads back.

The PDF is rasterised at 300 dpi (a laser or thermal printer's resolution), then each
label is degraded as a phone photo of it would be: defocus blur, a perspective tilt,
uneven light and sensor noise, and JPEG compression; the project's scanner must read
every label on the sheet back to its exact code. Each symbol a label can carry: our codes'
QR, a GS1 unit's Digital Link QR (the default for GS1) and its element-string DataMatrix.
"""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
import numpy.typing as npt
import pypdfium2
import pytest

import scanner
from scanner.results import Result
from transparency.domain import codes, gs1
from transparency.domain.codes import Payload
from transparency.domain.digital_link import parse_digital_link
from transparency.labels.content import CALL_TO_ACTION, Language
from transparency.labels.render import Label, Symbology, write_pdf
from transparency.labels.sheets import Preset, SheetLayout, layout_of

DPI = 300
SECRET = b"print-and-photo secret, 32 bytes"


GTIN = "09506000134352"
# GS1 character set 82 without the characters a serial rarely holds; "/" and "%" need
# percent-encoding in a URI, which makes the Digital Link longer.
SERIAL_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789abcdefghijk-./%"
KINDS = ("transparency-qr", "gs1-digital-link-qr", "gs1-datamatrix")


def printed_labels(n: int, seed: int, kind: str = "transparency-qr") -> list[Label]:
    rnd = random.Random(seed)
    labels = []
    for _ in range(n):
        if kind == "transparency-qr":
            code = codes.sign_transparency(
                Payload(rnd.randrange(1, 4000), rnd.getrandbits(63)), SECRET
            )
            symbol, symbology = f"https://verify.example.com/t/{code}", Symbology.QR
        else:
            serial = "".join(rnd.choices(SERIAL_CHARS, k=rnd.randrange(8, 21)))
            ais = (("01", GTIN), ("21", serial))
            code = gs1.bracketed(ais)
            if kind == "gs1-datamatrix":
                symbol, symbology = code, Symbology.GS1_DATAMATRIX
            else:
                symbol = gs1.digital_link(ais, base="https://verify.example.com")
                symbology = Symbology.QR
        labels.append(
            Label(
                symbol,
                codes.grouped(code),
                symbology,
                code=code,
                lines=("Acme", "Widget 500 ml", "LOT L42", "EXP 2027-06-30"),
                call_to_action=CALL_TO_ACTION[Language.FR],
            )
        )
    return labels


def read_back(label: Label, found: list[Result]) -> bool:
    """Whether the photo gave exactly the label's symbol: for a GS1 DataMatrix, its
    element string with the ]d2 identifier; for a Digital Link, a URI read as the
    standard says (no tolerance needed) whose GS1 data is the unit's."""
    if label.symbology is Symbology.GS1_DATAMATRIX:
        return [
            (r.symbology_identifier, gs1.bracketed(gs1.parse_gs1(r.text).ais)) for r in found
        ] == [("]d2", label.symbol_text)]
    if [r.text for r in found] != [label.symbol_text]:
        return False
    if label.symbol_text.startswith("https://verify.example.com/01/"):
        return gs1.bracketed(parse_digital_link(found[0].text, strict=True).ais()) == label.code
    return True


def photographed(label: npt.NDArray[np.uint8], rnd: random.Random) -> bytes:
    """A phone's JPEG of one printed label."""
    h, w = label.shape
    # The label on a grey surface, seen a little off square: a perspective tilt of up to 8%.
    framed = cv2.copyMakeBorder(label, h // 3, h // 3, w // 3, w // 3, cv2.BORDER_CONSTANT,
                                value=150)  # fmt: skip
    fh, fw = framed.shape
    corners = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], dtype=np.float32)
    jitter = np.array([[rnd.uniform(-0.08, 0.08) * fw, rnd.uniform(-0.08, 0.08) * fh]
                       for _ in range(4)], dtype=np.float32)  # fmt: skip
    warp = cv2.getPerspectiveTransform(corners, corners + jitter)
    seen = cv2.warpPerspective(framed, warp, (fw, fh), borderValue=150)
    # Slightly out of focus, lit from one side, with sensor noise.
    seen = cv2.GaussianBlur(seen, (0, 0), sigmaX=1.6)
    light = np.linspace(0.75, 1.0, fw, dtype=np.float32)[None, :]
    noise = np.random.default_rng(rnd.getrandbits(32)).normal(0, 6, seen.shape)
    degraded = np.clip(seen.astype(np.float32) * light + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", degraded, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return bytes(jpeg)


def label_cells(pdf: bytes, layout: SheetLayout, count: int) -> list[npt.NDArray[np.uint8]]:
    document = pypdfium2.PdfDocument(pdf)
    cells = []
    px = DPI / 25.4
    try:
        for index in range(count):
            page_index, slot = divmod(index, layout.per_page)
            if slot == 0:
                page = document[page_index].render(scale=DPI / 72, grayscale=True).to_numpy()
            left, top = layout.label_box_mm(slot)
            cells.append(
                page[
                    round(top * px) : round((top + layout.label_h_mm) * px),
                    round(left * px) : round((left + layout.label_w_mm) * px),
                ].copy()
            )
    finally:
        document.close()
    return cells


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("preset", list(Preset))
def test_every_label_of_every_preset_reads_back_after_print_and_photo(
    preset: Preset, kind: str
) -> None:
    layout = layout_of(preset)
    # A full sheet; a roll prints one label a page, so four pages of it.
    count = layout.per_page if layout.per_page > 1 else 4
    labels = printed_labels(count, seed=len(preset.value), kind=kind)
    out = io.BytesIO()
    write_pdf(labels, out, layout)
    rnd = random.Random(preset.value)
    read = 0
    for label, cell in zip(labels, label_cells(out.getvalue(), layout, count), strict=True):
        if read_back(label, scanner.decode(photographed(cell, rnd))):
            read += 1
    print(f"{preset.value} {kind}: {read}/{count} labels read back after print and photo")
    assert read == count, f"{preset.value} {kind}: {read} of {count} labels read back"
