"""scanner.decode: real photos, generated codes round trip, and every kind of bad input."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import qrcode
import zxingcpp

import scanner
from scanner import decoders, ladder
from scanner.errors import ImageTooLarge, ScannerError, UnreadableImage
from scanner.images import MAX_JPEG_SCANS, ImageInput, dimensions
from scanner.results import Result, Symbology
from scanner.scan import unique
from tests.support import paths
from tests.support.photos import progressive_jpeg, scans_in, sliver_png, with_last_scan_repeated

DATA = paths.DATA / "zxing"
GS = "\x1d"
TP_CODE = "TP0Q3K9M2X7RZC4T8V1N6WB5HJ2AFD"
Image = npt.NDArray[np.uint8]

# What the scanner reads today (bench/bench_scanner.py prints the same figures); the misses
# are 8 photos of QR codes on crumpled cloth in qrcode-4.
MINIMUM_PER_FOLDER = {
    "datamatrix-1": 23,
    "datamatrix-2": 18,
    "datamatrix-3": 18,
    "qrcode-1": 20,
    "qrcode-2": 35,
    "qrcode-3": 42,
    "qrcode-4": 40,
    "qrcode-5": 19,
    "qrcode-6": 15,
}


def qr(text: str, module: int = 4) -> Image:
    code = qrcode.QRCode(box_size=1, border=4)
    code.add_data(text)
    matrix = np.where(np.array(code.get_matrix(), dtype=bool), 0, 255).astype(np.uint8)
    return np.kron(matrix, np.ones((module, module), dtype=np.uint8))


def zxing_symbol(
    content: str, fmt: zxingcpp.BarcodeFormat, scale: int = 4, **options: bool
) -> Image:
    barcode = zxingcpp.create_barcode(content, fmt, **options)
    return np.array(zxingcpp.write_barcode_to_image(barcode, scale=scale), dtype=np.uint8)


def gs1_datamatrix(bracketed: str, scale: int = 4) -> Image:
    return zxing_symbol(
        bracketed, zxingcpp.BarcodeFormat.DataMatrix, scale, gs1=True, force_square=True
    )


def canvas(width: int = 900, height: int = 600, seed: int = 1) -> Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(90, 170, (height // 50 + 2, width // 50 + 2)).astype(np.uint8)
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), np.uint8)


def paste(scene: Image, code: Image, x: int, y: int) -> None:
    scene[y : y + code.shape[0], x : x + code.shape[1]] = code


def read_photo(path: Path) -> Image:
    photo = cv2.imread(str(path))
    assert photo is not None, path
    return np.asarray(photo, np.uint8)


def encoded(image: Image, ext: str, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


# ---------------------------------------------------------------- real photos


def _photos(folder: str) -> list[tuple[Path, str]]:
    return [
        (path, path.with_suffix(".txt").read_bytes().decode("utf-8"))
        for path in sorted((DATA / folder).glob("*.png"))
    ]


@pytest.mark.parametrize("folder", sorted(MINIMUM_PER_FOLDER))
def test_real_photos_decode_to_their_exact_text(folder: str) -> None:
    photos = _photos(folder)
    assert photos
    read = 0
    for path, expected in photos:
        texts = [result.text for result in scanner.decode(path)]
        if texts:
            # A photo holds one code, or (qrcode-2/16) a code inside a code: whatever is
            # reported must include the exact expected text, CR LF and all.
            assert expected in texts, path.name
            read += 1
    assert read >= MINIMUM_PER_FOLDER[folder]


def test_the_photo_folders_hold_what_the_minimums_count() -> None:
    folders = sorted(p.name for p in DATA.iterdir() if p.is_dir())
    assert folders == sorted(MINIMUM_PER_FOLDER)
    assert (DATA / "README.md").read_text().count("Apache") >= 1


def test_a_photo_without_a_code_gives_an_empty_list() -> None:
    photo = read_photo(DATA / "qrcode-1" / "16.png")
    # The hand holding the label, without the label.
    no_code = np.ascontiguousarray(photo[:, :150])
    assert scanner.decode(no_code) == []
    assert scanner.decode(canvas()) == []


# ---------------------------------------------------------------- generated codes


def test_a_transparency_qr_round_trips() -> None:
    (result,) = scanner.decode(qr(TP_CODE))
    assert result.text == TP_CODE
    assert result.symbology is Symbology.QR_CODE
    assert result.symbology_identifier == "]Q1"
    assert len(result.corners) == 4


def test_gs1_datamatrix_keeps_separators_and_symbology_identifier() -> None:
    image = gs1_datamatrix("(01)09506000134352(10)LOT7(21)ABCDEFGHJKMNPQRSTVWX")
    (result,) = scanner.decode(image)
    # FNC1 in first position is the ]d2 identifier, not a character; the variable-length
    # lot (10) is closed by a GS so that (21) can follow it.
    assert result.text == f"010950600013435210LOT7{GS}21ABCDEFGHJKMNPQRSTVWX"
    assert result.symbology is Symbology.DATA_MATRIX
    assert result.symbology_identifier == "]d2"


def test_gs1_qr_and_gs1_128_report_their_identifiers() -> None:
    element_string = f"010950600013435210LOT7{GS}21SERIAL1"
    bracketed = "(01)09506000134352(10)LOT7(21)SERIAL1"
    (qr_result,) = scanner.decode(zxing_symbol(bracketed, zxingcpp.BarcodeFormat.QRCode, gs1=True))
    (linear,) = scanner.decode(zxing_symbol(bracketed, zxingcpp.BarcodeFormat.Code128, gs1=True))
    assert (qr_result.text, qr_result.symbology_identifier) == (element_string, "]Q3")
    assert (linear.text, linear.symbology, linear.symbology_identifier) == (
        element_string,
        Symbology.CODE_128,
        "]C1",
    )


def test_ean_13() -> None:
    (result,) = scanner.decode(zxing_symbol("950600013435", zxingcpp.BarcodeFormat.EAN13))
    assert (result.text, result.symbology) == ("9506000134352", Symbology.EAN_13)


def test_several_codes_in_one_image_are_each_reported_once() -> None:
    scene = canvas()
    texts = [TP_CODE, "TP1ABCDEFGHJKMNPQRSTVWXYZ01234"]
    paste(scene, qr(texts[0]), 40, 40)
    paste(scene, qr(texts[1]), 480, 60)
    paste(scene, gs1_datamatrix("(01)09506000134352(21)SER1", 5), 300, 380)
    results = scanner.decode(scene)
    assert sorted(r.text for r in results) == sorted([*texts, "010950600013435221SER1"])


def test_two_labels_with_the_same_text_are_two_results() -> None:
    scene = canvas()
    paste(scene, qr(TP_CODE), 40, 40)
    paste(scene, qr(TP_CODE), 500, 300)
    results = scanner.decode(scene)
    assert [r.text for r in results] == [TP_CODE, TP_CODE]
    xs = sorted(min(x for x, _ in r.corners) for r in results)
    assert xs[0] < 200 < xs[1]


def test_unique_merges_the_same_code_read_twice() -> None:
    a = Result(TP_CODE, Symbology.QR_CODE, "]Q1", ((10, 10), (110, 10), (110, 110), (10, 110)))
    b = dataclasses.replace(
        a, symbology_identifier=None, corners=((12, 11), (111, 9), (109, 112), (9, 108))
    )
    elsewhere = dataclasses.replace(a, corners=((500, 10), (600, 10), (600, 110), (500, 110)))
    assert unique([a, b, elsewhere]) == [a, elsewhere]


def test_light_on_dark() -> None:
    (result,) = scanner.decode(cv2.bitwise_not(qr(TP_CODE)))
    assert result.text == TP_CODE


def test_tiny_code_in_a_large_image() -> None:
    scene = canvas(1200, 900)
    paste(scene, qr(TP_CODE, module=2), 700, 500)
    (result,) = scanner.decode(scene)
    assert result.text == TP_CODE
    xs, ys = zip(*result.corners, strict=True)
    assert min(xs) >= 700
    assert max(xs) <= 700 + 33 * 2
    assert min(ys) >= 500
    assert max(ys) <= 500 + 33 * 2


def test_a_huge_photo_is_scanned_downscaled_and_corners_are_in_its_pixels() -> None:
    scene = canvas(4000, 3000)
    paste(scene, qr(TP_CODE, module=16), 2500, 1800)
    (result,) = scanner.decode(scene)
    xs, ys = zip(*result.corners, strict=True)
    # The code's finder corners sit 4 modules (the quiet zone) inside the pasted square.
    assert abs(min(xs) - (2500 + 64)) <= 16
    assert abs(min(ys) - (1800 + 64)) <= 16


@pytest.mark.parametrize("view_name", ["half", "double", "rotated", "rectified", "whitened"])
def test_every_view_maps_corners_back_to_the_input(view_name: str) -> None:
    scene = np.full((500, 600), 40, dtype=np.uint8)  # a dark table
    code = np.asarray(
        cv2.copyMakeBorder(qr(TP_CODE, 5), 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255),
        np.uint8,
    )
    paste(scene, code, 150, 100)
    (expected,) = decoders.zxing(scene)
    view = ladder.views(scene)(view_name)
    assert view is not None
    (found,) = decoders.zxing(view.image)
    mapped = view.corners_in_source(found)
    distances = np.linalg.norm(
        np.array(mapped.corners)[:, None, :] - np.array(expected.corners)[None, :, :], axis=2
    )
    assert len(mapped.corners) == 4
    assert distances.min(axis=0).max() <= 6  # every true corner has a mapped one near it


def test_a_rotated_perspective_photo() -> None:
    scene = canvas()
    paste(scene, qr(TP_CODE, 6), 250, 120)
    src = np.array([[0, 0], [900, 0], [900, 600], [0, 600]], dtype=np.float32)
    dst = np.array([[60, 30], [850, 80], [800, 560], [20, 590]], dtype=np.float32)
    warped = cv2.warpPerspective(scene, cv2.getPerspectiveTransform(src, dst), (900, 600))
    rotated = cv2.rotate(warped, cv2.ROTATE_90_CLOCKWISE)
    assert [r.text for r in scanner.decode(rotated)] == [TP_CODE]


# ---------------------------------------------------------------- input forms


def test_inputs_as_bgr_path_str_and_encoded_bytes(tmp_path: Path) -> None:
    grey = qr(TP_CODE)
    path = tmp_path / "code.png"
    cv2.imwrite(str(path), grey)
    inputs: list[ImageInput] = [
        cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR),
        grey[:, :, None],
        path,
        str(path),
        path.read_bytes(),
        encoded(grey, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 80),
        encoded(grey, ".webp", cv2.IMWRITE_WEBP_QUALITY, 80),
        encoded(grey, ".webp", cv2.IMWRITE_WEBP_QUALITY, 101),  # lossless (VP8L)
    ]
    for image in inputs:
        assert [r.text for r in scanner.decode(image)] == [TP_CODE]


def test_a_transparent_png_is_laid_on_white() -> None:
    code = qr(TP_CODE)
    # Black everywhere; only the alpha channel draws the modules.
    bgra = np.zeros((*code.shape, 4), dtype=np.uint8)
    bgra[:, :, 3] = 255 - code
    data = encoded(bgra, ".png")
    assert scanner.images.dimensions(data)[2] is True
    assert [r.text for r in scanner.decode(data)] == [TP_CODE]
    assert [r.text for r in scanner.decode(bgra)] == [TP_CODE]


def test_results_are_frozen_and_slotted() -> None:
    (result,) = scanner.decode(qr(TP_CODE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "other"  # type: ignore[misc]
    assert not hasattr(result, "__dict__")


# ---------------------------------------------------------------- bad input


def png_header_only(width: int, height: int) -> bytes:
    """A valid little PNG that claims to be ``width`` x ``height``: the bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = png_header_only(20_000, 20_000)
    assert len(bomb) < 200
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        scanner.decode(bomb)
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    with pytest.raises(ImageTooLarge):
        scanner.decode(path)


