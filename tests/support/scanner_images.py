"""Image fixtures of the scanner tests: a Transparency QR, a GS1 DataMatrix, a blank and a
broken file for `scanner decode`; one, two or no codes for `scanner verify`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import qrcode
import zxingcpp

from tests.support.station import CODES, qr_image

TP_CODE = "TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    code = qrcode.QRCode(box_size=4)
    code.add_data(TP_CODE)
    qr = np.where(np.array(code.get_matrix(), dtype=bool), 0, 255).astype(np.uint8)
    qr = np.kron(qr, np.ones((4, 4), dtype=np.uint8))
    barcode = zxingcpp.create_barcode(
        "(01)09506000134352(10)LOT7(21)SER1",
        zxingcpp.BarcodeFormat.DataMatrix,
        gs1=True,
        force_square=True,
    )
    datamatrix = np.array(zxingcpp.write_barcode_to_image(barcode, scale=5), dtype=np.uint8)
    paths = {
        "qr": tmp_path / "qr.png",
        "gs1": tmp_path / "gs1.jpg",
        "blank": tmp_path / "blank.png",
        "bad": tmp_path / "bad.png",
    }
    cv2.imwrite(str(paths["qr"]), qr)
    cv2.imwrite(str(paths["gs1"]), datamatrix)
    cv2.imwrite(str(paths["blank"]), np.full((120, 160), 200, dtype=np.uint8))
    paths["bad"].write_bytes(paths["qr"].read_bytes()[:100])
    return paths


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.png" for name in ("qr", "two", "blank", "bad")}
    cv2.imwrite(str(paths["qr"]), qr_image(CODES[0]))
    two = np.full((200, 420), 255, dtype=np.uint8)
    for x, code in ((10, CODES[1]), (220, CODES[2])):
        label = qr_image(code, 3)
        two[10 : 10 + label.shape[0], x : x + label.shape[1]] = label
    cv2.imwrite(str(paths["two"]), two)
    cv2.imwrite(str(paths["blank"]), np.full((100, 100), 200, dtype=np.uint8))
    paths["bad"].write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return paths
