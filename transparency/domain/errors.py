"""The domain error tree. Every error a client can cause is one of these.

    TransparencyError
    ├── InvalidInput                 the request is malformed or fails validation
    │   ├── InvalidGtin              a GTIN with bad length, characters or check digit
    │   ├── InvalidCode              scanned or typed text that is not a well-formed code
    │   │   └── InvalidDigitalLink   a request to the resolver whose URI is no GS1 Digital Link
    │   ├── UnreadableImage          an uploaded image that is not a usable image
    │   ├── ImageTooLarge            an uploaded image with more pixels than we decode
    │   ├── ScanTimeout              an uploaded image that took too long to decode
    │   ├── PayloadTooLarge          a body over the configured size limit
    │   ├── IdempotencyKeyReused     an Idempotency-Key sent again with another request
    │   ├── RequestTimeout           a request's head or body that did not arrive in time
    │   ├── GtinNotAssigned          a GTIN outside every GS1 company prefix of the brand
    │   └── ShipmentPrefixTooShort   a shipment prefix too short to name a few shipments
    ├── Unauthenticated              no key, an unknown key, or a revoked key
    │   └── SignInRequired           no live console session (signed out, expired, key revoked)
    ├── Forbidden                    the key's role may not call this operation
    │   └── CsrfRefused              a console form posted without its session's CSRF token
    ├── NotFound                     no such object, or it belongs to another brand
    ├── Conflict                     the request collides with existing state
    │   ├── IdempotencyKeyInUse      a request under this Idempotency-Key is being answered
    │   ├── AlreadyExists            a unique name, GTIN or code is taken
    │   ├── InvalidTransition        the unit lifecycle forbids this event in this state
    │   ├── ReversalRefused          a fulfilment pass that cannot be undone (late, elsewhere)
    │   └── NotReady                 the object exists but is not finished yet (a running job)
    ├── LimitExceeded                a quota is used up (running jobs per brand); retry later
    │   └── KeyRotationLimited       a brand made its most signing keys for the last 24 hours
    ├── RateLimited                  too many requests from one client (customer checks)
    └── Unavailable                  a dependency (the database) cannot answer now
        ├── Overloaded               the process holds as many connections as it accepts
        ├── KeySpaceExhausted        every signing-key id the code format holds is taken
        ├── DatabaseBusy             no database connection came free in time
        ├── StatementTimeout         a database statement ran past its time limit
        ├── TransactionTimeout       a transaction sat idle past its time limit
        ├── RenderersBusy            every label renderer is taken
        ├── DecodersBusy             every photo decoder is taken and the queue is full
        └── CustomerChecksBusy       the process answers its most customer checks a second

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


class InvalidDigitalLink(InvalidCode):
    """A request to the resolver whose path and query are not a valid GS1 Digital Link URI
    (answered 400, as the GS1-Conformant Resolver standard requires)."""

    slug = "invalid-digital-link"
    title = "Invalid GS1 Digital Link URI"


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


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key sent again with a different request (another code, product, shipment)."""

    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused"


class RequestTimeout(InvalidInput):
    """A request whose line and headers, or body, did not arrive in time; the connection is
    closed."""

    slug = "request-timeout"
    title = "Request timeout"


class GtinNotAssigned(InvalidInput):
    """A GTIN outside every GS1 company prefix an operator assigned to the brand."""

    slug = "gtin-not-assigned"
    title = "GTIN not assigned to this brand"


class ShipmentPrefixTooShort(InvalidInput):
    """A shipment prefix under 4 characters: it would read a site's every shipment."""

    slug = "shipment-prefix-too-short"
    title = "Shipment prefix too short"


class Unauthenticated(TransparencyError):
    """No API key, an unknown key, or a revoked key."""

    slug = "unauthenticated"
    title = "Unauthenticated"


class Forbidden(TransparencyError):
    """The caller's role may not perform this operation."""

    slug = "forbidden"
    title = "Forbidden"


class SignInRequired(Unauthenticated):
    """No live brand console session: never signed in, signed out, expired, or key revoked."""

    slug = "sign-in-required"
    title = "Sign-in required"


class CsrfRefused(Forbidden):
    """A brand console form was posted without the CSRF token of the caller's session."""

    slug = "csrf-refused"
    title = "Form refused (CSRF)"


class NotFound(TransparencyError):
    """No such object, or it belongs to a brand the caller may not see."""

    slug = "not-found"
    title = "Not found"


class Conflict(TransparencyError):
    """The request collides with the current state."""

    slug = "conflict"
    title = "Conflict"


class IdempotencyKeyInUse(Conflict):
    """A request under this Idempotency-Key is being answered right now; retry shortly."""

    slug = "idempotency-key-in-use"
    title = "Idempotency-Key in use"


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


class KeyRotationLimited(LimitExceeded):
    """The brand has made as many signing keys as it may in 24 hours; retry later."""

    slug = "key-rotation-limit"
    title = "Too many signing keys"


class KeySpaceExhausted(Unavailable):
    """Every signing-key id the code format can carry is taken; an operator must act."""

    slug = "key-space-exhausted"
    title = "Signing-key ids exhausted"


class DatabaseBusy(Unavailable):
    """No database connection came free within the acquire timeout; retry shortly."""

    slug = "database-busy"
    title = "Database busy"


class StatementTimeout(Unavailable):
    """A database statement ran past the statement timeout and was cancelled; nothing changed."""

    slug = "statement-timeout"
    title = "Statement timed out"


class TransactionTimeout(Unavailable):
    """A transaction sat idle past its time limit and was rolled back; nothing changed."""

    slug = "transaction-timeout"
    title = "Transaction timed out"


class RenderersBusy(Unavailable):
    """Every label-rendering process of this API process is taken; retry shortly."""

    slug = "renderers-busy"
    title = "Label renderers busy"


class DecodersBusy(Unavailable):
    """Every photo decoder is busy and as many photos as may wait are waiting; retry shortly."""

    slug = "decoders-busy"
    title = "Photo decoders busy"


class CustomerChecksBusy(Unavailable):
    """This API process answers as many customer checks a second as it may (the rest of its
    time is the warehouses'); retry shortly."""

    slug = "customer-checks-busy"
    title = "Customer checks busy"


class Overloaded(Unavailable):
    """The API process holds as many connections as it accepts; retry after the time given."""

    slug = "overloaded"
    title = "Too many connections"


def all_errors() -> list[type[TransparencyError]]:
    """Every error class of the tree, root first."""
    found: list[type[TransparencyError]] = [TransparencyError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found
