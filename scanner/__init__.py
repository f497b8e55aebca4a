"""Decode QR and GS1 DataMatrix codes from images and verify them through the API.

>>> import scanner
>>> scanner.decode("label.jpg")  # doctest: +SKIP
[Result(text='TP0Q3K...', symbology=<Symbology.QR_CODE: 'QRCode'>, ...)]
"""

from scanner.errors import ImageTooLarge, ScannerError, UnreadableImage
from scanner.results import Result, Symbology
from scanner.scan import decode

__all__ = ["ImageTooLarge", "Result", "ScannerError", "Symbology", "UnreadableImage", "decode"]
