"""The three decoding libraries behind one shape: ``read(grey) -> list[Result]``.

zxing-cpp is the strongest and the only one that reads DataMatrix and reports the
symbology identifier, so it comes first; pyzbar and OpenCV's QR detector each read a few QR
photos zxing-cpp misses. Corners are in the coordinates of the image they were given.
"""

from __future__ import annotations

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

from scanner.images import Grey
from scanner.results import Result, Symbology

_ZXING_FORMATS: dict[zxingcpp.BarcodeFormat, Symbology] = {
    zxingcpp.BarcodeFormat.QRCode: Symbology.QR_CODE,
    zxingcpp.BarcodeFormat.DataMatrix: Symbology.DATA_MATRIX,
    zxingcpp.BarcodeFormat.Code128: Symbology.CODE_128,
    zxingcpp.BarcodeFormat.EAN13: Symbology.EAN_13,
    zxingcpp.BarcodeFormat.EAN8: Symbology.EAN_8,
    zxingcpp.BarcodeFormat.UPCA: Symbology.UPC_A,
}
_ZXING_WANTED = zxingcpp.BarcodeFormats(list(_ZXING_FORMATS))

# Code 128 is left to zxing-cpp: zbar does not say whether an FNC1 made it GS1-128.
_PYZBAR_FORMATS = {
    "QRCODE": Symbology.QR_CODE,
    "EAN13": Symbology.EAN_13,
    "EAN8": Symbology.EAN_8,
    "UPCA": Symbology.UPC_A,
}
_PYZBAR_WANTED = [pyzbar.ZBarSymbol.QRCODE, pyzbar.ZBarSymbol.EAN13, pyzbar.ZBarSymbol.EAN8]


def zxing(grey: Grey, *, global_binarizer: bool = False, try_harder: bool = True) -> list[Result]:
    """zxing-cpp, with the text exactly as encoded (``TextMode.Plain`` keeps GS separators)."""
    binarizer = (
        zxingcpp.Binarizer.GlobalHistogram if global_binarizer else zxingcpp.Binarizer.LocalAverage
    )
    found = zxingcpp.read_barcodes(
        grey,
        formats=_ZXING_WANTED,
        try_rotate=try_harder,
        try_downscale=try_harder,
        try_invert=True,
        text_mode=zxingcpp.TextMode.Plain,
        binarizer=binarizer,
    )
    results = []
    for barcode in found:
        symbology = _ZXING_FORMATS.get(barcode.format)
        # is_pure and some inputs yield placeholder results with format NONE and no text.
        if symbology is None or not barcode.valid:
            continue
        position = barcode.position
        corners = tuple(
            (int(point.x), int(point.y))
            for point in (
                position.top_left,
                position.top_right,
                position.bottom_right,
                position.bottom_left,
            )
        )
        results.append(
            Result(barcode.text, symbology, barcode.symbology_identifier or None, corners)
        )
    return results


def zbar(grey: Grey) -> list[Result]:
    """pyzbar (QR and EAN/UPC only: zbar cannot read DataMatrix)."""
    results = []
    for symbol in pyzbar.decode(grey, symbols=_PYZBAR_WANTED):
        symbology = _PYZBAR_FORMATS.get(symbol.type)
        if symbology is None:
            continue
        try:
            # zbar has already converted the QR's character set to UTF-8; anything else
            # would not be the exact text, and a wrong text is worse than none.
            text = symbol.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        corners = tuple((int(point.x), int(point.y)) for point in symbol.polygon)
        results.append(Result(text, symbology, None, corners))
    return results


def opencv(grey: Grey) -> list[Result]:
    """OpenCV's QRCodeDetector, the last resort for QR codes."""
    try:
        ok, texts, points, _ = cv2.QRCodeDetector().detectAndDecodeMulti(grey)
    except (cv2.error, UnicodeDecodeError):
        # OpenCV decodes the payload as UTF-8 itself and raises on anything else.
        return []
    if not ok or points is None:
        return []
    results = []
    for text, quad in zip(texts, np.asarray(points), strict=False):
        if not text:
            continue
        corners = tuple((round(float(x)), round(float(y))) for x, y in quad)
        results.append(Result(text, Symbology.QR_CODE, None, corners))
    return results
