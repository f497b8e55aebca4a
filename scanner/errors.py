"""What the scanner raises. Nothing found is not an error: it is an empty list.

ScannerError
├── UnreadableImage   not an image, a truncated file, 0x0 pixels, an unreadable path
└── ImageTooLarge     more pixels (or bytes) than the scanner will decode
"""

from __future__ import annotations


class ScannerError(Exception):
    """Base of every error the scanner raises on purpose."""


class UnreadableImage(ScannerError):
    """The input is not a usable image."""


class ImageTooLarge(ScannerError):
    """The image is larger than the scanner will decode (a decompression bomb, say)."""
