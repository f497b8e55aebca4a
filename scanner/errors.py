"""What the scanner raises. Nothing found is not an error: it is an empty list.

ScannerError
├── UnreadableImage   not an image, a truncated file, 0x0 pixels, an unreadable path
├── ImageTooLarge     more pixels (or bytes) than the scanner will decode
├── UnusableSource    a camera, video or folder the station cannot take frames from
├── ApiError          the API refused the request; sending it again gets the same answer
└── Unreachable       no answer to act on (network, timeout, 429, 5xx): try again later
"""

from __future__ import annotations


class ScannerError(Exception):
    """Base of every error the scanner raises on purpose."""


class UnreadableImage(ScannerError):
    """The input is not a usable image."""


class ImageTooLarge(ScannerError):
    """The image is larger than the scanner will decode (a decompression bomb, say)."""


class UnusableSource(ScannerError):
    """The station cannot open its camera, video file or watched folder."""


class ApiError(ScannerError):
    """An RFC 9457 problem (or a bare 4xx) from the API: a definite answer, not a hiccup."""

    def __init__(self, type: str, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.type = type
        self.status = status
        self.title = title
        self.detail = detail

    @property
    def key_refused(self) -> bool:
        """The station's key is wrong or revoked: about the station, not about any unit."""
        return self.status in (401, 403)


class Unreachable(ScannerError):
    """The API could not be reached or asked to be left alone; ``retry_after`` in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
