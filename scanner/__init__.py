"""Decode QR and GS1 DataMatrix codes from images and verify them through the API.

>>> import scanner
>>> scanner.decode("label.jpg")  # doctest: +SKIP
[Result(text='TP0Q3K...', symbology=<Symbology.QR_CODE: 'QRCode'>, ...)]

May import ``transparency.domain`` (the code formats) and nothing else of the service,
which it reaches over HTTP. The service imports this package's root (``decode`` and its
errors) for photos posted to /v1/scans, and nothing deeper.
"""

from scanner.errors import ImageTooLarge, ScannerError, UnreadableImage
from scanner.results import Result, Symbology
from scanner.scan import decode

__all__ = ["ImageTooLarge", "Result", "ScannerError", "Symbology", "UnreadableImage", "decode"]