def test_a_jpeg_bomb_is_refused_from_its_header() -> None:
    data = bytearray(encoded(np.zeros((16, 16), np.uint8), ".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30_000, 30_000)
    with pytest.raises(ImageTooLarge):
        scanner.decode(bytes(data))


def test_a_jpeg_of_more_scans_than_a_photo_has_is_refused_from_its_header() -> None:
    jpeg = progressive_jpeg()
    assert 2 < scans_in(jpeg) <= 12  # a phone's progressive JPEG: it reads
    assert scanner.decode(jpeg) == []
    at_limit = with_last_scan_repeated(jpeg, MAX_JPEG_SCANS - scans_in(jpeg))
    assert dimensions(at_limit) == (640, 480, False)
    hostile = with_last_scan_repeated(jpeg, 1000)
    with pytest.raises(UnreadableImage, match=f"{scans_in(hostile)} scans"):
        dimensions(hostile)
    with pytest.raises(UnreadableImage, match="scans"):
        scanner.decode(hostile)


@pytest.mark.parametrize("shape", [(2, 10_000), (10_000, 2), (1, 20_000), (3, 9_000)])
def test_a_shape_opencv_cannot_scale_is_unreadable(shape: tuple[int, int]) -> None:
    sliver = np.full(shape, 255, dtype=np.uint8)
    for image in (sliver, encoded(sliver, ".png")):
        with contextlib.suppress(UnreadableImage):  # refused as input, never a cv2.error
            assert scanner.decode(image) == []


def test_an_opencv_error_is_an_unreadable_image() -> None:
    with pytest.raises(UnreadableImage, match="cannot process"):
        scanner.decode(sliver_png(10_000, 2))


def test_max_pixels_applies_to_arrays() -> None:
    with pytest.raises(ImageTooLarge):
        scanner.decode(qr(TP_CODE), max_pixels=100)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is not an image", "not a PNG, JPEG or WebP"),
        (b"GIF89a" + b"\x00" * 100, "not a PNG, JPEG or WebP"),
        (b"\x89PNG\r\n\x1a\n", "truncated PNG"),
        (png_header_only(0, 0), "no pixels"),
    ],
)
def test_bytes_that_are_not_an_image(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableImage, match=reason):
        scanner.decode(data)


