"""The domain error tree. Every error a client can cause is one of these.

    TransparencyError
    ├── InvalidInput                 the request is malformed or fails validation
    │   ├── InvalidGtin              a GTIN with bad length, characters or check digit
    │   ├── InvalidCode              scanned or typed text that is not a well-formed code
    │   ├── UnreadableImage          an uploaded image that is not a usable image
    │   ├── ImageTooLarge            an uploaded image with more pixels than we decode
    │   ├── ScanTimeout              an uploaded image that took too long to decode
    │   └── PayloadTooLarge          a body over the configured size limit
    ├── Unauthenticated              no key, an unknown key, or a revoked key
    ├── Forbidden                    the key's role may not call this operation
    ├── NotFound                     no such object, or it belongs to another brand
    ├── Conflict                     the request collides with existing state
    │   ├── AlreadyExists            a unique name, GTIN or code is taken
    │   ├── InvalidTransition        the unit lifecycle forbids this event in this state
    │   ├── ReversalRefused          a fulfilment pass that cannot be undone (late, elsewhere)
    │   └── NotReady                 the object exists but is not finished yet (a running job)
    ├── LimitExceeded                a quota is used up (running jobs per brand); retry later
    ├── RateLimited                  too many requests from one client (customer checks)
    └── Unavailable                  a dependency (the database) cannot answer now

Each class carries a stable ``slug``; the web layer maps it to an RFC 9457 problem
``type`` in exactly one place (transparency/api/problems.py).
"""

from __future__ import annotations

from typing import Any, ClassVar


class TransparencyError(Exception):
    """Base of every error the service reports to a caller."""

    slug: ClassVar[str] = "error"
    title: ClassVar[str] = "Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(TransparencyError):
    """The request is malformed or a field fails validation."""

    slug = "invalid-input"
    title = "Invalid input"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        if errors is None:
            errors = [] if field is None else [{"field": field, "message": detail}]
        super().__init__(detail, errors=errors)


class InvalidGtin(InvalidInput):
    """A GTIN with a bad length, bad characters or a wrong check digit."""

    slug = "invalid-gtin"
    title = "Invalid GTIN"


class InvalidCode(InvalidInput):
    """Scanned or typed text that is not a well-formed code of any format we read.

    ``reason`` is a stable machine-readable slug (``unknown_format``, ``bad_check_character``,
    ``bad_check_digit``, ``invalid_ai``, ``duplicate_ai``, ...), as printed by
    ``codegen parse`` and returned by the API.
    """

    slug = "invalid-code"
    title = "Invalid code"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, errors=[{"field": "code", "message": detail}])
        self.reason = reason
        self.extra["reason"] = reason


class UnreadableImage(InvalidInput):
    """An uploaded image that is not a usable image (not an image, truncated, empty)."""

    slug = "unreadable-image"
    title = "Unreadable image"


class ImageTooLarge(InvalidInput):
    """An uploaded image with more pixels than the service decodes."""

    slug = "image-too-large"
    title = "Image too large"


class ScanTimeout(InvalidInput):
    """An uploaded image that took longer than the limit to decode."""

    slug = "scan-timeout"
    title = "Decoding took too long"


class PayloadTooLarge(InvalidInput):
    """The request body is larger than the configured limit."""

    slug = "payload-too-large"
    title = "Payload too large"


class Unauthenticated(TransparencyError):
    """No API key, an unknown key, or a revoked key."""

    slug = "unauthenticated"
    title = "Unauthenticated"


class Forbidden(TransparencyError):
    """The caller's role may not perform this operation."""

    slug = "forbidden"
    title = "Forbidden"


class NotFound(TransparencyError):
    """No such object, or it belongs to a brand the caller may not see."""

    slug = "not-found"
    title = "Not found"


class Conflict(TransparencyError):
    """The request collides with the current state."""

    slug = "conflict"
    title = "Conflict"


class AlreadyExists(Conflict):
    """A unique name, GTIN or code is already taken."""

    slug = "already-exists"
    title = "Already exists"


class InvalidTransition(Conflict):
    """The unit lifecycle forbids this event in the unit's current state."""

    slug = "invalid-transition"
    title = "Invalid lifecycle transition"


class ReversalRefused(Conflict):
    """A fulfilment pass cannot be undone: too late, from another site, or not shipped."""

    slug = "reversal-refused"
    title = "Reversal refused"


class RateLimited(TransparencyError):
    """Too many requests from this client; retry after the time given."""

    slug = "rate-limited"
    title = "Too many requests"


class NotReady(Conflict):
    """The object exists but is not finished yet, such as the codes of a running batch."""

    slug = "not-ready"
    title = "Not ready"


class LimitExceeded(TransparencyError):
    """A quota is used up, such as the number of running jobs a brand may have."""

    slug = "limit-exceeded"
    title = "Limit exceeded"


class Unavailable(TransparencyError):
    """A dependency the service needs (the database) cannot answer right now."""

    slug = "unavailable"
    title = "Service unavailable"


def all_errors() -> list[type[TransparencyError]]:
    """Every error class of the tree, root first."""
    found: list[type[TransparencyError]] = [TransparencyError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found
