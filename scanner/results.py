"""What a decode returns: one small immutable ``Result`` per code found."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from transparency.domain.codes import ParsedCode, parse
from transparency.domain.errors import InvalidCode


class Symbology(StrEnum):
    QR_CODE = "QRCode"
    DATA_MATRIX = "DataMatrix"
    CODE_128 = "Code128"
    EAN_13 = "EAN13"
    EAN_8 = "EAN8"
    UPC_A = "UPCA"


Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Result:
    """One code found in an image.

    ``text`` is exactly what the symbol encodes, GS (0x1D) separators included; the
    ``symbology_identifier`` (``]d2``, ``]Q3``, ``]C1``...) is kept apart because it is what
    says the text is a GS1 element string. It is ``None`` when the decoder that read the code
    cannot tell (pyzbar, OpenCV). ``corners`` are in the input image's pixel coordinates,
    clockwise from the symbol's top left.
    """

    text: str
    symbology: Symbology
    symbology_identifier: str | None
    corners: tuple[Point, ...]
    parsed: ParsedCode | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "symbology": self.symbology.value,
            "symbology_identifier": self.symbology_identifier,
            "corners": [list(point) for point in self.corners],
            "parsed": None if self.parsed is None else self.parsed.as_json(),
        }


def _parse(text: str, symbology_identifier: str | None) -> ParsedCode | None:
    """The project's parsed form of ``text``, or None when it is not one of the codes we read.

    The symbology identifier goes in front: it is what tells a GS1 element string from text.
    """
    try:
        return parse((symbology_identifier or "") + text)
    except InvalidCode:
        return None