def test_truncated_png_and_jpeg() -> None:
    photo = read_photo(DATA / "qrcode-1" / "1.png")
    png = encoded(photo, ".png")
    jpeg = encoded(photo, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)
    assert [r.text for r in scanner.decode(jpeg)]  # whole, it reads
    for data in (png[: len(png) // 2], jpeg[: len(jpeg) // 2], jpeg[:300]):
        with pytest.raises(UnreadableImage, match="truncated"):
            scanner.decode(data)


def test_a_png_with_corrupt_pixel_data() -> None:
    png = bytearray(encoded(qr(TP_CODE), ".png"))
    start = png.index(b"IDAT") + 8
    png[start : start + 40] = b"\xff" * 40
    with pytest.raises(UnreadableImage):
        scanner.decode(bytes(png))


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 0), dtype=np.uint8),
        np.zeros((0, 10, 3), dtype=np.uint8),
        np.zeros((10, 10), dtype=np.float32),
        np.zeros((10, 10, 2), dtype=np.uint8),
        np.zeros(10, dtype=np.uint8),
    ],
    ids=["0x0", "0x10 BGR", "float", "2 channels", "1-D"],
)
def test_arrays_that_are_not_an_image(array: npt.NDArray[np.generic]) -> None:
    with pytest.raises(UnreadableImage):
        scanner.decode(array)


def test_paths_that_are_not_images(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImage, match="No such file"):
        scanner.decode(tmp_path / "missing.png")
    with pytest.raises(UnreadableImage):
        scanner.decode(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnreadableImage):
        scanner.decode(tmp_path / "notes.txt")


def test_an_unsupported_input_type() -> None:
    with pytest.raises(UnreadableImage, match="int"):
        scanner.decode(42)  # type: ignore[arg-type]


def test_every_error_is_a_scanner_error() -> None:
    assert issubclass(UnreadableImage, ScannerError)
    assert issubclass(ImageTooLarge, ScannerError)


# ---------------------------------------------------------------- the service boundary
